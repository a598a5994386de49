"""The mapping from the board's device clock to UTC, from `timesync` exchanges.

Each exchange (protocol/README.md §8 `timesync`) gives the device time `d` the board read
between the host's UTC send time `t0` and receive time `t1`: `d` happened at UTC
`(t0 + t1) / 2` within `± (t1 - t0) / 2`. Over many exchanges the host fits
`utc = utc0 + (1 + drift) * d` (MAVLink TIMESYNC in spirit): a weighted least-squares line
with weights 1 / rtt**2, so the few exchanges with short round trips decide it. The
uncertainty stated for a mapped time is the half round trip of the best exchange plus
the fit's residual spread (a real board's USB latency is asymmetric by at most the round
trip; an emulated board runs on virtual time, so its mapping is nominal).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

MAX_EXCHANGES = 256  # the most recent ones are kept (drift changes slowly with temperature)


@dataclass(frozen=True)
class ClockMapping:
    """UTC of device time: `utc_s(d) = utc_at_zero_s + (1 + drift) * d`, ± uncertainty_s."""

    utc_at_zero_s: float  # Unix time (UTC) of device time 0 of this boot
    drift: float  # fractional rate error of the device clock (1e-6 = 1 ppm fast UTC)
    uncertainty_s: float  # bound on the error of a mapped time within the fitted span
    exchanges: int
    min_rtt_s: float
    device_from_s: float  # device-time span the exchanges cover
    device_to_s: float

    def utc_s(self, device_s: float | np.ndarray) -> float | np.ndarray:
        return self.utc_at_zero_s + (1.0 + self.drift) * device_s

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


class ClockSync:
    """Collects exchanges (thread-safe) and fits the mapping; `reset` at a board reboot."""

    def __init__(self, keep: int = MAX_EXCHANGES) -> None:
        self._lock = threading.Lock()
        self._x: deque[tuple[float, float, float]] = deque(maxlen=keep)  # (d, mid, half)
        self._mapping: ClockMapping | None = None

    def reset(self) -> None:
        with self._lock:
            self._x.clear()
            self._mapping = None

    def add(self, t0_utc_s: float, t1_utc_s: float, device_s: float) -> None:
        """One exchange: sent at t0, answered at t1 (host UTC), board read `device_s`."""
        if not (t1_utc_s >= t0_utc_s and math.isfinite(device_s)):
            raise ValueError(f"timesync exchange t0={t0_utc_s} t1={t1_utc_s} d={device_s}")
        with self._lock:
            self._x.append((device_s, 0.5 * (t0_utc_s + t1_utc_s), 0.5 * (t1_utc_s - t0_utc_s)))
            self._mapping = None

    @property
    def exchanges(self) -> int:
        return len(self._x)

    def mapping(self) -> ClockMapping | None:
        """The fitted mapping (None before the first exchange)."""
        with self._lock:
            if self._mapping is None and self._x:
                self._mapping = _fit(list(self._x))
            return self._mapping


def _fit(rows: list[tuple[float, float, float]]) -> ClockMapping:
    a = np.array(rows, dtype=np.float64)
    d, mid, half = a[:, 0], a[:, 1], a[:, 2]
    floor = max(float(half.min()), 1e-6)  # a zero round trip must not get infinite weight
    w = 1.0 / np.maximum(half, floor)
    span = float(d.max() - d.min())
    if len(a) < 3 or span <= 0.0:
        k = int(np.argmin(half))
        utc0, drift = float(mid[k] - d[k]), 0.0
        resid = 0.0
    else:
        # fit utc - d = utc0 + drift * d (subtracting d keeps the numbers small)
        d0 = float(d.mean())
        drift, c = np.polyfit(d - d0, mid - d, 1, w=w)
        utc0 = float(c - drift * d0)
        fit = utc0 + (1.0 + drift) * d
        inside = np.abs(mid - fit) <= half + 1e-9  # the exchanges the line passes within
        resid = 0.0 if inside.all() else float(np.max(np.abs(mid - fit) - half))
    return ClockMapping(
        utc_at_zero_s=float(utc0),
        drift=float(drift),
        uncertainty_s=float(half.min()) + resid,
        exchanges=len(a),
        min_rtt_s=2.0 * float(half.min()),
        device_from_s=float(d.min()),
        device_to_s=float(d.max()),
    )
