"""A synthetic but realistic board output stream, for tests, benchmarks and demos.

Every stream of the HELLO is sampled at its rate on one device clock and packed into
full sample frames of the default batch size, interleaved in the order a board would send
them, with a STATUS every second and waveform events in between. Everything sent is also
returned as ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from host_sdk.wire import encoder
from host_sdk.wire.messages import Event, Hello, Status
from protocol import defs


@dataclass
class SyntheticSession:
    hello: Hello
    frames: list[bytes]  # every frame, in sending order (seq = position)
    kinds: list[int]  # message type of each frame
    spans: list[tuple[int, int, int]]  # (stream, first_index, n) per frame; (-1, 0, 0) if none
    records: dict[int, np.ndarray] = field(default_factory=dict)  # all records per stream
    events: list[Event] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)

    @property
    def wire(self) -> bytes:
        return b"".join(self.frames)


def records_per_frame(record_size: int, payload: int = defs.DEFAULT_SAMPLE_PAYLOAD) -> int:
    """Records in a full sample frame (as protocol.frame.SampleFrame computes it)."""
    return (payload - defs.SAMPLES_HEADER_SIZE) // record_size


def session(
    seconds: float = 10.0,
    hello: Hello | None = None,
    *,
    seed: int = 0,
    with_hello: bool = True,
    events_per_s: float = 4.0,
) -> SyntheticSession:
    rng = np.random.default_rng(seed)
    hello = hello or encoder.reference_hello()
    items: list[
        tuple[int, int, Status | Event | tuple[int, int, np.ndarray]]
    ] = []  # (t_us, order, what)
    records: dict[int, np.ndarray] = {}
    for s in hello.streams:
        if not s.enabled or s.rate_hz <= 0:
            continue
        n = int(seconds * s.rate_hz)
        rec = np.zeros(n, dtype=s.dtype)
        for name in s.dtype.names or ():
            dt = s.dtype[name]
            if name == "t_us":
                rec[name] = (np.arange(n, dtype=np.int64) * int(1e6 / s.rate_hz)) & 0xFFFFFFFF
            elif dt.kind in "iu":
                info = np.iinfo(dt)
                lo, hi = max(int(info.min), -(2**23)), min(int(info.max), 2**23)
                rec[name] = rng.integers(lo, hi, n, endpoint=True)
            else:
                rec[name] = rng.standard_normal(n)
        records[s.id] = rec
        cap = records_per_frame(s.record_size)
        for k in range(0, n, cap):
            chunk = rec[k : k + cap]
            t_last = int(chunk["t_us"][-1]) if "t_us" in (s.dtype.names or ()) else k
            items.append((t_last, 1, (s.id, k, chunk)))
    statuses: list[Status] = []
    for k in range(int(seconds)):
        st = Status((k + 1) * 1000, 100 * k, 0, 0, 50000 - k, defs.STATE_RUNNING, 0, 0.5)
        statuses.append(st)
        items.append(((k + 1) * 1_000_000, 2, st))
    events: list[Event] = []
    n_ev = int(seconds * events_per_s)
    for t in np.sort(rng.integers(0, int(seconds * 1e6), n_ev)):
        ev = Event(int(t), defs.EV_EDGE, "edge", defs.CAUSE_NONE, "none", len(events), 0.25)
        events.append(ev)
        items.append((int(t), 3, ev))
    items.sort(key=lambda it: (it[0], it[1]))

    frames: list[bytes] = []
    kinds: list[int] = []
    spans: list[tuple[int, int, int]] = []
    if with_hello:
        frames.append(encoder.encode_hello(hello, seq=0, flags=defs.FLAG_BOOT))
        kinds.append(defs.MSG_HELLO)
        spans.append((-1, 0, 0))
    for _, _, what in items:
        seq = len(frames)
        flags = defs.FLAG_BOOT if seq == 0 else 0
        if isinstance(what, Status):
            frames.append(encoder.encode_status(what, seq=seq, flags=flags))
            kinds.append(defs.MSG_STATUS)
            spans.append((-1, 0, 0))
        elif isinstance(what, Event):
            frames.append(
                encoder.encode_event(
                    what.t_us, what.code, what.cause, what.index, what.value, seq=seq, flags=flags
                )
            )
            kinds.append(defs.MSG_EVENT)
            spans.append((-1, 0, 0))
        else:
            assert isinstance(what, tuple)
            sid, first, chunk = what
            frames.append(encoder.encode_samples(sid, first, chunk, seq=seq, flags=flags))
            kinds.append(defs.MSG_SAMPLES)
            spans.append((sid, first, len(chunk)))
    return SyntheticSession(hello, frames, kinds, spans, records, events, statuses)
