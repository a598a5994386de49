"""What the parts of a Rig share: its attributes (set in Rig.__init__) and the signatures
of every method of every part, so each part type-checks against the whole. Only a typing
device: the parts (rig_session, rig_commands, rig_data) and Rig override every method."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Self

from host_sdk import wire
from host_sdk.rig_types import Block, Cutoffs, GapMark, RigEvent, TimeUnwrapper, _Pending
from host_sdk.timesync import ClockMapping, ClockSync
from host_sdk.transport import Link
from protocol import defs


class RigState:
    link: Link
    command_timeout_s: float
    retries: int
    connect_timeout_s: float
    heartbeat_s: float | None
    watchdog_s: float | None
    reconnect: bool
    reconnect_timeout_s: float
    check_versions: bool
    hello: Any
    last_status: Any
    events: list[RigEvent]
    gaps: list[GapMark]
    logs: list[tuple[int, str]]
    boots: int
    reconnects: int
    bytes_in: int
    time: TimeUnwrapper
    last_index: dict[int, int]
    _decoder: wire.Decoder
    _lock: threading.RLock
    _cond: threading.Condition
    _pending: dict[int, _Pending]
    _cmd_seq: int
    _tx_extra: int
    clock_sync: ClockSync
    _timesync_sent: dict[int, float]
    _hello_count: int
    _status_count: int
    _subscribers: list[queue.Queue[Block | None]]
    _block_cbs: list[Callable[[Block], None]]
    _event_cbs: list[Callable[[RigEvent], None]]
    _gap_cbs: list[Callable[[GapMark], None]]
    _config: dict[str, tuple[int, dict[str, Any]]]
    _stream_config: dict[int, dict[str, Any]]
    _streaming: bool
    _v_window: tuple[float, float] | None
    _closing: threading.Event
    _link_up: threading.Event
    _reader: threading.Thread | None
    _heartbeat: threading.Thread | None
    _capture: bytearray
    _last_rx_wall: float
    _resync_thread: threading.Thread | None
    _clock_first: tuple[float, float] | None
    _clock_last: tuple[float, float] | None
    _watchdog_set_s: float | None
    _clock_boot: int
    _closed: bool
    _reboot_wall: float
    _last_sample_wall: float
    _beat_due: threading.Event
    _beat_device_s: float
    _gave_up: bool
    cell: dict[str, Any]
    stream_config: dict[str, dict[str, Any]]
    device_epoch_utc: float | None

    def connect(self) -> Self:
        raise NotImplementedError

    def close(self, *, leave_current_off: bool = True) -> None:
        raise NotImplementedError

    def _shutdown_threads(self) -> None:
        raise NotImplementedError

    def ensure_current_off(self, attempts: int = 3) -> Any:
        raise NotImplementedError

    def _handshake(self, timeout_s: float) -> None:
        raise NotImplementedError

    def _raise_not_answering(self, tries: int, timeout_s: float) -> None:
        raise NotImplementedError

    def _check_versions(self) -> None:
        raise NotImplementedError

    def _read_loop(self) -> None:
        raise NotImplementedError

    def _heartbeat_due_by_device_time(self) -> bool:
        raise NotImplementedError

    def _link_lost(self, why: str) -> None:
        raise NotImplementedError

    def _start_resync(self, *, reapply: bool) -> None:
        raise NotImplementedError

    def _resync(self, reapply: bool) -> None:
        raise NotImplementedError

    def _reapply(self) -> None:
        raise NotImplementedError

    def clock_ratio(self) -> float:
        raise NotImplementedError

    def _watchdog_device_s(self) -> float:
        raise NotImplementedError

    def _heartbeat_interval_s(self) -> float:
        raise NotImplementedError

    def _heartbeat_loop(self) -> None:
        raise NotImplementedError

    def _next_seq(self) -> int:
        raise NotImplementedError

    def command(
        self,
        cmd_id: int,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        **fields: Any,
    ) -> Any:
        raise NotImplementedError

    def _remember(self, key: str, cmd_id: int, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def configure_stream(self, stream: str | int, *, rate_hz: float, enabled: bool = True) -> Any:
        raise NotImplementedError

    def set_streaming(self, on: bool) -> Any:
        raise NotImplementedError

    def set_cell(
        self, area_m2: float, *, stack_area_m2: float | None = None, label: str = ""
    ) -> Any:
        raise NotImplementedError

    def set_watchdog(self, timeout_s: float) -> Any:
        raise NotImplementedError

    def set_voltage_window(self, v_min_v: float, v_max_v: float) -> Any:
        raise NotImplementedError

    def _cutoff_fields(self, cutoffs: Cutoffs | None) -> dict[str, Any]:
        raise NotImplementedError

    def _limit_window(self) -> tuple[float, float]:
        raise NotImplementedError

    @staticmethod
    def _current(a: float | None, a_m2: float | None, what: str) -> tuple[int, float]:
        raise NotImplementedError

    def rest(self, duration_s: float) -> Any:
        raise NotImplementedError

    def constant_current(
        self,
        *,
        current_a: float | None = None,
        current_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        raise NotImplementedError

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
        raise NotImplementedError

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
        raise NotImplementedError

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
        raise NotImplementedError

    def stop(self) -> Any:
        raise NotImplementedError

    def clear_fault(self) -> Any:
        raise NotImplementedError

    def enter_repl(self) -> Any:
        raise NotImplementedError

    def reset(self) -> Any:
        raise NotImplementedError

    def heartbeat(self) -> Any:
        raise NotImplementedError

    def status(self, timeout_s: float | None = None) -> Any:
        raise NotImplementedError

    def info(self, timeout_s: float | None = None) -> Any:
        raise NotImplementedError

    def timesync(self) -> ClockMapping | None:
        raise NotImplementedError

    def blocks(self, *, timeout_s: float | None = None, maxsize: int = 0) -> Iterator[Block]:
        raise NotImplementedError

    def _drain(self, q: queue.Queue[Block | None], timeout_s: float | None) -> Iterator[Block]:
        raise NotImplementedError

    def on_block(self, cb: Callable[[Block], None]) -> Callable[[], None]:
        raise NotImplementedError

    def on_event(self, cb: Callable[[RigEvent], None]) -> Callable[[], None]:
        raise NotImplementedError

    def on_gap(self, cb: Callable[[GapMark], None]) -> Callable[[], None]:
        raise NotImplementedError

    def _add_cb(self, lst: list[Any], cb: Any) -> Callable[[], None]:
        raise NotImplementedError

    @property
    def lost_samples(self) -> dict[str, int]:
        raise NotImplementedError

    def event_mark(self) -> int:
        raise NotImplementedError

    def wait_event(
        self,
        codes: tuple[int, ...] = (defs.EV_WAVEFORM_END, defs.EV_STOP_LATCHED),
        *,
        after: int = 0,
        timeout_s: float | None = None,
    ) -> RigEvent | None:
        raise NotImplementedError

    def _dispatch(self, msg: Any) -> None:
        raise NotImplementedError

    def _on_hello(self, hello: Any) -> None:
        raise NotImplementedError

    def _on_samples(self, sb: Any) -> None:
        raise NotImplementedError

    @property
    def clock_mapping(self) -> ClockMapping | None:
        raise NotImplementedError

    def _on_timesync(self, msg: Any) -> None:
        raise NotImplementedError

    def _on_event(self, ev: Any) -> None:
        # a reboot matters when there is state on the board to lose: samples seen, or any
        # configuration sent (watchdog, cell area, stream rates) even with streaming off
        raise NotImplementedError

    def _add_gap(self, gap: GapMark) -> None:
        raise NotImplementedError

    def _mark_all_streams(self, kind: str) -> None:
        raise NotImplementedError

    def _board_rebooted(self, why: str) -> None:
        raise NotImplementedError

    @classmethod
    def open(cls, url: str, *, link_options: dict[str, Any] | None = None, **options: Any) -> Self:
        raise NotImplementedError

    @property
    def unique_id(self) -> str:
        raise NotImplementedError

    @property
    def board_id(self) -> str:
        raise NotImplementedError

    @property
    def firmware_version(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    @property
    def link_lost(self) -> bool:
        raise NotImplementedError

    @property
    def emulator(self) -> Any:
        raise NotImplementedError

    @property
    def streams(self) -> dict[str, Any]:
        raise NotImplementedError

    def stream_id(self, stream: str | int) -> int:
        raise NotImplementedError

    def stream_name(self, stream_id: int) -> str:
        raise NotImplementedError

    @property
    def decoder(self) -> Any:
        raise NotImplementedError

    @property
    def device_time_s(self) -> float:
        raise NotImplementedError
