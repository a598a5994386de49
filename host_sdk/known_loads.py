"""Measuring the load cell at known loads: a human places them (Enter between points), or
the emulated press does (its control channel). The means go to `fit_load_cell`.

Each point is timed on the device clock: streaming restarts after the load is placed, and
the board stamps that restart (EV_STREAMING), so samples from before the load moved are
never averaged in, however far the host lags the board.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from host_sdk.calibration import G_M_S2, LOAD_STATUS_BAD, CalibrationError

__all__ = ["StreamCollector", "emulated_press_loads", "mean_of_field", "measure_known_loads"]


class StreamCollector:
    """Every block of one stream from the moment it is made. Subscribe before the board is
    asked to stream: a board that runs ahead of the host (an emulated one at speed max)
    may have sent the samples wanted before a late subscriber would see them."""

    def __init__(self, rig: Any, stream: str) -> None:
        self.stream = stream
        self.blocks: list[Any] = []
        self._cond = threading.Condition()
        self._remove = rig.on_block(self._on_block)

    def _on_block(self, block: Any) -> None:
        if block.stream == self.stream:
            with self._cond:
                self.blocks.append(block)
                self._cond.notify_all()

    def close(self) -> None:
        self._remove()

    def mean_between(
        self, field_name: str, t_from_s: float, t_to_s: float, stall_s: float = 30.0
    ) -> tuple[float, int]:
        """(mean, n) of a raw field over samples with device time in [t_from_s, t_to_s],
        once samples past t_to_s arrived; load-cell readings flagged glitch/not-ready are
        left out. Gives up after `stall_s` of wall time without a new block."""
        seen = 0
        with self._cond:
            while not (self.blocks and float(self.blocks[-1].t_s[-1]) >= t_to_s):
                seen = len(self.blocks)
                self._cond.wait(timeout=stall_s)
                if len(self.blocks) == seen:
                    break
            blocks = list(self.blocks)
        values: list[np.ndarray] = []
        for block in blocks:
            t = np.asarray(block.t_s)
            keep = (t >= t_from_s) & (t <= t_to_s)
            if self.stream == "load" and "status" in (block.records.dtype.names or ()):
                keep &= (np.asarray(block.records["status"]) & LOAD_STATUS_BAD) == 0
            values.append(np.asarray(block.records[field_name], dtype=np.float64)[keep])
        got = np.concatenate(values) if values else np.empty(0)
        if got.size == 0:
            raise CalibrationError(f"no {self.stream} samples arrived; is the stream enabled?")
        return float(np.mean(got)), int(got.size)


def measure_known_loads(
    rig: Any,
    loads_n: list[float],
    hold_s: float,
    place: Callable[[float], None],
    *,
    settle_s: float = 0.5,
    report: Callable[[float, float, int], None] | None = None,
) -> list[float]:
    """Mean load-cell counts at each known load. `place(load_n)` puts the load on the cell
    (asks a human, or tells the emulated press); the mean then covers `hold_s` of device
    time from `settle_s` after the board restarted streaming. Restarting the stream
    stamps a device time (the streaming event) after which the new load is certainly on:
    samples in flight from before it are not counted."""
    load = rig.streams["load"]
    field_name = next(f.name for f in load.fields if f.name not in ("t_us", "status"))
    rate = float(rig.stream_config.get("load", {}).get("rate_hz", load.rate_hz))
    rig.configure_stream("load", rate_hz=rate, enabled=True)
    # two conversions of the HX711 after the load moved, at least
    settle = max(settle_s, 2.5 / max(rate, 1e-3))
    means: list[float] = []
    for f_n in loads_n:
        rig.set_streaming(False)
        place(f_n)
        collector = StreamCollector(rig, "load")
        try:
            t_on = _sync_point(rig)
            mean, n = collector.mean_between(field_name, t_on + settle, t_on + settle + hold_s)
        finally:
            collector.close()
        if report is not None:
            report(f_n, mean, n)
        means.append(mean)
    return means


def _sync_point(rig: Any) -> float:
    """Restart streaming and return the device time the board stamped on it: a control
    message sent before this is in effect 20 ms of device time later at the latest."""
    from protocol import defs

    rig.set_streaming(False)
    mark = rig.event_mark()
    rig.set_streaming(True)
    ev = rig.wait_event((defs.EV_STREAMING,), after=mark, timeout_s=30.0)
    return float(ev.t_s) if ev is not None else float(rig.device_time_s)


def emulated_press_loads(
    rig: Any,
    loads_n: list[float],
    hold_s: float,
    *,
    report: Callable[[float, float, int], None] | None = None,
) -> list[float]:
    """Mean load-cell counts at known loads on an emulated board: its press opens (the
    stack's force off the load cell, as when a load cell is calibrated out of the press),
    places each load as a mass, then removes it and closes again. Streaming is left off,
    after the closed press is in effect."""
    emu = rig.emulator
    if emu is None:
        raise CalibrationError("the emulated press needs an emulated board (emu://...)")
    emu.open_press(True)
    try:
        return measure_known_loads(
            rig, loads_n, hold_s, lambda f: emu.apply_mass(f / G_M_S2), report=report
        )
    finally:
        emu.apply_mass(0.0)
        emu.open_press(False)
        t_sync = _sync_point(rig)
        deadline = time.monotonic() + 30.0
        while rig.device_time_s < t_sync + 0.05 and time.monotonic() < deadline:
            time.sleep(0.01)
        rig.set_streaming(False)


def mean_of_field(rig: Any, stream: str, field_name: str, duration_s: float) -> float:
    """Mean raw value of one field over `duration_s` of device time (rig must stream)."""
    values: list[np.ndarray] = []
    t_start: float | None = None
    deadline = time.monotonic() + duration_s * 10 + 10
    for block in rig.blocks(timeout_s=5.0):
        if block.stream != stream:
            continue
        if t_start is None:
            t_start = float(block.t_s[0])
        values.append(np.asarray(block.records[field_name], dtype=np.float64))
        if float(block.t_s[-1]) - t_start >= duration_s or time.monotonic() > deadline:
            break
    if not values:
        raise TimeoutError(f"no {stream} samples arrived; is the stream enabled?")
    return float(np.mean(np.concatenate(values)))
