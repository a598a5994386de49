"""The device client: `Rig.open(url)` talks to one board through a `Link`.

One background reader thread turns bytes into messages (host_sdk.wire.Decoder), routes ACK/NACK
to the command that waits for them, unwraps device time, and hands sample blocks to
subscribers (iterators and callbacks). A heartbeat thread keeps the board's watchdog fed.
When the port disappears the reader reopens it and re-handshakes; when the board reboots the
client marks a gap on every stream and re-applies the configuration it had sent.

    with Rig.open("emu://nak50?speed=20") as rig:
        rig.configure_stream("elec", rate_hz=100)
        rig.set_streaming(True)
        for block in rig.blocks(timeout_s=1.0):
            print(block.stream, block.t_s[-1], block.records["v_counts"][-1])

Leaving the `with` block always sends STOP and verifies, through STATUS, that the current is
off, even when the body raised.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from host_sdk import wire
from host_sdk.transport import Link, LinkLost
from protocol import defs

__all__ = [
    "Block",
    "BoardNotAnswering",
    "CommandRefused",
    "CommandTimeout",
    "Cutoffs",
    "GapMark",
    "IncompatibleBoard",
    "Rig",
    "RigError",
    "RigEvent",
    "TimeUnwrapper",
    "open_rigs",
]

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


_RIGS: weakref.WeakValueDictionary[str, Rig] = weakref.WeakValueDictionary()


def open_rigs() -> dict[str, Rig]:
    """The rigs open in this process, by board unique id."""
    return dict(_RIGS)


def _name(obj: Any, attr: str, default: Any) -> Any:
    return getattr(obj, attr, default)


# ---- the client -----------------------------------------------------------------------------
class Rig:
    """One board. Use `Rig.open(url)` (or `Rig(Link(...)).connect()`); close it or use `with`."""

    def __init__(
        self,
        link: Link,
        *,
        command_timeout_s: float = 1.0,
        retries: int = 3,
        connect_timeout_s: float = 5.0,
        heartbeat_s: float | None = 0.5,
        watchdog_s: float | None = None,
        reconnect: bool = True,
        reconnect_timeout_s: float = 30.0,
        check_versions: bool = True,
    ) -> None:
        self.link = link
        self.command_timeout_s = command_timeout_s
        self.retries = retries
        self.connect_timeout_s = connect_timeout_s
        self.heartbeat_s = heartbeat_s
        self.watchdog_s = watchdog_s
        self.reconnect = reconnect
        self.reconnect_timeout_s = reconnect_timeout_s
        self.check_versions = check_versions

        self.hello: Any = None
        self.last_status: Any = None
        self.events: list[RigEvent] = []
        self.gaps: list[GapMark] = []
        self.logs: list[tuple[int, str]] = []
        self.boots = 0
        self.reconnects = 0
        self.bytes_in = 0
        self.time = TimeUnwrapper()
        self.last_index: dict[int, int] = {}  # stream id -> index after its last sample

        self._decoder = wire.Decoder()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}
        self._cmd_seq = 0
        self._hello_count = 0
        self._status_count = 0
        self._subscribers: list[queue.Queue[Block | None]] = []
        self._block_cbs: list[Callable[[Block], None]] = []
        self._event_cbs: list[Callable[[RigEvent], None]] = []
        self._gap_cbs: list[Callable[[GapMark], None]] = []
        self._config: dict[str, tuple[int, dict[str, Any]]] = {}  # replayed after a reboot
        self._stream_config: dict[int, dict[str, Any]] = {}
        self._streaming = False
        self._v_window: tuple[float, float] | None = None
        self._closing = threading.Event()
        self._link_up = threading.Event()
        self._reader: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self._capture = bytearray()  # first bytes received, for diagnostics
        self._last_rx_wall = time.monotonic()
        self._resync_thread: threading.Thread | None = None
        self._clock_first: tuple[float, float] | None = None  # (wall, device) seconds
        self._clock_last: tuple[float, float] | None = None
        self._watchdog_set_s: float | None = None
        self._clock_boot = 0
        self._closed = False
        self._reboot_wall = 0.0
        self._last_sample_wall = time.monotonic()
        self._beat_due = threading.Event()  # the device clock ran a quarter watchdog on
        self._beat_device_s = 0.0  # device time of the last heartbeat sent
        self._gave_up = False  # the link was lost for good (no reconnect)
        # host-side facts about the cell: the board needs only the electrode area; the
        # pressed (stack) area is what turns the load cell's force into stack pressure
        self.cell: dict[str, Any] = {}
        # applied stream settings (from the ACKs): name -> {"enabled": bool, "rate_hz": f}
        self.stream_config: dict[str, dict[str, Any]] = {}
        self.device_epoch_utc: float | None = None  # Unix time of device time 0 (estimate)

    # ---- opening and closing --------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, link_options: dict[str, Any] | None = None, **options: Any) -> Rig:
        """Open a port (`/dev/ttyACM0`, `socket://host:port`, `emu://SCENARIO?speed=50`).

        Raises PortNotFound, BoardNotAnswering or IncompatibleBoard; the port and any
        emulator it started are closed again on failure.
        """
        link = Link(url, **(link_options or {}))
        rig = cls(link, **options)
        try:
            rig.connect()
        except BaseException:
            rig._shutdown_threads()
            link.close()
            raise
        return rig

    def connect(self) -> Rig:
        """Open the link, start the reader, handshake, start the heartbeat."""
        if not self.link.is_open:
            self.link.open()
        self._link_up.set()
        self._reader = threading.Thread(target=self._read_loop, name="rig-reader", daemon=True)
        self._reader.start()
        self._handshake(self.connect_timeout_s)
        if self.watchdog_s is not None:
            self.set_watchdog(self.watchdog_s)
        if self.heartbeat_s:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop, name="rig-heartbeat", daemon=True
            )
            self._heartbeat.start()
        _RIGS[self.unique_id] = self
        return self

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, *, leave_current_off: bool = True) -> None:
        """Stop the current (and verify), stop streaming, stop threads, close the port."""
        if self._closed:
            return
        self._closed = True
        error: Exception | None = None
        if leave_current_off and self.hello is not None and self._closing.is_set():
            log.warning(
                "%s: link lost, STOP could not be sent; the board's watchdog switches the "
                "current off when the host stays silent",
                self.describe(),
            )
        if leave_current_off and self.hello is not None and not self._closing.is_set():
            try:
                self.ensure_current_off()
            except RigError as e:
                error = e
            with contextlib.suppress(RigError, LinkLost):
                self.set_streaming(False)
        self._shutdown_threads()
        self.link.close()
        with self._lock:
            for q in self._subscribers:
                q.put(None)
        if self.hello is not None:
            _RIGS.pop(self.unique_id, None)
        if error is not None:
            raise error

    def _shutdown_threads(self) -> None:
        self._closing.set()
        self._link_up.set()
        self._beat_due.set()
        for t in (self._reader, self._heartbeat):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=2.0)

    def ensure_current_off(self, attempts: int = 3) -> Any:
        """STOP, then read STATUS until it shows no current; raise RigError if it never does."""
        last: Any = None
        for _ in range(attempts):
            with contextlib.suppress(CommandTimeout, CommandRefused):
                self.stop()
            try:
                last = self.status()
            except (CommandTimeout, CommandRefused, BoardNotAnswering):
                continue
            if (
                int(_name(last, "state", 0)) != defs.STATE_RUNNING
                and float(_name(last, "setpoint_a", 0.0)) == 0.0
            ):
                return last
        raise RigError(
            f"could not verify that the current is off on {self.describe()} "
            f"after {attempts} STOP commands (last status: {last!r})"
        )

    # ---- identity -------------------------------------------------------------------------
    @property
    def unique_id(self) -> str:
        return str(self.hello.unique_id) if self.hello is not None else ""

    @property
    def board_id(self) -> str:
        return str(self.hello.board_id) if self.hello is not None else ""

    @property
    def firmware_version(self) -> tuple[int, int, int]:
        fw = tuple(self.hello.firmware_version) if self.hello is not None else (0, 0, 0)
        return (int(fw[0]), int(fw[1]), int(fw[2]))

    def describe(self) -> str:
        who = f"{self.board_id} {self.unique_id}" if self.hello is not None else "board"
        return f"{who} on {self.link.describe()}"

    @property
    def link_lost(self) -> bool:
        """True once the port was lost for good (the client gave up reopening it)."""
        return self._gave_up

    @property
    def emulator(self) -> Any:
        """The emulator started for an emu:// URL (None for real boards)."""
        return self.link.emulator

    @property
    def streams(self) -> dict[str, Any]:
        """StreamInfo by name, from the HELLO."""
        if self.hello is None:
            return {}
        return {s.name: s for s in self.hello.streams}

    def stream_id(self, stream: str | int) -> int:
        if isinstance(stream, int):
            return stream
        for s in self.hello.streams if self.hello is not None else ():
            if s.name == stream:
                return int(s.id)
        if stream in defs.STREAM_NAMES:
            return defs.STREAM_NAMES.index(stream)
        raise ValueError(f"unknown stream {stream!r}; the board has {list(self.streams)}")

    def stream_name(self, stream_id: int) -> str:
        for s in self.hello.streams if self.hello is not None else ():
            if int(s.id) == stream_id:
                return str(s.name)
        if 0 <= stream_id < len(defs.STREAM_NAMES):
            return defs.STREAM_NAMES[stream_id]
        return f"stream{stream_id}"

    # ---- data out -------------------------------------------------------------------------
    def blocks(self, *, timeout_s: float | None = None, maxsize: int = 0) -> Iterator[Block]:
        """Iterate over sample blocks arriving from the moment of this call.

        Ends when no block arrives for `timeout_s` (None: never) or the rig closes.
        """
        q: queue.Queue[Block | None] = queue.Queue(maxsize)
        with self._lock:
            self._subscribers.append(q)
        return self._drain(q, timeout_s)

    def _drain(self, q: queue.Queue[Block | None], timeout_s: float | None) -> Iterator[Block]:
        try:
            while True:
                try:
                    item = q.get(timeout=timeout_s)
                except queue.Empty:
                    return
                if item is None:
                    return
                yield item
        finally:
            with self._lock:
                if q in self._subscribers:
                    self._subscribers.remove(q)

    def on_block(self, cb: Callable[[Block], None]) -> Callable[[], None]:
        """Call `cb(block)` on the reader thread for every block; returns an unsubscriber."""
        return self._add_cb(self._block_cbs, cb)

    def on_event(self, cb: Callable[[RigEvent], None]) -> Callable[[], None]:
        return self._add_cb(self._event_cbs, cb)

    def on_gap(self, cb: Callable[[GapMark], None]) -> Callable[[], None]:
        return self._add_cb(self._gap_cbs, cb)

    def _add_cb(self, lst: list[Any], cb: Any) -> Callable[[], None]:
        with self._lock:
            lst.append(cb)

        def remove() -> None:
            with self._lock:
                if cb in lst:
                    lst.remove(cb)

        return remove

    @property
    def lost_samples(self) -> dict[str, int]:
        """Samples lost per stream name: on the link (index gaps) and on the board (frames
        it could not send, sample slots its loop was too late for; FLAG_DROPPED). Each gap
        in `gaps` says which, where and how many."""
        out = {self.stream_name(int(s.id)): 0 for s in (self.hello.streams if self.hello else ())}
        with self._lock:
            for g in self.gaps:
                if g.count > 0:
                    out[g.stream] = out.get(g.stream, 0) + g.count
        return out

    @property
    def decoder(self) -> Any:
        return self._decoder

    @property
    def device_time_s(self) -> float:
        """Latest device time seen (unwrapped), seconds."""
        return self.time.now_s

    # ---- commands -------------------------------------------------------------------------
    def _next_seq(self) -> int:
        with self._lock:
            self._cmd_seq = (self._cmd_seq + 1) & 0xFFFF
            return self._cmd_seq

    def command(
        self,
        cmd_id: int,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        **fields: Any,
    ) -> Any:
        """Send a command and wait for its ACK (returned) or NACK (CommandRefused raised).

        Each try waits `timeout_s`; a retry resends the same cmd_seq so the board applies the
        command once even when only the ACK was lost.
        """
        name = defs.COMMANDS[cmd_id][0]
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        tries = 1 + (self.retries if retries is None else retries)
        seq = self._next_seq()
        frame = wire.encode_command(cmd_id, seq, seq, **fields)
        pending = _Pending()
        with self._lock:
            self._pending[seq] = pending
        try:
            for _ in range(tries):
                if not self._link_up.wait(timeout=self.reconnect_timeout_s):
                    break
                try:
                    self.link.write(frame)
                except LinkLost:
                    self._link_up.clear()
                    continue
                if pending.done.wait(timeout):
                    break
        finally:
            with self._lock:
                self._pending.pop(seq, None)
        reply = pending.reply
        if reply is None:
            raise CommandTimeout(
                f"{name} (cmd_seq {seq}) got no ACK/NACK from {self.describe()} after "
                f"{tries} tries of {timeout:.2f} s"
            )
        if isinstance(reply, wire.Nack):
            raise CommandRefused(name, int(reply.reason), str(reply.reason_name), str(reply.text))
        return reply

    def _remember(self, key: str, cmd_id: int, fields: dict[str, Any]) -> None:
        with self._lock:
            self._config[key] = (cmd_id, dict(fields))

    def configure_stream(self, stream: str | int, *, rate_hz: float, enabled: bool = True) -> Any:
        """Enable/disable a stream and set its sample rate; the ACK holds the applied rate."""
        sid = self.stream_id(stream)
        fields: dict[str, Any] = {
            "stream": sid,
            "enabled": 1 if enabled else 0,
            "rate_hz": float(rate_hz),
        }
        ack = self.command(defs.CMD_CONFIG_STREAM, **fields)
        self._remember(f"stream{sid}", defs.CMD_CONFIG_STREAM, fields)
        applied = dict(getattr(ack, "applied", {}) or {})
        with self._lock:
            self.stream_config[self.stream_name(sid)] = {
                "enabled": bool(enabled),
                "rate_hz": float(applied.get("rate_hz", rate_hz)),
            }
        return ack

    def set_streaming(self, on: bool) -> Any:
        ack = self.command(defs.CMD_SET_STREAMING, on=1 if on else 0)
        self._streaming = bool(on)
        return ack

    def set_cell(
        self, area_m2: float, *, stack_area_m2: float | None = None, label: str = ""
    ) -> Any:
        """The cell: `area_m2` is the electrode area (the board uses it for A/m² currents
        and current-density limits); `stack_area_m2` the pressed area the load cell's force
        acts on (stack pressure = force / stack_area_m2; kept on the host and stored with
        recordings, e.g. a 9 mm die: 6.362e-5 m²)."""
        if stack_area_m2 is not None and not 0.0 < float(stack_area_m2) <= 1.0:
            raise ValueError(f"stack_area_m2 must be in (0, 1] m², not {stack_area_m2!r}")
        fields: dict[str, Any] = {"area_m2": float(area_m2)}
        ack = self.command(defs.CMD_SET_CELL, **fields)
        self._remember("cell", defs.CMD_SET_CELL, fields)
        self.cell = {"electrode_area_m2": float(area_m2)}
        if stack_area_m2 is not None:
            self.cell["stack_area_m2"] = float(stack_area_m2)
        if label:
            self.cell["label"] = label
        return ack

    def set_watchdog(self, timeout_s: float) -> Any:
        """Current off when the host is silent for `timeout_s` while a waveform runs. The
        board keeps it within its min/max_watchdog_ms limits and cannot switch it off."""
        fields: dict[str, Any] = {"timeout_ms": int(round(timeout_s * 1000))}
        ack = self.command(defs.CMD_SET_WATCHDOG, **fields)
        self._watchdog_set_s = float(timeout_s) or None
        self._remember("watchdog", defs.CMD_SET_WATCHDOG, fields)
        return ack

    def set_voltage_window(self, v_min_v: float, v_max_v: float) -> Any:
        fields: dict[str, Any] = {"v_min_v": float(v_min_v), "v_max_v": float(v_max_v)}
        ack = self.command(defs.CMD_SET_VOLTAGE_WINDOW, **fields)
        self._v_window = (float(v_min_v), float(v_max_v))
        self._remember("vwindow", defs.CMD_SET_VOLTAGE_WINDOW, fields)
        return ack

    def _cutoff_fields(self, cutoffs: Cutoffs | None) -> dict[str, Any]:
        c = cutoffs or Cutoffs()
        if c.v_min_v is None and c.v_max_v is None and self._v_window is None:
            # no cutoff asked for and no window set: 0/0 = "no waveform voltage cutoff"
            # (the board's safety window still applies). Echoing the HELLO's limits back
            # does not work: they are f32-rounded (4.4 -> 4.4000001) and the board refuses
            # a cutoff above its own limit.
            lo, hi = 0.0, 0.0
            return {
                "v_min_v": lo,
                "v_max_v": hi,
                "max_charge_c": float(c.max_charge_c),
                "max_duration_s": float(c.max_duration_s),
            }
        lo, hi = self._v_window or self._limit_window()
        return {
            "v_min_v": float(lo if c.v_min_v is None else c.v_min_v),
            "v_max_v": float(hi if c.v_max_v is None else c.v_max_v),
            "max_charge_c": float(c.max_charge_c),
            "max_duration_s": float(c.max_duration_s),
        }

    def _limit_window(self) -> tuple[float, float]:
        """Voltage cutoffs when none were given: the board's own limits (compliance)."""
        limits = dict(getattr(self.hello, "limits", {}) or {})
        hi = next((limits[k] for k in ("v_max_v", "compliance_v") if k in limits), 10.0)
        lo = next((limits[k] for k in ("v_min_v", "min_voltage_v") if k in limits), -hi)
        # the HELLO carries f32: step 1 ppm inside so the board's range check accepts them
        return float(lo) + 1e-6 * abs(float(lo)), float(hi) - 1e-6 * abs(float(hi))

    @staticmethod
    def _current(a: float | None, a_m2: float | None, what: str) -> tuple[int, float]:
        if (a is None) == (a_m2 is None):
            raise ValueError(f"give exactly one of {what}_a or {what}_a_m2")
        if a is not None:
            return defs.UNIT_A, float(a)
        assert a_m2 is not None
        return defs.UNIT_A_PER_M2, float(a_m2)

    def rest(self, duration_s: float) -> Any:
        """Current off for `duration_s` (device time); ends with a waveform_end event."""
        return self.command(defs.CMD_REST, duration_s=float(duration_s))

    def constant_current(
        self,
        *,
        current_a: float | None = None,
        current_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        unit, value = self._current(current_a, current_a_m2, "current")
        return self.command(
            defs.CMD_CONSTANT, unit=unit, current=value, **self._cutoff_fields(cutoffs)
        )

    def pulse_train(
        self,
        *,
        t_on_s: float,
        t_off_s: float,
        count: int,
        amplitude_a: float | None = None,
        amplitude_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        _check_count(count, "pulse_train")
        unit, value = self._current(amplitude_a, amplitude_a_m2, "amplitude")
        return self.command(
            defs.CMD_PULSE_TRAIN,
            unit=unit,
            amplitude=value,
            t_on_s=float(t_on_s),
            t_off_s=float(t_off_s),
            count=int(count),
            **self._cutoff_fields(cutoffs),
        )

    def staircase(
        self,
        *,
        start: float,
        step: float,
        stop: float,
        dwell_s: float,
        on_s: float,
        per_m2: bool = False,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        """Current steps start, start+step, ... stop (A, or A/m² with per_m2=True); each
        step is on for `on_s` of its `dwell_s`."""
        return self.command(
            defs.CMD_STAIRCASE,
            unit=defs.UNIT_A_PER_M2 if per_m2 else defs.UNIT_A,
            start=float(start),
            step=float(step),
            stop=float(stop),
            dwell_s=float(dwell_s),
            on_s=float(on_s),
            **self._cutoff_fields(cutoffs),
        )

    def gitt(
        self,
        *,
        t_pulse_s: float,
        t_rest_s: float,
        count: int,
        amplitude_a: float | None = None,
        amplitude_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        _check_count(count, "gitt")
        unit, value = self._current(amplitude_a, amplitude_a_m2, "amplitude")
        return self.command(
            defs.CMD_GITT,
            unit=unit,
            amplitude=value,
            t_pulse_s=float(t_pulse_s),
            t_rest_s=float(t_rest_s),
            count=int(count),
            **self._cutoff_fields(cutoffs),
        )

    def stop(self) -> Any:
        """Current off now (the waveform ends with cause host_stop)."""
        return self.command(defs.CMD_STOP)

    def clear_fault(self) -> Any:
        return self.command(defs.CMD_CLEAR_FAULT)

    def enter_repl(self) -> Any:
        """Leave binary mode: the board drops to the MicroPython REPL (for mpremote)."""
        return self.command(defs.CMD_ENTER_REPL)

    def reset(self) -> Any:
        """Reboot the board; the client reconnects and marks a gap on every stream."""
        return self.command(defs.CMD_RESET)

    def heartbeat(self) -> Any:
        return self.command(defs.CMD_HEARTBEAT)

    def status(self, timeout_s: float | None = None) -> Any:
        """Ask for STATUS and return the next one that arrives."""
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            seen = self._status_count
        for _ in range(1 + self.retries):
            ack_or_none: Any = None
            with contextlib.suppress(CommandTimeout):
                ack_or_none = self.command(defs.CMD_GET_STATUS, timeout_s=timeout, retries=0)
            with self._cond:
                if self._cond.wait_for(lambda: self._status_count > seen, timeout=timeout):
                    return self.last_status
            del ack_or_none
        raise CommandTimeout(f"no STATUS from {self.describe()}")

    def info(self, timeout_s: float | None = None) -> Any:
        """Ask for HELLO again (GET_INFO) and return it."""
        self._handshake(timeout_s or self.connect_timeout_s)
        return self.hello

    # ---- waveforms: waiting for their end ---------------------------------------------------
    def event_mark(self) -> int:
        """Position in `events`; pass to `wait_event` to wait for events after this point."""
        with self._lock:
            return len(self.events)

    def wait_event(
        self,
        codes: tuple[int, ...] = (defs.EV_WAVEFORM_END, defs.EV_STOP_LATCHED),
        *,
        after: int = 0,
        timeout_s: float | None = None,
    ) -> RigEvent | None:
        """Wait for an event whose code is in `codes`, among events after index `after`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                for ev in self.events[after:]:
                    if ev.code in codes:
                        return ev
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                if self._closing.is_set():
                    return None
                self._cond.wait(timeout=0.2 if remaining is None else min(remaining, 0.2))

    # ---- handshake ------------------------------------------------------------------------
    def _handshake(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        tries = 0
        with self._lock:
            seen = self._hello_count
        per_try = max(0.2, min(1.0, timeout_s / 4))
        while time.monotonic() < deadline:
            tries += 1
            seq = self._next_seq()
            with contextlib.suppress(LinkLost):
                if self._link_up.is_set():
                    self.link.write(wire.encode_command(defs.CMD_GET_INFO, seq, seq))
            with self._cond:
                if self._cond.wait_for(
                    lambda: self._hello_count > seen,
                    timeout=min(per_try, max(0.0, deadline - time.monotonic())),
                ):
                    break
        else:
            self._raise_not_answering(tries, timeout_s)
        if self.check_versions:
            self._check_versions()

    def _raise_not_answering(self, tries: int, timeout_s: float) -> None:
        dec = self._decoder
        found = _foreign_protocol_version(bytes(self._capture))
        if found is not None:
            raise IncompatibleBoard(
                f"{self.link.describe()}: the board sends protocol version {found}; this SDK "
                f"speaks protocol version {defs.PROTOCOL_VERSION}. Update the firmware "
                "(stressrig flash) or the SDK."
            )
        raise BoardNotAnswering(
            f"no HELLO from {self.link.describe()}: sent GET_INFO {tries} times over "
            f"{timeout_s:.1f} s; received {self.bytes_in} bytes, "
            f"{_name(dec, 'frames_ok', 0)} valid frames, {_name(dec, 'bad_frames', 0)} bad "
            "frames. Is the board powered, the firmware running (not sitting at the REPL), "
            "and is this the right port? `stressrig ports` lists the ports."
        )

    def _check_versions(self) -> None:
        h = self.hello
        fw = self.firmware_version
        ok_fw = FIRMWARE_MIN <= fw < FIRMWARE_MAX
        if int(h.protocol_version) != defs.PROTOCOL_VERSION or not ok_fw:
            raise IncompatibleBoard(
                f"{self.link.describe()}: board {h.board_id} runs firmware "
                f"{'.'.join(map(str, fw))} with protocol version {h.protocol_version}; this SDK "
                f"needs protocol version {defs.PROTOCOL_VERSION} and firmware "
                f">= {'.'.join(map(str, FIRMWARE_MIN))}, < {'.'.join(map(str, FIRMWARE_MAX))}"
            )

    # ---- reader -----------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.link.read(65536)
            except LinkLost as e:
                if self._closing.is_set():
                    return
                self._link_lost(str(e))
                continue
            if not data:
                continue
            self.bytes_in += len(data)
            self._last_rx_wall = time.monotonic()
            if len(self._capture) < 4096:
                self._capture += data[: 4096 - len(self._capture)]
            try:
                messages = self._decoder.feed(data)
            except Exception:  # noqa: BLE001 - the decoder must never kill the reader
                log.exception("decoder raised; dropping %d bytes", len(data))
                continue
            for msg in messages:
                try:
                    self._dispatch(msg)
                except Exception:  # noqa: BLE001 - a bad callback must not kill the reader
                    log.exception("while handling %r", type(msg).__name__)
            if self.heartbeat_s and self._link_up.is_set() and self._heartbeat_due_by_device_time():
                # beat from here, at once: handing it to the heartbeat thread cost a thread
                # switch (up to the interpreter's 5 ms switch interval while this thread
                # decodes), and an emulated board at the host lease waits for this byte
                self._send_heartbeat()

    def _heartbeat_due_by_device_time(self) -> bool:
        """True once the device clock has run a quarter of the watchdog since the last
        heartbeat: an emulated board's clock can run far ahead of any wall-time interval."""
        now = self.time.now_s
        if now < self._beat_device_s:  # the board rebooted: its clock started again
            self._beat_device_s = now
        return now - self._beat_device_s >= self._watchdog_device_s() / 4

    def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, wire.SampleBlock):
            self._on_samples(msg)
        elif isinstance(msg, wire.Ack | wire.Nack):
            with self._lock:
                p = self._pending.get(int(msg.cmd_seq))
            if p is not None and not p.done.is_set():
                p.reply = msg
                p.done.set()
        elif isinstance(msg, wire.Hello):
            self._on_hello(msg)
        elif isinstance(msg, wire.Event):
            self._on_event(msg)
        elif isinstance(msg, wire.Status):
            with self._cond:
                self.last_status = msg
                self._status_count += 1
                self._cond.notify_all()
        elif isinstance(msg, wire.Gap):
            sid = _stream_id_of(msg.stream)
            self._add_gap(
                GapMark(
                    self.stream_name(sid),
                    sid,
                    int(msg.first_index),
                    int(msg.count),
                    self.time.now_s,
                    "lost_on_board" if getattr(msg, "on_board", False) else "lost",
                )
            )
        elif isinstance(msg, wire.Log):
            self.logs.append((int(msg.level), str(msg.text)))
            log.log(int(msg.level), "board: %s", msg.text)

    def _on_hello(self, hello: Any) -> None:
        previous = self.hello
        with contextlib.suppress(AttributeError):
            self._decoder.set_hello(hello)
        with self._cond:
            self.hello = hello
            self._hello_count += 1
            self._cond.notify_all()
        if previous is not None and previous.unique_id != hello.unique_id:
            log.warning(
                "a different board answers on %s: %s (was %s)",
                self.link.describe(),
                hello.unique_id,
                previous.unique_id,
            )

    def _on_samples(self, sb: Any) -> None:
        sid = _stream_id_of(sb.stream)
        flags = int(getattr(sb, "flags", 0))
        if flags & defs.FLAG_BOOT and self.last_index.get(sid, 0) > 0 and sb.first_index == 0:
            self._board_rebooted("boot flag on a sample frame")
        records = sb.records
        t_s = self.time.unwrap(records["t_us"])
        if len(t_s):
            point = (time.monotonic(), float(t_s[-1]))
            if self.device_epoch_utc is None:
                # the sample was taken a link latency ago: good to a few ms on a real
                # board; for an emulated board its virtual clock makes it nominal
                self.device_epoch_utc = time.time() - float(t_s[-1])
            with self._lock:
                if self._clock_first is None or self.boots != self._clock_boot:
                    self._clock_first, self._clock_boot = point, self.boots
                self._clock_last = point
        block = Block(
            self.stream_name(sid), sid, int(sb.first_index), records, t_s, flags, self.boots
        )
        self.last_index[sid] = int(sb.first_index) + len(records)
        self._last_sample_wall = time.monotonic()
        with self._lock:
            subs = list(self._subscribers)
            cbs = list(self._block_cbs)
        for q in subs:
            with contextlib.suppress(queue.Full):
                q.put_nowait(block)
        for cb in cbs:
            cb(block)

    def _on_event(self, ev: Any) -> None:
        # a reboot matters when there is state on the board to lose: samples seen, or any
        # configuration sent (watchdog, cell area, stream rates) even with streaming off
        if (
            int(ev.code) == defs.EV_BOOT
            and self.hello is not None
            and (self.last_index or self._config or self._streaming)
        ):
            self._board_rebooted("boot event")
        e = RigEvent(
            self.time.unwrap_one(int(ev.t_us)),
            int(ev.code),
            str(ev.name),
            int(ev.cause),
            str(ev.cause_name),
            int(ev.index),
            float(ev.value),
        )
        with self._cond:
            self.events.append(e)
            cbs = list(self._event_cbs)
            self._cond.notify_all()
        for cb in cbs:
            cb(e)

    def _add_gap(self, gap: GapMark) -> None:
        with self._lock:
            self.gaps.append(gap)
            cbs = list(self._gap_cbs)
        for cb in cbs:
            cb(gap)

    def _mark_all_streams(self, kind: str) -> None:
        for sid, nxt in sorted(self.last_index.items()):
            self._add_gap(GapMark(self.stream_name(sid), sid, nxt, -1, self.time.now_s, kind))

    def _board_rebooted(self, why: str) -> None:
        now = time.monotonic()
        if now - self._reboot_wall < 1.0:  # the boot event and the boot flag of one reboot
            return
        self._reboot_wall = now
        log.warning(
            "%s rebooted (%s); marking a gap and re-applying the configuration",
            self.describe(),
            why,
        )
        self.boots += 1
        self._mark_all_streams("board_reset")
        self.last_index = {}
        # bridge the reboot with the wall time the board was away, on the device clock
        away_s = max(0.0, time.monotonic() - self._last_sample_wall)
        self.time.rebooted(away_s * self.clock_ratio())
        self._start_resync(reapply=True)

    def _link_lost(self, why: str) -> None:
        self._link_up.clear()
        self.link.drop()
        if not self.reconnect:
            log.error("link to %s lost: %s", self.describe(), why)
            self._gave_up = True
            self._closing.set()
            return
        log.warning("link to %s lost (%s); reconnecting", self.describe(), why)
        self._mark_all_streams("link_down")
        deadline = time.monotonic() + self.reconnect_timeout_s
        while not self._closing.is_set() and time.monotonic() < deadline:
            try:
                self.link.open()
            except OSError:
                time.sleep(0.2)
                continue
            self.reconnects += 1
            # a fresh decoder: the bytes in flight were lost with the port
            self._decoder = wire.Decoder()
            if self.hello is not None:
                with contextlib.suppress(AttributeError):
                    self._decoder.set_hello(self.hello)
            self._link_up.set()
            self._start_resync(reapply=self._streaming)
            return
        log.error(
            "could not reopen %s within %.0f s", self.link.describe(), self.reconnect_timeout_s
        )
        self._gave_up = True
        self._closing.set()

    def _start_resync(self, *, reapply: bool) -> None:
        t = threading.Thread(target=self._resync, args=(reapply,), daemon=True, name="rig-resync")
        self._resync_thread = t
        t.start()

    def _resync(self, reapply: bool) -> None:
        try:
            self._handshake(self.reconnect_timeout_s)
            if reapply:
                self._reapply()
        except RigError as e:
            log.error("resync with %s failed: %s", self.link.describe(), e)

    def _reapply(self) -> None:
        with self._lock:
            config = list(self._config.values())
        for cmd_id, fields in config:
            self.command(cmd_id, **fields)
        if self._streaming:
            self.set_streaming(True)

    def clock_ratio(self) -> float:
        """Device seconds per wall second (1 for a real board; N for an emulator at speed N),
        measured from the samples and events seen, else taken from the emulator."""
        with self._lock:
            first, last = self._clock_first, self._clock_last
        if first is not None and last is not None and last[0] - first[0] > 0.5:
            return max(1e-3, (last[1] - first[1]) / (last[0] - first[0]))
        emu = self.link.emulator
        if emu is None:
            return 1.0
        achieved = getattr(emu, "achieved_speed", None)
        ratio = float(achieved() if callable(achieved) else 0.0)
        if ratio <= 0.0:
            ratio = float(getattr(emu, "speed", 1.0) or 1.0)
        return min(ratio, 1e6)  # speed "max" is infinite until a ratio is measured

    def _watchdog_device_s(self) -> float:
        if self._watchdog_set_s:
            return self._watchdog_set_s
        limits = dict(getattr(self.hello, "limits", {}) or {})
        return float(limits.get("default_watchdog_ms", 5000.0)) / 1000.0

    def _heartbeat_interval_s(self) -> float:
        """At most `heartbeat_s`, and a quarter of the watchdog in wall time (an emulated
        board's watchdog runs on its accelerated clock)."""
        assert self.heartbeat_s
        wd_wall = self._watchdog_device_s() / self.clock_ratio()
        return max(0.005, min(self.heartbeat_s, wd_wall / 4))

    def _heartbeat_loop(self) -> None:
        """Beat at the wall-time interval, or sooner when the reader sees that the device
        clock ran a quarter of the watchdog (the board's time is what the watchdog counts)."""
        while not self._closing.is_set():
            self._beat_due.wait(self._heartbeat_interval_s())
            self._beat_due.clear()
            if self._closing.is_set():
                return
            if not self._link_up.is_set():
                continue
            self._send_heartbeat()

    def _send_heartbeat(self) -> None:
        self._beat_device_s = self.time.now_s
        seq = self._next_seq()
        with contextlib.suppress(LinkLost):
            self.link.write(wire.encode_command(defs.CMD_HEARTBEAT, seq, seq))


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
