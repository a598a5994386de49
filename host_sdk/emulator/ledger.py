"""The link ledger: exact bookkeeping of the board -> host stream and what the link did to it.

The proxy reads the board's pristine output and, for each chunk, first tells the ledger what
happens to it (bytes dropped, flipped or inserted by the fault injector; the whole chunk
discarded when no host has the port open or it is unplugged), then feeds the chunk. The
ledger parses the pristine stream into frames and classifies each frame as it completes:
damage offsets and frames both grow with the stream offset, so every damage offset below a
frame's end is known by then and the two sequences are merged, never stored whole.

Memory stays constant however long the board runs: running counters per stream, plus
bounded windows of recent detail (`lost_ranges(stream)` keeps the most recent
`max_lost_ranges` = 100 000 ranges per stream, `damaged_offsets()` the most recent
`max_offsets` = 100 000 dropped or flipped offsets, `frames` the most recent 8192 frames,
enough to cover what a host can leave unread when it goes: outbox + pty buffer).

The proxy thread writes; other threads may read while the board runs: each answer is one
C-level copy (atomic under the GIL), a snapshot between two chunks or within one.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from dataclasses import dataclass

from host_sdk.emulator.device_clock import DeviceClock
from protocol import defs

_SYNC = bytes((defs.SYNC0, defs.SYNC1))
_MAX_LENGTH = defs.LENGTH_BASE + defs.MAX_PAYLOAD
_HEAD = struct.Struct("<BBBH")  # type, flags, stream, seq (after the version byte)
_SAMPLES_HEAD = struct.Struct(defs.SAMPLES_HEADER_FMT)
_U32 = struct.Struct("<I")
_MAX_RECORD_PERIOD_US = 10_000_000  # the slowest stream rate a board allows is 0.1 Hz


@dataclass(slots=True)
class FrameRecord:
    """One frame as the board sent it (offsets in the board's output byte stream)."""

    start: int
    end: int  # exclusive
    msg_type: int
    stream: int
    seq: int
    first_index: int = 0
    n_records: int = 0
    damaged: bool = False


class LinkLedger:
    """What the board sent, and what of it the link lost. See the module docstring."""

    def __init__(
        self,
        *,
        max_lost_ranges: int = 100_000,
        max_offsets: int = 100_000,
        recent_frames: int = 8192,
    ) -> None:
        self.bytes_out = 0  # bytes the board wrote
        self.bytes_delivered = 0  # bytes (after faults) handed to a host port
        self.bytes_in = 0  # host -> board bytes that reached the board
        self.boots = 1
        self.bytes_dropped = 0
        self.bytes_flipped = 0
        self.bytes_inserted = 0
        self.bytes_discarded = 0  # board output while no host had the port (or unplugged)
        self.bytes_flushed = 0  # held for a host that left, or unread in the pty it closed
        self.frames_seen = 0
        self.frames_lost = 0
        self.max_lost_ranges = max_lost_ranges
        # recent detail, bounded
        self.dropped: deque[int] = deque(maxlen=max_offsets)
        self.flipped: deque[int] = deque(maxlen=max_offsets)
        self.inserted: deque[int] = deque(maxlen=max_offsets)  # inserted before this offset
        self.unplugged: deque[tuple[int, int]] = deque(maxlen=max_offsets)  # discarded [a, b)
        self.frames: deque[FrameRecord] = deque(maxlen=recent_frames)
        self.clock = DeviceClock()
        self._sent: dict[int, int] = {}
        self._lost: dict[int, int] = {}
        self._lost_ranges: dict[int, deque[tuple[int, int]]] = {}
        # damage not yet matched to a frame: (lo, hi, is_insert), sorted, non-overlapping
        self._pending: deque[tuple[int, int, bool]] = deque()
        self._tail = (0, 0)  # [lo, hi): bytes lost after they were handed to a host port
        self._buf = bytearray()  # unparsed pristine bytes, starting at offset _buf_off
        self._buf_off = 0

    # ---- what happens to the next chunk (call before feed) -----------------------------
    def note_dropped(self, off: int) -> None:
        self.bytes_dropped += 1
        self.dropped.append(off)
        self._pending.append((off, off + 1, False))

    def note_flipped(self, off: int) -> None:
        self.bytes_flipped += 1
        self.flipped.append(off)
        self._pending.append((off, off + 1, False))

    def note_inserted(self, off: int) -> None:
        """A foreign byte went out before the board's byte at `off`."""
        self.bytes_inserted += 1
        self.inserted.append(off)
        self._pending.append((off, off, True))

    def note_discarded(self, a: int, b: int) -> None:
        """Board bytes [a, b) went nowhere (no host, or the port unplugged)."""
        if b <= a:
            return
        self.bytes_discarded += b - a
        pend, un = self._pending, self.unplugged
        if pend and pend[-1][1] == a and not pend[-1][2]:
            a0 = pend.pop()[0]
            pend.append((a0, b, False))
        else:
            pend.append((a, b, False))
        if un and un[-1][1] == a:
            un[-1] = (un[-1][0], b)
        else:
            un.append((a, b))

    # ---- the stream itself ---------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """The board's next pristine bytes: parse and classify the frames they complete."""
        self.bytes_out += len(data)
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        with memoryview(buf) as view:
            while True:
                i = buf.find(_SYNC, pos)
                if i < 0:
                    pos = max(pos, n - 1)  # keep a trailing lone A5
                    break
                if n - i < defs.HEADER_SIZE:
                    pos = i
                    break
                length = buf[i + 2] | (buf[i + 3] << 8)
                if length < defs.LENGTH_BASE or length > _MAX_LENGTH:
                    pos = i + 1
                    continue
                end = i + 4 + length + defs.CRC_SIZE
                if end > n:
                    pos = i
                    break
                if zlib.crc32(view[i + 2 : i + 4 + length]) != _U32.unpack_from(buf, end - 4)[0]:
                    pos = i + 1  # text that happens to hold a sync word: not a frame
                    continue
                self._frame(view, i, end, length)
                pos = end
        del buf[:pos]
        self._buf_off += pos
        self._forget_damage_before(self._buf_off)

    def _frame(self, view: memoryview, i: int, end: int, length: int) -> None:
        msg_type, flags, stream, seq = _HEAD.unpack_from(view, i + 5)
        off = self._buf_off
        rec = FrameRecord(off + i, off + end, msg_type, stream, seq)
        p = i + defs.HEADER_SIZE
        if flags & defs.FLAG_BOOT:
            self.clock.boot()
        if msg_type == defs.MSG_SAMPLES and length >= defs.LENGTH_BASE + _SAMPLES_HEAD.size:
            rec.first_index, t_first, n, _dropped = _SAMPLES_HEAD.unpack_from(view, p)
            rec.n_records = n
            self.clock.saw_us(t_first)
            # every record starts with its u32 t_us (protocol §5.8): the last one is newest
            size, rest = divmod(length - defs.LENGTH_BASE - _SAMPLES_HEAD.size, n or 1)
            if n > 1 and not rest and size >= 4:
                at = p + _SAMPLES_HEAD.size + (n - 1) * size
                t_last = _U32.unpack_from(view, at)[0]
                # believed only when plausible (a stream of another layout has no t_us there)
                if (t_last - t_first) % (1 << 32) <= n * _MAX_RECORD_PERIOD_US:
                    self.clock.saw_us(t_last)
            self._sent[stream] = self._sent.get(stream, 0) + n
        elif msg_type == defs.MSG_EVENT and length >= defs.LENGTH_BASE + 4:
            self.clock.saw_us(_U32.unpack_from(view, p)[0])
        elif msg_type == defs.MSG_STATUS and length >= defs.LENGTH_BASE + 4:
            self.clock.saw_uptime_ms(_U32.unpack_from(view, p)[0])
        self.frames_seen += 1
        tail_lo, tail_hi = self._tail
        if self._damage_within(rec.start, rec.end) or (rec.start < tail_hi and rec.end > tail_lo):
            self._count_lost(rec)
        self.frames.append(rec)

    def _damage_within(self, start: int, end: int) -> bool:
        """Whether pending damage hits [start, end); consumes what cannot hit later frames."""
        pend = self._pending
        damaged = False
        while pend:
            lo, hi, insert = pend[0]
            if (lo <= start) if insert else (hi <= start):
                pend.popleft()  # between frames (or in text): harms no frame
                continue
            if lo >= end:
                break  # after this frame (an insertion at `end` falls between two frames)
            damaged = True
            if insert or hi <= end:
                pend.popleft()
            else:
                break  # a discarded range running on into the next frame
        return damaged

    def _forget_damage_before(self, off: int) -> None:
        """Frames still to come start at or after `off`: damage below it concerns none."""
        pend = self._pending
        while pend and ((pend[0][0] <= off) if pend[0][2] else (pend[0][1] <= off)):
            pend.popleft()

    def _count_lost(self, rec: FrameRecord) -> None:
        rec.damaged = True
        self.frames_lost += 1
        if rec.msg_type == defs.MSG_SAMPLES:
            s = rec.stream
            self._lost[s] = self._lost.get(s, 0) + rec.n_records
            ranges = self._lost_ranges.get(s)
            if ranges is None:
                ranges = self._lost_ranges[s] = deque(maxlen=self.max_lost_ranges)
            ranges.append((rec.first_index, rec.n_records))

    def lose_tail(self, cut: int, flushed: int) -> None:
        """The last host left: board bytes from offset `cut` on, handed to it but never read
        (`flushed` bytes of output), are lost. Frames already classified intact in that span
        are counted lost now; a frame still incomplete there will be when it completes."""
        self.bytes_flushed += flushed
        for rec in reversed(self.frames):
            if rec.end <= cut:
                break
            if not rec.damaged:
                self._count_lost(rec)
        self._tail = (cut, self.bytes_out)

    def new_boot(self) -> None:
        """The board process was restarted: its half-sent frame will never complete."""
        self.boots += 1
        self._buf.clear()
        self._buf_off = self.bytes_out
        self._forget_damage_before(self._buf_off)
        self.clock.boot()

    # ---- answers -------------------------------------------------------------------------
    def sent_samples(self) -> dict[int, int]:
        """Samples per stream id in every SAMPLES frame the board sent."""
        return dict(self._sent)

    def lost_samples(self) -> dict[int, int]:
        """Samples per stream id in SAMPLES frames the link damaged or discarded (exact)."""
        return dict(self._lost)

    def lost_ranges(self, stream: int) -> list[tuple[int, int]]:
        """(first_index, n_records) of the most recent lost SAMPLES frames of `stream` (at
        most `max_lost_ranges`), in the order they were found lost."""
        return list(self._lost_ranges.get(stream, ()))

    def damaged_offsets(self) -> list[int]:
        """Stream offsets of the most recent dropped or flipped bytes, sorted (bounded; the
        counters bytes_dropped / bytes_flipped / bytes_discarded have the totals)."""
        return sorted([*self.dropped, *self.flipped])

    @property
    def device_time_s(self) -> float:
        """The board's device time since its last boot, as its frames tell it."""
        return self.clock.now_s
