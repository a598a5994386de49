"""Small helpers shared by the HIL modules (collecting blocks, events, edge schedules)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from host_sdk.client import Block, Rig, RigEvent
from protocol import defs


class Collector:
    """Collects the rig's sample blocks per stream from now on (callback on the reader)."""

    def __init__(self, rig: Rig, streams: Iterable[str] | None = None) -> None:
        self.rig = rig
        self.streams = set(streams) if streams is not None else None
        self.blocks: dict[str, list[Block]] = {}
        self._lock = threading.Lock()
        self._unsub = rig.on_block(self._add)

    def _add(self, b: Block) -> None:
        if self.streams is None or b.stream in self.streams:
            with self._lock:
                self.blocks.setdefault(b.stream, []).append(b)

    def close(self) -> None:
        self._unsub()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, stream: str) -> int:
        with self._lock:
            return sum(len(b) for b in self.blocks.get(stream, []))

    def records(self, stream: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(records, t_s, sample_index) of a stream, concatenated in arrival order."""
        with self._lock:
            bl = list(self.blocks.get(stream, []))
        if not bl:
            raise AssertionError(f"no {stream} samples arrived")
        rec = np.concatenate([b.records for b in bl])
        t = np.concatenate([b.t_s for b in bl])
        idx = np.concatenate([b.first_index + np.arange(len(b)) for b in bl])
        return rec, t, idx

    def physical(self, stream: str, field: str) -> np.ndarray:
        """raw * scale + offset with the board's HELLO calibration."""
        rec, _, _ = self.records(stream)
        f = self.rig.streams[stream].field(field)
        return np.asarray(rec[field], dtype=np.float64) * f.scale + f.offset


def wait_for(pred: Any, timeout_s: float, what: str, poll_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.1f} s waiting for {what}")
        time.sleep(poll_s)


def events_after(rig: Rig, mark: int, code: int | None = None) -> list[RigEvent]:
    with rig._lock:  # noqa: SLF001 - a consistent snapshot of the public list
        evs = list(rig.events[mark:])
    return [e for e in evs if code is None or e.code == code]


def pulse_edge_schedule(t0_s: float, t_on_s: float, t_off_s: float, n_edges: int) -> np.ndarray:
    """Commanded device times of a pulse train's first `n_edges` edges, the waveform
    starting at t0: on at t0, off at t0 + t_on, on at t0 + period, ..."""
    k = np.arange(n_edges)
    period = t_on_s + t_off_s
    return t0_s + (k // 2) * period + (k % 2) * t_on_s


def amps_of(rig: Rig, field: str = "current") -> tuple[float, float]:
    """(scale, offset) of the elec current field from the HELLO."""
    f = rig.streams["elec"].field(field)
    return f.scale, f.offset


def state_name(code: int) -> str:
    return defs.STATE_NAMES.get(code, str(code))
