"""What the decoder hands out: one frozen dataclass per message, and the `Message` union.

Numbers are the raw wire values (counts, device microseconds); calibration to SI happens
further up in the SDK, using the scale/offset/unit each stream announces in its HELLO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from host_sdk.wire.layouts import NUMPY_CODE, format_codes
from protocol import defs


@dataclass(frozen=True)
class FieldInfo:
    """One value of a stream record: physical = raw * scale + offset, in `unit`."""

    name: str
    unit: str
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class StreamInfo:
    """A sample stream as announced in HELLO: record layout (struct format), rate, fields."""

    id: int
    name: str
    rate_hz: float
    enabled: bool
    record_format: str
    fields: tuple[FieldInfo, ...]

    @cached_property
    def dtype(self) -> np.dtype[Any]:
        """numpy structured dtype of one record: little-endian, packed, named by field."""
        codes = format_codes(self.record_format)
        names = [f.name for f in self.fields]
        if len(codes) != len(names):
            raise ValueError(
                f"stream {self.name!r}: format {self.record_format!r} has {len(codes)} "
                f"values but {len(names)} fields"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"stream {self.name!r}: duplicate field names")
        return np.dtype([(n, NUMPY_CODE[c]) for n, c in zip(names, codes, strict=True)])

    @property
    def record_size(self) -> int:
        return int(self.dtype.itemsize)

    def field(self, name: str) -> FieldInfo:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class Hello:
    """HELLO: who the board is and what it streams (the authority for record layouts)."""

    protocol_version: int
    firmware_version: tuple[int, int, int]
    board_id: str
    unique_id: str
    streams: tuple[StreamInfo, ...]
    limits: Mapping[str, float] = field(default_factory=dict)

    def stream(self, stream_id: int) -> StreamInfo:
        for s in self.streams:
            if s.id == stream_id:
                return s
        raise KeyError(stream_id)

    def stream_named(self, name: str) -> StreamInfo:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True, eq=False)
class SampleBlock:
    """Consecutive records of one stream, no gap inside: indices first_index + arange(n).

    `first_index` is the board's sample index, unwrapped past 2**32 by the decoder (it
    restarts at the board's value after a reboot). `flags` is the OR of the header flags of
    the frames merged here, `seq` the frame sequence number of the first of them.
    """

    stream: int
    first_index: int
    records: np.ndarray
    flags: int = 0
    seq: int = 0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def stop_index(self) -> int:
        """Index one past the last record."""
        return self.first_index + len(self.records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBlock):
            return NotImplemented
        return (
            self.stream == other.stream
            and self.first_index == other.first_index
            and self.flags == other.flags
            and self.seq == other.seq
            and self.records.dtype == other.records.dtype
            and self.records.tobytes() == other.records.tobytes()
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Ack:
    """ACK: the command was applied (or was a retry of one already applied)."""

    cmd_seq: int
    cmd_id: int
    name: str
    applied: Mapping[str, Any]


@dataclass(frozen=True)
class Nack:
    """NACK: the command was refused; nothing was applied."""

    cmd_seq: int
    cmd_id: int
    reason: int
    reason_name: str
    text: str


@dataclass(frozen=True)
class Event:
    """A waveform edge or a state change, stamped with the device clock."""

    t_us: int
    code: int
    name: str
    cause: int
    cause_name: str
    index: int
    value: float


@dataclass(frozen=True)
class Status:
    """Periodic STATUS (fields in the order of protocol.defs.STATUS_FIELDS)."""

    uptime_ms: int
    frames_sent: int
    samples_dropped: int
    bad_frames_rx: int
    heap_free: int
    state: int
    latched_cause: int
    setpoint_a: float

    @property
    def state_name(self) -> str:
        return defs.STATE_NAMES.get(self.state, f"state_{self.state}")

    @property
    def latched_cause_name(self) -> str:
        return defs.CAUSE_NAMES.get(self.latched_cause, f"cause_{self.latched_cause}")

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in defs.STATUS_FIELDS)


if tuple(Status.__dataclass_fields__) != tuple(defs.STATUS_FIELDS):
    raise ImportError("host_sdk.wire.messages.Status does not match protocol.defs.STATUS_FIELDS")


@dataclass(frozen=True)
class Log:
    """A text line from the firmware (level as in protocol.defs.LOG_*)."""

    level: int
    text: str


@dataclass(frozen=True)
class Gap:
    """`count` samples of `stream` are missing, starting at sample index `first_index`.

    `board_count` of them the board dropped itself (its buffers overflowed: the difference
    of the cumulative `board_dropped` of the SAMPLES frames on either side); the other
    `count - board_count` were lost on the link (frames lost or corrupted). Which indices
    of the gap are which is not on the wire.
    """

    stream: int
    first_index: int
    count: int
    board_count: int = 0

    @property
    def on_board(self) -> bool:
        """True when the board dropped every missing sample itself."""
        return self.board_count >= self.count > 0

    @property
    def link_count(self) -> int:
        return self.count - self.board_count


@dataclass(frozen=True)
class Reboot:
    """The board's boot id changed: it restarted (frame seq and sample indices restart at
    0, whatever frames of the new boot the link lost). `previous` is None for the first
    boot id seen after a FLAG_BOOT frame."""

    boot_id: int
    previous: int | None


@dataclass(frozen=True)
class Command:
    """A COMMAND frame (host to board); the decoder yields it when it reads that direction."""

    cmd_seq: int
    cmd_id: int
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class RawSamples:
    """A sample frame of a stream whose record layout is unknown (no HELLO for it yet)."""

    stream: int
    first_index: int
    t_first_us: int
    n_records: int
    data: bytes
    flags: int = 0
    seq: int = 0


Message = Hello | SampleBlock | Ack | Nack | Event | Status | Log | Gap | Command | Reboot
"""Everything `Decoder.feed` can return."""
