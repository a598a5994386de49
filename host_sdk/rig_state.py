"""What the parts of a Rig share: its attributes (set in Rig.__init__) and the signatures
of the methods one part calls on another, so each part type-checks against the whole. Only
a typing device: the parts (rig_session, rig_commands, rig_data) and Rig define every
method declared here."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from host_sdk import wire
from host_sdk.rig_types import Block, GapMark, RigEvent, TimeUnwrapper, _Pending
from host_sdk.timesync import ClockMapping, ClockSync
from host_sdk.transport import Link


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
    last_t_s: dict[int, float]
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

    # methods one part calls on another (the parts and Rig define them)
    def _handshake(self, timeout_s: float) -> None:
        raise NotImplementedError

    def _start_resync(self, *, reapply: bool) -> None:
        raise NotImplementedError

    def clock_ratio(self) -> float:
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

    def set_streaming(self, on: bool) -> Any:
        raise NotImplementedError

    def set_watchdog(self, timeout_s: float) -> Any:
        raise NotImplementedError

    def stop(self) -> Any:
        raise NotImplementedError

    def status(self, timeout_s: float | None = None) -> Any:
        raise NotImplementedError

    def _dispatch(self, msg: Any) -> None:
        raise NotImplementedError

    @property
    def clock_mapping(self) -> ClockMapping | None:
        raise NotImplementedError

    def _mark_all_streams(self, kind: str) -> None:
        raise NotImplementedError

    @property
    def unique_id(self) -> str:
        raise NotImplementedError

    @property
    def firmware_version(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def stream_id(self, stream: str | int) -> int:
        raise NotImplementedError

    def stream_name(self, stream_id: int) -> str:
        raise NotImplementedError
