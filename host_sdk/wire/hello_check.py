"""Strict HELLO validation: a HELLO the decoder accepts can always be used.

The HELLO is the authority on record layouts, so a lenient parse lets one bad HELLO break
every later sample frame of a stream (a format with no values made `np.frombuffer` raise
on each of them). Every rule of protocol/README.md §5.1 is checked here, and the first
one broken is named in the ValueError.
"""

from __future__ import annotations

import math
import re
from typing import Any

from host_sdk.wire.messages import FieldInfo, Hello, StreamInfo
from protocol import defs, messages

# protocol/README.md §5.1: "<" then codes B b H h I i f, each with an optional repeat count
RECORD_FORMAT = re.compile(r"<(?:[1-9][0-9]*)?[BbHhIif](?:(?:[1-9][0-9]*)?[BbHhIif])*")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_RECORD = defs.MAX_PAYLOAD - defs.SAMPLES_HEADER_SIZE  # one record must fit a frame


class ForeignHello(ValueError):
    """A HELLO announcing another protocol version (the decoder reports the version)."""

    def __init__(self, version: int, text: str) -> None:
        super().__init__(text)
        self.version = version


def _finite(what: str, x: float) -> None:
    if not math.isfinite(x):
        raise ValueError(f"HELLO {what} = {x!r}: must be finite")


def check_stream(s: StreamInfo) -> None:
    where = f"stream {s.id}"
    if not s.name:
        raise ValueError(f"HELLO {where}: empty name")
    if not RECORD_FORMAT.fullmatch(s.record_format):
        raise ValueError(
            f"HELLO {where} ({s.name}): record_format {s.record_format!r} is not '<' followed by "
            "codes B b H h I i f with optional repeat counts"
        )
    _finite(f"{where} rate_hz", s.rate_hz)
    if s.rate_hz < 0:
        raise ValueError(f"HELLO {where} rate_hz = {s.rate_hz}: must be >= 0")
    names = [f.name for f in s.fields]
    for n in names:
        if not FIELD_NAME.fullmatch(n):
            raise ValueError(f"HELLO {where} ({s.name}): field name {n!r} is not an identifier")
    if len(set(names)) != len(names):
        raise ValueError(f"HELLO {where} ({s.name}): duplicate field names {names}")
    for f in s.fields:
        _finite(f"{where} field {f.name} scale", f.scale)
        _finite(f"{where} field {f.name} offset", f.offset)
    size = s.dtype.itemsize  # raises when the value count and the field count differ
    if not 1 <= size <= MAX_RECORD:
        raise ValueError(f"HELLO {where} ({s.name}): record of {size} B, allowed 1..{MAX_RECORD}")


def check_hello(h: Hello) -> Hello:
    """Raise ValueError naming the first broken rule; return the HELLO when it is valid."""
    if h.protocol_version != defs.PROTOCOL_VERSION:
        raise ForeignHello(
            h.protocol_version,
            f"HELLO protocol_version = {h.protocol_version}; this SDK speaks protocol version "
            f"{defs.PROTOCOL_VERSION}",
        )
    if not h.board_id:
        raise ValueError("HELLO board_id: empty")
    ids = [s.id for s in h.streams]
    if len(set(ids)) != len(ids):
        raise ValueError(f"HELLO stream ids {ids}: duplicates")
    names = [s.name for s in h.streams]
    if len(set(names)) != len(names):
        raise ValueError(f"HELLO stream names {names}: duplicates")
    for s in h.streams:
        check_stream(s)
    for name, value in h.limits.items():
        if not name:
            raise ValueError("HELLO limit with an empty name")
        _finite(f"limit {name}", value)
    return h


def hello_from_dict(info: Any) -> Hello:
    """Hello from a parsed HELLO container/dict (construct or protocol.messages)."""
    streams = tuple(
        StreamInfo(
            id=int(s["id"]),
            name=str(s["name"]),
            rate_hz=float(s["rate_hz"]),
            enabled=bool(s["enabled"]),
            record_format=str(s["record_format"]),
            fields=tuple(
                FieldInfo(str(f["name"]), str(f["unit"]), float(f["scale"]), float(f["offset"]))
                for f in s["fields"]
            ),
        )
        for s in info["streams"]
    )
    limits = info["limits"]
    if not isinstance(limits, dict):  # construct: a list of {name, value}
        limits = {str(lim["name"]): float(lim["value"]) for lim in limits}
    fw = tuple(int(x) for x in info["firmware_version"])
    return Hello(
        protocol_version=int(info["protocol_version"]),
        firmware_version=(fw[0], fw[1], fw[2]),
        board_id=str(info["board_id"]),
        unique_id=str(info["unique_id"]),
        streams=streams,
        limits=dict(limits),
    )


def parse_hello(payload: bytes) -> Hello:
    """HELLO payload -> Hello; ValueError (or a construct error) naming what is wrong when
    it breaks any rule of protocol/README.md §5.1 (hello_check)."""
    # protocol.messages.decode_hello (plain struct, the board's own code) is ~50x faster
    # than the construct layout, and checks the limits' order and the payload's end
    return check_hello(hello_from_dict(messages.decode_hello(payload)))
