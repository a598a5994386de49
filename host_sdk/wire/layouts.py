"""Declarative `construct` layouts of every payload, derived from `protocol.defs`.

Nothing here re-types a number: each layout is built from the struct format strings and
field-name tables the firmware itself uses, so the two sides cannot drift apart. The
byte-level description of each layout is in protocol/README.md.

These layouts are the readable reference (and what the encoder uses for rare messages);
the hot sample path in `decoder` uses `struct` and numpy directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import construct as cs

from protocol import defs

# struct format character -> construct field (little-endian; the wire has no padding)
_FIELD: dict[str, Any] = {
    "B": cs.Int8ul,
    "b": cs.Int8sl,
    "H": cs.Int16ul,
    "h": cs.Int16sl,
    "I": cs.Int32ul,
    "i": cs.Int32sl,
    "L": cs.Int32ul,
    "l": cs.Int32sl,
    "Q": cs.Int64ul,
    "q": cs.Int64sl,
    "f": cs.Float32l,
    "d": cs.Float64l,
}
# struct format character -> numpy dtype string (little-endian)
NUMPY_CODE: dict[str, str] = {
    "B": "u1",
    "b": "i1",
    "H": "<u2",
    "h": "<i2",
    "I": "<u4",
    "i": "<i4",
    "L": "<u4",
    "l": "<i4",
    "Q": "<u8",
    "q": "<i8",
    "f": "<f4",
    "d": "<f8",
}

_TOKEN = re.compile(r"(\d*)([A-Za-z?])")


def format_codes(fmt: str) -> list[str]:
    """Expand a little-endian struct format ("<IB8i") into one code per value.

    Raises ValueError for byte orders other than little-endian/standard, for codes the wire
    does not use, and for trailing junk.
    """
    body = fmt
    if body[:1] in "<=":
        body = body[1:]
    elif body[:1] in ">!@":
        raise ValueError(f"record format {fmt!r}: the wire is little-endian, packed")
    if not re.fullmatch(r"(?:\d*[A-Za-z?])*", body):
        raise ValueError(f"record format {fmt!r}: cannot parse")
    codes: list[str] = []
    for count_s, code in _TOKEN.findall(body):
        if code not in _FIELD:
            raise ValueError(f"record format {fmt!r}: unsupported code {code!r}")
        codes.extend([code] * (int(count_s) if count_s else 1))
    return codes


def struct_from_format(fmt: str, names: Sequence[str]) -> cs.Struct:
    """A construct Struct with one named field per value of a struct format."""
    codes = format_codes(fmt)
    if len(codes) != len(names):
        raise ValueError(f"format {fmt!r} has {len(codes)} values but {len(names)} names")
    return cs.Struct(*[name / _FIELD[code] for name, code in zip(names, codes, strict=True)])


# ---- frame ---------------------------------------------------------------------------
HEADER_NAMES = (
    "sync0",
    "sync1",
    "length",
    "version",
    "msg_type",
    "flags",
    "stream",
    "seq",
    "boot",
    "hcheck",
)
HEADER = struct_from_format(defs.HEADER_FMT, HEADER_NAMES)
CRC = cs.Int32ul

FRAME = cs.Struct(
    "header" / HEADER,
    "payload" / cs.Bytes(cs.this.header.length - defs.LENGTH_BASE),
    "crc" / CRC,
)
"""A whole frame, header + payload + CRC (no checking; see `decoder` for that)."""

# ---- samples -------------------------------------------------------------------------
SAMPLES_HEADER_NAMES = ("first_index", "t_first_us", "n_records", "board_dropped")
SAMPLES_HEADER = struct_from_format(defs.SAMPLES_HEADER_FMT, SAMPLES_HEADER_NAMES)


def samples_layout(record: cs.Struct) -> cs.Struct:
    """SAMPLES payload layout for one stream's record layout."""
    return cs.Struct(
        "first_index" / SAMPLES_HEADER.first_index.subcon,  # type: ignore[attr-defined]
        "t_first_us" / SAMPLES_HEADER.t_first_us.subcon,  # type: ignore[attr-defined]
        "n_records" / SAMPLES_HEADER.n_records.subcon,  # type: ignore[attr-defined]
        "board_dropped" / SAMPLES_HEADER.board_dropped.subcon,  # type: ignore[attr-defined]
        "records" / cs.Array(cs.this.n_records, record),
    )


# ---- commands and replies ------------------------------------------------------------
COMMAND_HEADER_NAMES = ("cmd_seq", "cmd_id")
COMMAND_HEADER = struct_from_format(defs.COMMAND_HEADER_FMT, COMMAND_HEADER_NAMES)
_CMD_SEQ_FIELD, _CMD_ID_FIELD = (_FIELD[c] for c in format_codes(defs.COMMAND_HEADER_FMT))

COMMAND_NAMES: dict[int, str] = {cid: spec[0] for cid, spec in defs.COMMANDS.items()}
COMMAND_IDS: dict[str, int] = {spec[0]: cid for cid, spec in defs.COMMANDS.items()}

US_PER_S = 1_000_000


def sdk_field_name(wire_name: str) -> str:
    """The SDK's name of a command field: integer-microsecond wire fields (`t_on_us`) are
    seconds (`t_on_s`, float) at the SDK surface; every other field keeps its name."""
    if wire_name in defs.TIME_US_FIELDS:
        return wire_name[: -len("_us")] + "_s"
    return wire_name


