"""Synthetic recordings for the analysis tests: a real HDF5 recording (Recorder) with a
board that reports SI fields, a protocol, its steps, the board's events and samples made
from known physics, in well under a second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from host_sdk.recording import Recorder
from host_sdk.wire.messages import FieldInfo, Hello, StreamInfo
from protocol import defs

V_LSB, I_LSB, N_LSB, NM_LSB = 1e-6, 1e-10, 1e-4, 1e-6


def hello() -> Hello:
    f = FieldInfo
    streams = (
        StreamInfo(
            0,
            "load",
            10.0,
            True,
            "<IiB",
            (f("t_us", "us"), f("counts", "N", N_LSB), f("status", "")),
        ),
        StreamInfo(
            1,
            "fbg",
            10.0,
            True,
            "<IBii",
            (f("t_us", "us"), f("status", ""), f("g0", "nm", NM_LSB), f("g1", "nm", NM_LSB)),
        ),
        StreamInfo(
            2,
            "elec",
            10.0,
            True,
            "<IiiB",
            (f("t_us", "us"), f("voltage", "V", V_LSB), f("current", "A", I_LSB), f("state", "")),
        ),
        StreamInfo(
            3,
            "temp",
            1.0,
            True,
            "<IHi",
            (f("t_us", "us"), f("raw", "count"), f("temp", "degC", 1e-3)),
        ),
    )
    return Hello(2, (0, 1, 0), "synthetic", "feedc0de", streams, {"max_current_a": 0.01})


@dataclass
class Step:
    index: int
    kind: str
    label: str
    t_start_s: float
    t_end_s: float
    end_cause: str
    path: str = ""


def _records(h: Hello, name: str, n: int) -> np.ndarray:
    return np.zeros(n, dtype=next(s for s in h.streams if s.name == name).dtype)


def write(
    path: Path,
    *,
    protocol: dict[str, Any] | None,
    steps: list[Step],
    events: list[tuple[float, int, int, int, float]],
    elec: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    load: tuple[np.ndarray, np.ndarray] | None = None,
    fbg: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    cell: dict[str, Any] | None = None,
    url: str = "socket://bench:1",
) -> Path:
    """Write a recording; `events` are (t, code, cause, index, value) as the board sends."""
    h = hello()
    with Recorder(
        path,
        h,
        protocol=protocol,
        cell=cell,
        meta={"url": url},
        reference_grating="g1" if fbg is not None else None,
    ) as r:
        if elec is not None:
            t, v, i = elec
            rec = _records(h, "elec", t.size)
            rec["voltage"] = np.round(v / V_LSB)
            rec["current"] = np.round(i / I_LSB)
            r.add_records("elec", rec, t, 0)
        if load is not None:
            t, force = load
            rec = _records(h, "load", t.size)
            rec["counts"] = np.round(force / N_LSB)
            r.add_records("load", rec, t, 0)
        if fbg is not None:
            t, g0, g1 = fbg
            rec = _records(h, "fbg", t.size)
            rec["g0"] = np.round(g0 * 1e9 / NM_LSB)
            rec["g1"] = np.round(g1 * 1e9 / NM_LSB)
            r.add_records("fbg", rec, t, 0)
        for t, code, cause, index, value in events:
            r.add_event(SimpleNamespace(t_s=t, code=code, cause=cause, index=index, value=value))
        for s in steps:
            s.path = s.path or f"steps[{s.index}]"
            r.add_step(s)
    return path


def waveform_events(
    t_start: float,
    cmd: int,
    edges: list[tuple[float, float]],
    t_end: float,
    cause: int,
    charge_c: float,
) -> list[tuple[float, int, int, int, float]]:
    """waveform_start, one edge event per (time, amps), waveform_end with the charge."""
    out = [(t_start, defs.EV_WAVEFORM_START, 0, cmd, 0.0)]
    out += [(t, defs.EV_EDGE, 0, k, a) for k, (t, a) in enumerate(edges)]
    out.append((t_end, defs.EV_WAVEFORM_END, cause, len(edges), charge_c))
    return out
