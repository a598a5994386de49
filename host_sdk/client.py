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
            print(block.stream, block.t_s[-1], block.records["voltage"][-1])

Leaving the `with` block always sends STOP and verifies, through STATUS, that the current is
off, even when the body raised.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from host_sdk import wire
from host_sdk.rig_commands import CommandAPI
from host_sdk.rig_data import DataPlane
from host_sdk.rig_session import LinkSession
from host_sdk.rig_types import (  # noqa: F401 (the public names of host_sdk.client)
    _RIGS,
    FIRMWARE_MAX,
    FIRMWARE_MIN,
    MAX_COUNT,
    Block,
    BoardNotAnswering,
    CommandRefused,
    CommandTimeout,
    Cutoffs,
    GapMark,
    IncompatibleBoard,
    RigError,
    RigEvent,
    TimeUnwrapper,
    _foreign_protocol_version,
    _name,
    _Pending,
)
from host_sdk.timesync import ClockSync
from host_sdk.transport import Link
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


EMULATED_COMMAND_TIMEOUT_S = 3.0  # per try (1 s for a real board)


def open_rigs() -> dict[str, Rig]:
    """The rigs open in this process, by board unique id."""
    return dict(_RIGS)


class Rig(LinkSession, CommandAPI, DataPlane):
    """One board. Use `Rig.open(url)` (or `Rig(Link(...)).connect()`); close it or use `with`.

    The thin public face of three parts: `LinkSession` (host_sdk.rig_session: port,
    reader and heartbeat threads, reconnect, re-sync after a reboot), `CommandAPI`
    (host_sdk.rig_commands: one method per command, retries) and `DataPlane`
    (host_sdk.rig_data: blocks, events, gaps, device time, the clock mapping).
    """

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
        self.last_t_s: dict[int, float] = {}  # stream id -> device time of its last sample

        self._decoder = wire.Decoder()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}
        # a random start: a restarted host must not reuse the cmd_seq of its last command,
        # which the board would take for a retry of it (protocol §6.3)
        self._cmd_seq = random.randrange(0x10000)
        self._tx_extra = 0  # frame seq offset of retries (a new frame seq per frame sent)
        self.clock_sync = ClockSync()  # device clock -> UTC, from timesync exchanges
        self._timesync_sent: dict[int, float] = {}  # cmd_seq -> host UTC when sent
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
    def open(cls, url: str, *, link_options: dict[str, Any] | None = None, **options: Any) -> Self:
        """Open a port (`/dev/ttyACM0`, `socket://host:port`, `emu://SCENARIO?speed=50`).

        Raises PortNotFound, BoardNotAnswering or IncompatibleBoard; the port and any
        emulator it started are closed again on failure.
        """
        if url.startswith("emu://"):
            # an emulated board shares this machine's cores with the host: a busy machine
            # can keep it from answering for seconds without anything being wrong
            options.setdefault("command_timeout_s", EMULATED_COMMAND_TIMEOUT_S)
        link = Link(url, **(link_options or {}))
        rig = cls(link, **options)
        try:
            rig.connect()
        except BaseException:
            rig._shutdown_threads()
            link.close()
            raise
        return rig

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    @property
    def decoder(self) -> Any:
        return self._decoder

    @property
    def device_time_s(self) -> float:
        """Latest device time seen (unwrapped), seconds."""
        return self.time.now_s