COMMAND_WIRE_FIELDS: dict[int, tuple[str, ...]] = {
    cid: tuple(spec[2]) for cid, spec in defs.COMMANDS.items()
}
"""Field names as on the wire (protocol/defs.py, protocol/README.md)."""
COMMAND_FIELDS: dict[int, tuple[str, ...]] = {
    cid: tuple(sdk_field_name(n) for n in names) for cid, names in COMMAND_WIRE_FIELDS.items()
}
"""Field names at the SDK surface (seconds for the microsecond fields)."""
COMMAND_US_INDEX: dict[int, tuple[int, ...]] = {
    cid: tuple(i for i, n in enumerate(names) if n in defs.TIME_US_FIELDS)
    for cid, names in COMMAND_WIRE_FIELDS.items()
}
"""Positions of the integer-microsecond fields in each command's arguments."""


def seconds_to_us(value: float) -> int:
    """Seconds (SDK) -> integer microseconds (wire), rounded to the nearest us."""
    us = round(float(value) * US_PER_S)
    if us < 0:
        raise ValueError(f"a duration cannot be negative ({value} s)")
    return int(us)


class _Seconds(cs.Adapter):  # type: ignore[misc]
    """u64 microseconds on the wire <-> float seconds at the SDK surface."""

    def _decode(self, obj: int, context: Any, path: Any) -> float:
        return obj / US_PER_S

    def _encode(self, obj: float, context: Any, path: Any) -> int:
        try:
            return seconds_to_us(obj)
        except (TypeError, ValueError) as e:
            raise cs.ConstructError(str(e), path=path) from e


def _command_args(fmt: str, names: Sequence[str]) -> cs.Struct:
    codes = format_codes(fmt)
    if len(codes) != len(names):
        raise ValueError(f"format {fmt!r} has {len(codes)} values but {len(names)} names")
    fields = []
    for name, code in zip(names, codes, strict=True):
        if name in defs.TIME_US_FIELDS:
            fields.append(sdk_field_name(name) / _Seconds(_FIELD[code]))
        else:
            fields.append(name / _FIELD[code])
    return cs.Struct(*fields)


COMMAND_ARGS: dict[int, cs.Struct] = {
    cid: _command_args("<" + spec[1], spec[2]) for cid, spec in defs.COMMANDS.items()
}
"""Arguments of each command (also the applied values of its ACK), by command id, with
the SDK's field names (microsecond fields as float seconds)."""

COMMANDS: dict[int, cs.Struct] = {
    cid: cs.Struct(
        "cmd_seq" / _CMD_SEQ_FIELD,
        "cmd_id" / cs.Const(cid, _CMD_ID_FIELD),
        *COMMAND_ARGS[cid].subcons,
    )
    for cid in defs.COMMANDS
}
"""Whole COMMAND payload of each command (cmd_seq, cmd_id, arguments), by command id."""

ACKS = COMMANDS
"""An ACK payload has the layout of its command, carrying the values really applied."""

NACK_NAMES = ("cmd_seq", "cmd_id", "reason")
NACK = cs.Struct(
    *struct_from_format(defs.NACK_FMT, NACK_NAMES).subcons,
    "text" / cs.GreedyBytes,  # UTF-8; the decoder replaces undecodable bytes
)

# ---- events, status, log ---------------------------------------------------------------
EVENT_NAMES = ("t_us", "code", "cause", "index", "value")
EVENT = struct_from_format(defs.EVENT_FMT, EVENT_NAMES)

STATUS = struct_from_format(defs.STATUS_FMT, defs.STATUS_FIELDS)

LOG = cs.Struct("level" / cs.Int8ul, "text" / cs.GreedyBytes)

# ---- HELLO -----------------------------------------------------------------------------
STR8 = cs.PascalString(cs.Int8ul, "utf8")
HELLO_FIELD = cs.Struct("name" / STR8, "unit" / STR8, "scale" / cs.Float32l, "offset" / cs.Float32l)
HELLO_STREAM = cs.Struct(
    "id" / cs.Int8ul,
    "name" / STR8,
    "rate_hz" / cs.Float32l,
    "enabled" / cs.Int8ul,
    "record_format" / STR8,
    "fields" / cs.PrefixedArray(cs.Int8ul, HELLO_FIELD),
)
HELLO_LIMIT = cs.Struct("name" / STR8, "value" / cs.Float32l)
HELLO = cs.Struct(
    "protocol_version" / cs.Int8ul,
    "firmware_version" / cs.Array(3, cs.Int8ul),
    "board_id" / STR8,
    "unique_id" / STR8,
    "streams" / cs.PrefixedArray(cs.Int8ul, HELLO_STREAM),
    "limits" / cs.PrefixedArray(cs.Int8ul, HELLO_LIMIT),
    cs.Terminated,
)

PAYLOADS: dict[int, cs.Construct] = {
    defs.MSG_HELLO: HELLO,
    defs.MSG_STATUS: STATUS,
    defs.MSG_EVENT: EVENT,
    defs.MSG_NACK: NACK,
    defs.MSG_LOG: LOG,
}
"""Fixed layouts by message type (ACK, COMMAND and SAMPLES depend on the command/stream)."""
