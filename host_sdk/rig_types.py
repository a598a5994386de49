"""The Rig's vocabulary: errors, the records it hands out (Block, RigEvent, GapMark),
cutoffs, device-time unwrapping, and small helpers shared by its parts."""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocol import defs

log = logging.getLogger("stressrig.client")

# Firmware versions this SDK was written against: [MIN, MAX) on (major, minor, patch).
FIRMWARE_MIN = (0, 1, 0)
FIRMWARE_MAX = (2, 0, 0)

_U32 = 1 << 32
_HALF = 1 << 31


# ---- errors ---------------------------------------------------------------------------------
class RigError(Exception):
    """Base class of every error the client raises."""


class BoardNotAnswering(RigError):
    """No valid reply within the bounded time; the message says what was tried."""


class IncompatibleBoard(RigError):
    """The board's protocol or firmware version is not one this SDK supports."""


class CommandTimeout(RigError):
    """A command got neither ACK nor NACK after all retries."""


class CommandRefused(RigError):
    """The board answered NACK. `reason` (int), `reason_name` and `text` are the board's."""

    def __init__(self, command: str, reason: int, reason_name: str, text: str) -> None:
        super().__init__(f"{command} refused by the board: {reason_name} ({reason}): {text}")
        self.command = command
        self.reason = reason
        self.reason_name = reason_name
        self.text = text


# ---- data -----------------------------------------------------------------------------------
@dataclass
class Block:
    """Consecutive records of one stream, raw counts plus unwrapped device time."""

    stream: str
    stream_id: int
    first_index: int
    records: np.ndarray  # structured, fields from the board's HELLO
    t_s: np.ndarray  # float64 device time in seconds, unwrapped (64-bit)
    flags: int = 0
    boot: int = 0  # how many board reboots the client has seen before this block

    def __len__(self) -> int:
        return int(self.records.shape[0])


@dataclass
class RigEvent:
    t_s: float
    code: int
    name: str
    cause: int
    cause_name: str
    index: int
    value: float


@dataclass
class GapMark:
    """Samples that never arrived. kind: "lost" (link), "lost_on_board" (the board could
    not take or send them: FLAG_DROPPED), "link_down" or "board_reset"."""

    stream: str
    stream_id: int
    first_index: int
    count: int  # -1 when unknown (link down, reboot)
    t_s: float
    kind: str


@dataclass
class Cutoffs:
    """Cutoffs appended to every waveform command (0 charge/duration = none)."""

    v_min_v: float | None = None  # None: the voltage window set on the rig (or board limit)
    v_max_v: float | None = None
    max_charge_c: float = 0.0
    max_duration_s: float = 0.0


class TimeUnwrapper:
    """u32 microsecond device clock -> monotonic 64-bit seconds.

    One reference point is shared by all streams of a rig: every new value is placed by its
    signed 32-bit distance from the last value seen, which is right as long as two
    consecutive messages are less than 35 minutes apart in device time.
    """

    def __init__(self) -> None:
        self.last_u32: int | None = None
        self.last_us: int = 0
        self.offset_us: int = 0  # added after a board reboot so time keeps increasing
        self._lock = threading.Lock()

    def unwrap(self, t_u32: np.ndarray) -> np.ndarray:
        t = np.asarray(t_u32, dtype=np.int64)
        if t.size == 0:
            return np.empty(0, dtype=np.float64)
        with self._lock:
            if self.last_u32 is None:
                base_u32, base_us = int(t[0]), int(t[0]) + self.offset_us
            else:
                base_u32, base_us = self.last_u32, self.last_us
            steps = np.empty_like(t)
            steps[0] = t[0] - base_u32
            steps[1:] = np.diff(t)
            steps = ((steps + _HALF) % _U32) - _HALF
            us = base_us + np.cumsum(steps)
            if us[-1] >= self.last_us or self.last_u32 is None:
                self.last_u32, self.last_us = int(t[-1]), int(us[-1])
        return us.astype(np.float64) * 1e-6

    def unwrap_one(self, t_u32: int) -> float:
        return float(self.unwrap(np.array([t_u32]))[0])

    def rebooted(self, bridge_s: float) -> None:
        """The device clock restarted: continue after the last time plus `bridge_s`."""
        with self._lock:
            self.offset_us = self.last_us + int(bridge_s * 1e6)
            self.last_u32 = None
            self.last_us = self.offset_us

    @property
    def now_s(self) -> float:
        return self.last_us * 1e-6


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Any = None


_RIGS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()  # id -> Rig


def _name(obj: Any, attr: str, default: Any) -> Any:
    return getattr(obj, attr, default)


# ---- the client -----------------------------------------------------------------------------


MAX_COUNT = 65_535  # the firmware counts pulses in 16 bits


def _check_count(count: Any, what: str) -> None:
    """A pulse count the board can finish: 0 would never end (the waveform ran forever)."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer):
        raise ValueError(f"{what}: count must be an integer from 1 to {MAX_COUNT}, not {count!r}")
    if not 1 <= int(count) <= MAX_COUNT:
        raise ValueError(
            f"{what}: count {int(count)} is out of range; allowed: 1 to {MAX_COUNT} pulses "
            "(for a train that runs until a cutoff, give 65535 and a cutoff)"
        )


def _stream_id_of(stream: Any) -> int:
    if isinstance(stream, int | np.integer):
        return int(stream)
    return int(stream.id)


def _foreign_protocol_version(data: bytes) -> int | None:
    """A protocol version byte other than ours seen after sync words, if any."""
    versions: dict[int, int] = {}
    start = 0
    while True:
        i = data.find(bytes([defs.SYNC0, defs.SYNC1]), start)
        if i < 0 or i + 5 > len(data):
            break
        v = data[i + 4]
        versions[v] = versions.get(v, 0) + 1
        start = i + 1
    if not versions:
        return None
    v, n = max(versions.items(), key=lambda kv: kv[1])
    return v if v != defs.PROTOCOL_VERSION and n >= 2 else None
