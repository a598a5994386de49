"""Build frames on the host: commands for the board, and any board message for tests.

A5 5A | length u16 | version u8 | type u8 | flags u8 | stream u8 | seq u16 | boot u16 |
hcheck u8 | payload | crc32
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any

import construct as cs
import numpy as np

from host_sdk.wire import layouts
from host_sdk.wire.messages import FieldInfo, Hello, Status, StreamInfo
from protocol import defs

_HEADER = struct.Struct(defs.HEADER_FMT)
_CRC = struct.Struct("<I")
_SAMPLES_HEADER = struct.Struct(defs.SAMPLES_HEADER_FMT)


class CommandError(ValueError):
    """A command could not be encoded (unknown command, missing/unknown/bad field)."""


def encode_frame(
    msg_type: int,
    payload: bytes,
    *,
    flags: int = 0,
    stream: int = 0,
    seq: int = 0,
    boot: int = 0,
) -> bytes:
    """One complete frame around `payload` (any length up to 65526; the board reads less).
    `boot` is the board's boot id (0 in host frames)."""
    length = defs.LENGTH_BASE + len(payload)
    if length > 0xFFFF:
        raise ValueError("payload too long for one frame")
    head = bytearray(
        _HEADER.pack(
            defs.SYNC0,
            defs.SYNC1,
            length,
            defs.PROTOCOL_VERSION,
            msg_type,
            flags,
            stream,
            seq & 0xFFFF,
            boot & 0xFFFF,
            0,
        )
    )
    head[defs.HCHECK_OFFSET] = zlib.crc32(head[defs.LENGTH_OFFSET : defs.HCHECK_OFFSET]) & 0xFF
    crc = zlib.crc32(payload, zlib.crc32(head[defs.LENGTH_OFFSET :]))
    return bytes(head) + bytes(payload) + _CRC.pack(crc)


def command_id(cmd: int | str) -> int:
    """Command id from an id or a name ("pulse_train")."""
    if isinstance(cmd, str):
        try:
            return layouts.COMMAND_IDS[cmd]
        except KeyError:
            raise CommandError(f"unknown command {cmd!r}") from None
    if cmd not in defs.COMMANDS:
        raise CommandError(f"unknown command id {cmd:#04x}")
    return cmd


def _check_fields(cid: int, fields: Mapping[str, Any], what: str) -> None:
    names = layouts.COMMAND_FIELDS[cid]
    missing = [n for n in names if n not in fields]
    unknown = [n for n in fields if n not in names]
    if missing or unknown:
        cmd = layouts.COMMAND_NAMES[cid]
        problems = []
        if missing:
            problems.append(f"missing {what} {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {what} {', '.join(unknown)}")
        raise CommandError(f"{cmd}: {'; '.join(problems)} (takes {', '.join(names) or 'none'})")


def command_payload(cmd_id: int | str, cmd_seq: int, **fields: Any) -> bytes:
    """COMMAND payload (also an ACK payload: same layout, applied values)."""
    cid = command_id(cmd_id)
    _check_fields(cid, fields, "field")
    try:
        return bytes(layouts.COMMANDS[cid].build(dict(fields, cmd_seq=cmd_seq, cmd_id=cid)))
    except (cs.ConstructError, struct.error, TypeError, OverflowError) as e:
        raise CommandError(f"{layouts.COMMAND_NAMES[cid]}: {e}") from e


def encode_command(cmd_id: int | str, cmd_seq: int, frame_seq: int = 0, **fields: Any) -> bytes:
    """A COMMAND frame. Fields by the names in protocol.defs.COMMANDS, e.g.
    `encode_command(defs.CMD_SET_CELL, 7, area_m2=1e-4)`."""
    return encode_frame(defs.MSG_COMMAND, command_payload(cmd_id, cmd_seq, **fields), seq=frame_seq)


# ---- board messages (used by tests, benchmarks and emulators) -------------------------


def encode_ack(
    cmd_id: int | str, cmd_seq: int, *, seq: int = 0, flags: int = 0, boot: int = 0, **applied: Any
) -> bytes:
    return encode_frame(
        defs.MSG_ACK, command_payload(cmd_id, cmd_seq, **applied), seq=seq, flags=flags, boot=boot
    )


def encode_nack(
    cmd_id: int,
    cmd_seq: int,
    reason: int,
    text: str = "",
    *,
    seq: int = 0,
    flags: int = 0,
    boot: int = 0,
) -> bytes:
    data = text.encode()[: defs.NACK_TEXT_MAX]
    payload = struct.pack(defs.NACK_FMT, cmd_seq, cmd_id, reason) + data
    return encode_frame(defs.MSG_NACK, payload, seq=seq, flags=flags, boot=boot)


def encode_event(
    t_us: int,
    code: int,
    cause: int = defs.CAUSE_NONE,
    index: int = 0,
    value: float = 0.0,
    *,
    seq: int = 0,
    flags: int = 0,
    boot: int = 0,
) -> bytes:
    payload = struct.pack(defs.EVENT_FMT, t_us, code, cause, index, value)
    return encode_frame(defs.MSG_EVENT, payload, seq=seq, flags=flags, boot=boot)


