"""Live figures of one rig, downsampled: what the dashboard plots and MQTT carries.

`LiveSampler` sits on a rig's block callback (the reader thread) and only adds up: per
quantity a sum and a count. `take()`, called a few times a wall second, turns them into one
point (the means since the last take) in SI-derived units a scientist reads:

    t_dev_s     device time of the newest sample (s)
    voltage_v   cell voltage (V)            current_a   current (A)
    pressure_mpa stack pressure (MPa) — or force_n (N) when no stack area is known
    strain_ue   FBG strain (µε, first grating against its first reading, uncompensated)
    temp_c      temperature (°C)            lost        samples lost so far (all streams)

Downsampling on wall time, not device time, keeps the live rate the same for a real board
and an emulated one running a week of device time in minutes.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

__all__ = ["QUANTITIES", "LiveSampler"]

P_E = 0.22  # photo-elastic coefficient for the live strain (the analysis uses the calibration)

# quantity -> (label, unit) for the dashboard and the MQTT payload documentation
QUANTITIES: dict[str, tuple[str, str]] = {
    "voltage_v": ("voltage", "V"),
    "current_a": ("current", "A"),
    "pressure_mpa": ("stack pressure", "MPa"),
    "force_n": ("stack force", "N"),
    "strain_ue": ("strain", "µε"),
    "temp_c": ("temperature", "°C"),
    "lost": ("lost samples", ""),
}


def _field(stream: Any, units: tuple[str, ...], skip: str = "t_us") -> Any:
    for f in getattr(stream, "fields", ()) if stream is not None else ():
        if f.unit in units and f.name != skip:
            return f
    return None


class LiveSampler:
    """Means of each quantity between two `take()` calls, from a rig's blocks."""

    def __init__(self, rig: Any, stack_area_m2: float | None = None) -> None:
        self.rig = rig
        self.stack_area_m2 = stack_area_m2
        streams = rig.streams
        self._fv = _field(streams.get("elec"), ("V",))
        self._fi = _field(streams.get("elec"), ("A",))
        self._fl = _field(streams.get("load"), ("N",))
        self._fb = _field(streams.get("fbg"), ("nm",))
        self._ft = _field(streams.get("temp"), ("degC", "°C", "C"))
        self._lam0: float | None = None
        self._sums: dict[str, list[float]] = {}
        self._t = math.nan
        self._lock = threading.Lock()
        self._unsubscribe = rig.on_block(self._on_block)

    def close(self) -> None:
        self._unsubscribe()

    def _add(self, key: str, values: np.ndarray) -> None:
        if values.size:
            acc = self._sums.setdefault(key, [0.0, 0.0])
            acc[0] += float(np.sum(values))
            acc[1] += float(values.size)

    def _scaled(self, block: Any, f: Any) -> np.ndarray:
        raw = np.asarray(block.records[f.name], dtype=np.float64)
        return raw * float(f.scale) + float(f.offset)

    def _on_block(self, block: Any) -> None:
        if not len(block):
            return
        with self._lock:
            self._t = float(block.t_s[-1])
            if block.stream == "elec":
                if self._fv is not None:
                    self._add("voltage_v", self._scaled(block, self._fv))
                if self._fi is not None:
                    self._add("current_a", self._scaled(block, self._fi))
            elif block.stream == "load" and self._fl is not None:
                force = self._scaled(block, self._fl)
                if self.stack_area_m2:
                    self._add("pressure_mpa", force / self.stack_area_m2 / 1e6)
                else:
                    self._add("force_n", force)
            elif block.stream == "fbg" and self._fb is not None:
                lam = self._scaled(block, self._fb)
                lam = lam[lam > 0]
                if lam.size:
                    if self._lam0 is None:
                        self._lam0 = float(lam[0])
                    self._add("strain_ue", (lam - self._lam0) / self._lam0 / (1 - P_E) * 1e6)
            elif block.stream == "temp" and self._ft is not None:
                self._add("temp_c", self._scaled(block, self._ft))

    def take(self) -> dict[str, float] | None:
        """One point: the means since the last call (None when nothing arrived)."""
        with self._lock:
            sums, self._sums = self._sums, {}
            t = self._t
        if not sums:
            return None
        point = {"t_dev_s": t}
        for key, (total, n) in sums.items():
            point[key] = total / n
        point["lost"] = float(sum(self.rig.lost_samples.values()))
        return point
