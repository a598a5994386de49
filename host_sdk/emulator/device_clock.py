"""The board's device time, read from its own frames, and the speed it achieves.

SAMPLES frames carry the u32 µs time of their first record, EVENT frames a u32 µs time and
STATUS the uptime in ms (the firmware sends it modulo 2**30). Each is unwrapped against the
time seen so far (nearest value; a frame that is a little behind, e.g. the first record of a
slow stream's frame, does not move the clock back). A boot starts the device time at 0.
"""

from __future__ import annotations

from collections import deque

_U32 = 1 << 32
_UPTIME_MS_PERIOD = 1 << 30  # firmware/app.py: STATUS uptime_ms is masked to 30 bits


def _nearest(now: int, raw: int, period: int) -> int:
    """The value congruent to `raw` modulo `period` that is nearest to `now`."""
    d = (raw - now) % period
    if d >= period // 2:
        d -= period
    return now + d


class DeviceClock:
    """Device time since the board's last boot, and the total over every boot."""

    def __init__(self) -> None:
        self.now_us = 0  # since the current boot
        self.total_us = 0  # device time run by all boots together (for the achieved speed)

    def boot(self) -> None:
        self.now_us = 0

    def saw_us(self, raw_u32: int) -> None:
        """A u32 µs device time from a SAMPLES or EVENT frame."""
        self._advance_to(_nearest(self.now_us, raw_u32, _U32))

    def saw_uptime_ms(self, raw_ms: int) -> None:
        """STATUS uptime_ms (unambiguous for 12 days, so it also bridges long silences)."""
        ms = _nearest(self.now_us // 1000, raw_ms % _UPTIME_MS_PERIOD, _UPTIME_MS_PERIOD)
        self._advance_to(ms * 1000)

    def _advance_to(self, t_us: int) -> None:
        if t_us > self.now_us:
            self.total_us += t_us - self.now_us
            self.now_us = t_us

    @property
    def now_s(self) -> float:
        return self.now_us * 1e-6


class SpeedMeter:
    """Device seconds per wall second: over the last `window_s` of wall time and since the
    first sample. Fed (wall time, total device time) pairs by the proxy, as often as it
    likes: the window keeps one pair per `min_interval_s`, the latest pair is always used."""

    def __init__(self, window_s: float = 5.0, min_interval_s: float = 0.25) -> None:
        self.window_s = window_s
        self.min_interval_s = min_interval_s
        self._first: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._window: deque[tuple[float, float]] = deque()

    def sample(self, wall_s: float, device_s: float) -> None:
        self._last = (wall_s, device_s)
        if self._first is None:
            self._first = self._last
        if self._window and wall_s - self._window[-1][0] < self.min_interval_s:
            return
        self._window.append(self._last)
        # keep one pair at or before the window's start, so the window is always covered
        while len(self._window) > 2 and self._window[1][0] <= wall_s - self.window_s:
            self._window.popleft()

    def recent(self) -> float:
        """Over the last few wall seconds (0.0 until there is something to measure)."""
        if not self._window or self._last is None:
            return 0.0
        return _ratio(self._window[0], self._last)

    def since_start(self) -> float:
        if self._first is None or self._last is None:
            return 0.0
        return _ratio(self._first, self._last)


def _ratio(a: tuple[float, float], b: tuple[float, float]) -> float:
    wall = b[0] - a[0]
    return (b[1] - a[1]) / wall if wall > 0 else 0.0