def encode_status(status: Status, *, seq: int = 0, flags: int = 0, boot: int = 0) -> bytes:
    payload = struct.pack(defs.STATUS_FMT, *status.values())
    return encode_frame(defs.MSG_STATUS, payload, seq=seq, flags=flags, boot=boot)


def encode_log(level: int, text: str, *, seq: int = 0, flags: int = 0, boot: int = 0) -> bytes:
    payload = bytes([level]) + text.encode()[: defs.LOG_TEXT_MAX]
    return encode_frame(defs.MSG_LOG, payload, seq=seq, flags=flags, boot=boot)


def hello_payload(hello: Hello) -> bytes:
    return bytes(
        layouts.HELLO.build(
            {
                "protocol_version": hello.protocol_version,
                "firmware_version": list(hello.firmware_version),
                "board_id": hello.board_id,
                "unique_id": hello.unique_id,
                "streams": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "rate_hz": s.rate_hz,
                        "enabled": 1 if s.enabled else 0,
                        "record_format": s.record_format,
                        "fields": [
                            {"name": f.name, "unit": f.unit, "scale": f.scale, "offset": f.offset}
                            for f in s.fields
                        ],
                    }
                    for s in hello.streams
                ],
                "limits": [{"name": k, "value": v} for k, v in sorted(hello.limits.items())],
            }
        )
    )


def encode_hello(hello: Hello, *, seq: int = 0, flags: int = 0, boot: int = 0) -> bytes:
    return encode_frame(defs.MSG_HELLO, hello_payload(hello), seq=seq, flags=flags, boot=boot)


def encode_samples(
    stream: int,
    first_index: int,
    records: np.ndarray | bytes,
    *,
    n_records: int | None = None,
    t_first_us: int | None = None,
    seq: int = 0,
    flags: int = 0,
    boot: int = 0,
    board_dropped: int = 0,
) -> bytes:
    """A SAMPLES frame. `records` is a structured array (or raw record bytes with
    `n_records`); `t_first_us` defaults to the first record's `t_us`; `board_dropped` is
    the stream's cumulative count of samples the board dropped before `first_index`."""
    if isinstance(records, np.ndarray):
        n = len(records)
        if t_first_us is None:
            t_first_us = (
                int(records["t_us"][0]) if n and "t_us" in (records.dtype.names or ()) else 0
            )
        data = records.tobytes()
    else:
        if n_records is None:
            raise ValueError("raw record bytes need n_records")
        n = n_records
        data = bytes(records)
    payload = _SAMPLES_HEADER.pack(
        first_index & 0xFFFFFFFF,
        (t_first_us or 0) & 0xFFFFFFFF,
        n,
        board_dropped & 0xFFFFFFFF,
    )
    return encode_frame(
        defs.MSG_SAMPLES, payload + data, seq=seq, flags=flags, stream=stream, boot=boot
    )


def f32(x: float) -> float:
    """x rounded to the nearest float32, i.e. the value that survives the wire."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


# ---- the reference firmware's announcement ----------------------------------------------


def reference_streams(n_gratings: int = 4) -> tuple[StreamInfo, ...]:
    """The four default streams with the record layouts of protocol.defs and the field
    names the reference firmware announces (firmware/hello.py; the HELLO is the
    authority; scales here are nominal, the board sends its calibration)."""
    us = FieldInfo("t_us", "us")
    return (
        StreamInfo(
            defs.STREAM_LOAD,
            "load",
            80.0,
            True,
            defs.LOAD_RECORD_FMT,
            (us, FieldInfo("counts", "count"), FieldInfo("status", "")),
        ),
        StreamInfo(
            defs.STREAM_FBG,
            "fbg",
            1000.0,
            True,
            defs.FBG_RECORD_FMT_PREFIX + "i" * n_gratings,
            (us, FieldInfo("status", ""))
            + tuple(FieldInfo(f"g{k}", "nm", f32(1e-6), 0.0) for k in range(n_gratings)),
        ),
        StreamInfo(
            defs.STREAM_ELEC,
            "elec",
            5000.0,
            True,
            defs.ELEC_RECORD_FMT,
            (
                us,
                FieldInfo("voltage", "count"),
                FieldInfo("current", "count"),
                FieldInfo("state", ""),
            ),
        ),
        StreamInfo(
            defs.STREAM_TEMP,
            "temp",
            10.0,
            True,
            defs.TEMP_RECORD_FMT,
            (us, FieldInfo("raw", "count"), FieldInfo("temp", "degC", f32(1e-3), 0.0)),
        ),
    )


def reference_hello(n_gratings: int = 4, **overrides: Any) -> Hello:
    """A HELLO as the reference firmware sends it (for tests, benchmarks and emulators)."""
    kw: dict[str, Any] = {
        "protocol_version": defs.PROTOCOL_VERSION,
        "firmware_version": (0, 1, 0),
        "board_id": "reference",
        "unique_id": "0000000000000000",
        "streams": reference_streams(n_gratings),
        "limits": {"max_current_a": 5.0, "min_voltage_v": -4.5, "compliance_v": 4.5},
    }
    kw.update(overrides)
    return Hello(**kw)
