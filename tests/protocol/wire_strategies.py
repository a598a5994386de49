"""Hypothesis strategies for every message, with values exactly representable on the wire."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import strategies as st

from host_sdk.wire import Event, FieldInfo, Hello, Log, Nack, Status, StreamInfo, layouts
from protocol import defs

INT_RANGES = {
    "B": (0, 2**8 - 1),
    "b": (-(2**7), 2**7 - 1),
    "H": (0, 2**16 - 1),
    "h": (-(2**15), 2**15 - 1),
    "I": (0, 2**32 - 1),
    "i": (-(2**31), 2**31 - 1),
    # u64 microseconds (every "Q" field is a duration): the SDK shows them as float
    # seconds, which round-trip exactly below 2**50 us (35 years)
    "Q": (0, 2**50 - 1),
}


def sdk_fields(fields: dict) -> dict:
    """Command fields by their wire names (protocol.defs) -> the SDK's names and values:
    the integer-microsecond fields (`t_on_us`) become float seconds (`t_on_s`)."""
    return {
        layouts.sdk_field_name(n): (v / layouts.US_PER_S if n in defs.TIME_US_FIELDS else v)
        for n, v in fields.items()
    }


def wire_values(cmd_id: int, args: dict) -> tuple:
    """The SDK's arguments of a command (seconds) -> its wire values (integer us)."""
    us = layouts.COMMAND_US_INDEX[cmd_id]
    return tuple(layouts.seconds_to_us(v) if k in us else v for k, v in enumerate(args.values()))


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


floats32 = st.floats(width=32, allow_nan=False, allow_infinity=True)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
text = st.text(max_size=60)
name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


def value_for(code: str) -> st.SearchStrategy:
    if code in "fd":
        return floats32
    lo, hi = INT_RANGES[code]
    return st.integers(lo, hi)


@st.composite
def command_fields(draw: st.DrawFn, cmd_id: int | None = None) -> tuple[int, dict]:
    cid = draw(st.sampled_from(sorted(defs.COMMANDS))) if cmd_id is None else cmd_id
    codes = layouts.format_codes("<" + defs.COMMANDS[cid][1])
    names = defs.COMMANDS[cid][2]
    return cid, {n: draw(value_for(c)) for n, c in zip(names, codes, strict=True)}


events = st.builds(
    lambda t, code, cause, index, value: Event(
        t,
        code,
        defs.EVENT_NAMES.get(code, f"event_{code}"),
        cause,
        defs.CAUSE_NAMES.get(cause, f"cause_{cause}"),
        index,
        value,
    ),
    u32,
    u8,
    u8,
    u16,
    floats32,
)

statuses = st.builds(Status, u32, u32, u32, u32, u32, u8, u8, floats32)

nacks = st.builds(
    lambda seq, cid, reason, t: Nack(
        seq, cid, reason, defs.NACK_NAMES.get(reason, f"nack_{reason}"), t
    ),
    u16,
    u8,
    u8,
    text.filter(lambda s: len(s.encode()) <= defs.NACK_TEXT_MAX),
)

logs = st.builds(Log, u8, text.filter(lambda s: len(s.encode()) <= defs.LOG_TEXT_MAX))

RECORD_CODES = "BbHhIif"


@st.composite
def stream_infos(draw: st.DrawFn, sid: int) -> StreamInfo:
    codes = ["I"] + draw(st.lists(st.sampled_from(RECORD_CODES), min_size=1, max_size=9))
    names = ["t_us"] + [f"v{k}" for k in range(len(codes) - 1)]
    fields = tuple(
        FieldInfo(
            n,
            draw(st.sampled_from(["", "us", "count", "m", "degC"])),
            f32(draw(st.floats(-1e6, 1e6))),
            f32(draw(st.floats(-1e3, 1e3))),
        )
        for n in names
    )
    return StreamInfo(
        sid,
        f"{draw(name)}_{sid}",  # stream names are unique in a HELLO
        f32(draw(st.floats(0.0, 1e5))),
        draw(st.booleans()),
        "<" + "".join(codes),
        fields,
    )


@st.composite
def hellos(draw: st.DrawFn) -> Hello:
    ids = draw(st.lists(st.integers(0, 255), max_size=5, unique=True))
    limits = draw(st.dictionaries(name, st.floats(-1e6, 1e6).map(f32), max_size=4))
    return Hello(
        defs.PROTOCOL_VERSION,
        (draw(u8), draw(u8), draw(u8)),
        draw(st.text(min_size=1, max_size=20)),
        draw(st.text(max_size=20)),
        tuple(draw(stream_infos(i)) for i in ids),
        limits,
    )


@st.composite
def records(draw: st.DrawFn, stream: StreamInfo, max_n: int | None = None) -> np.ndarray:
    cap = (defs.DEFAULT_SAMPLE_PAYLOAD - defs.SAMPLES_HEADER_SIZE) // stream.record_size
    n = draw(st.integers(0, cap if max_n is None else min(cap, max_n)))
    seed = draw(st.integers(0, 2**32 - 1))
    raw = np.random.default_rng(seed).integers(0, 256, n * stream.record_size, dtype=np.uint8)
    rec = np.frombuffer(raw.tobytes(), dtype=stream.dtype).copy()
    for nm in stream.dtype.names or ():  # no NaN: equality must be plain
        if stream.dtype[nm].kind == "f":
            rec[nm] = np.nan_to_num(rec[nm], nan=0.0)
    return rec
