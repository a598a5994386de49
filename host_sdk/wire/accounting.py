"""Exact loss accounting: boots, frame sequence numbers and sample indices.

The decoder handles the common case inline (the next frame in order, the next index of
its stream, no new board drops); everything else comes here:

- a new boot id: the board restarted; its frame seq, sample indices and drop counts
  restart at 0, so what the link lost of the new boot is still counted exactly;
- a frame seq ahead of the expected one: frames lost on the link (remembered as missing);
- a frame seq behind it: a reordered frame when its seq was missing (counted, delivered
  late; for sample frames their records stay out of the blocks and move from `lost` to
  `late`), otherwise a duplicate (dropped);
- a sample index ahead of the expected one: a gap, split exactly into the samples the
  board dropped (from the cumulative `board_dropped` of the frames on either side) and
  those the link lost.

Sample indices are unwrapped into Python ints (they grow past 2**32 within one boot).
Identity per stream and boot: delivered + lost + board_dropped + late = indices spanned.
And per stream, board_dropped_before + board_dropped (summed over boots) is the board's own
`board_dropped` count as its latest frame told it: a reader that joined a running board
takes its first frame's count as the baseline (`board_dropped_before`), drops that no Gap
can hold since their indices came before tracking began.
"""

from __future__ import annotations

from collections import defaultdict

from host_sdk.wire.messages import Gap, Reboot
from protocol import defs

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000
DUP_WINDOW = 1024  # a frame up to this many seqs behind is a duplicate or reordered one;
# further behind (u16 seq) it is taken as a jump of over 32767 lost frames
MISSING_KEEP = 64  # missing seq ranges remembered for reorders

FORWARD = 0
LATE = 1
DUPLICATE = 2


class Tracker:
    """Per-link state of the current boot; counters are cumulative over boots."""

    def __init__(self) -> None:
        self.boot: int | None = None
        self.old_boots: list[int] = []  # boot ids seen before the current one (recent)
        self.stale_frames = 0  # late frames of an earlier boot (dropped)
        self.fresh_boot = False  # expectations start at 0 (the boot frame was seen or implied)
        self.next_seq: int | None = None
        self.seq_u = 0  # unwrapped seq expected next
        self.seq_base = 0  # unwrapped seq of the first frame of this boot seen (baseline)
        self.missing: list[list[int]] = []  # [lo, hi) unwrapped seqs not (yet) received
        self.next_index: dict[int, int] = {}  # unwrapped sample index expected, per stream
        self.dropped: dict[int, int] = {}  # last board_dropped (u32) seen, per stream
        self.index_base: dict[int, int] = {}  # unwrapped index where tracking began
        self.boots = 0
        self.lost_frames = 0
        self.duplicate_frames = 0
        self.reordered_frames = 0
        self.lost_samples: defaultdict[int, int] = defaultdict(int)
        self.board_dropped: defaultdict[int, int] = defaultdict(int)
        # drops a stream's first tracked frame already counted (a reader that joined a
        # running board): the board dropped them before tracking began, so no Gap has them
        self.board_dropped_before: defaultdict[int, int] = defaultdict(int)
        self.late_samples: defaultdict[int, int] = defaultdict(int)
        self.index_anomalies = 0  # index/drop values that contradict each other

    # ---- boots --------------------------------------------------------------------------
    def stale(self, boot: int, flags: int) -> bool:
        """A frame of an earlier boot arriving late (reordered across the reboot): drop it.
        (A new boot that drew an old id again still shows by its FLAG_BOOT frame.)"""
        if boot in self.old_boots and not flags & defs.FLAG_BOOT:
            self.stale_frames += 1
            return True
        return False

    def new_boot(self, boot: int, flags: int) -> Reboot | None:
        """A frame with another boot id than the current one."""
        prev = self.boot
        if prev is not None:
            self.old_boots = [*self.old_boots[-7:], prev]
        self.boot = boot
        self.missing.clear()
        self.next_index.clear()
        self.dropped.clear()
        self.index_base.clear()
        if prev is None and not flags & defs.FLAG_BOOT:
            # joined a running board: the first frame seen is the baseline
            self.fresh_boot = False
            self.next_seq = None
            return None
        self.boots += 1
        self.fresh_boot = True
        self.next_seq = 0
        self.seq_u = 0
        self.seq_base = 0
        return Reboot(boot, prev) if prev is not None else None

    # ---- frame sequence -----------------------------------------------------------------
    def seq_jump(self, seq: int) -> int:
        """A frame whose seq is not the expected one: FORWARD, LATE or DUPLICATE."""
        nxt = self.next_seq
        if nxt is None:
            self.next_seq = (seq + 1) & 0xFFFF
            self.seq_u = seq + 1
            self.seq_base = seq
            return FORWARD
        d = (seq - nxt) & 0xFFFF
        if d >= 0x10000 - DUP_WINDOW:
            u = self.seq_u - (0x10000 - d)
            if u < self.seq_base:  # from before the first frame seen: never counted lost
                self.reordered_frames += 1
                return LATE
            for k, (lo, hi) in enumerate(self.missing):
                if lo <= u < hi:
                    parts = [r for r in ([lo, u], [u + 1, hi]) if r[0] < r[1]]
                    self.missing[k : k + 1] = parts
                    self.lost_frames -= 1
                    self.reordered_frames += 1
                    return LATE
            self.duplicate_frames += 1
            return DUPLICATE
        self.lost_frames += d
        self.missing.append([self.seq_u, self.seq_u + d])
        if len(self.missing) > MISSING_KEEP:
            del self.missing[0]
        self.seq_u += d + 1
        self.next_seq = (seq + 1) & 0xFFFF
        return FORWARD

    # ---- sample indices -----------------------------------------------------------------
    def samples(
        self, stream: int, first: int, n: int, board_dropped: int, late: bool
    ) -> tuple[int | None, Gap | None]:
        """Where a sample frame's records go: (unwrapped first index or None when they are
        not delivered, the Gap before them or None). A frame late by seq whose index is
        not behind its stream's (another stream's frame overtook it) is in order."""
        exp = self.next_index.get(stream)
        if exp is None:
            if not self.fresh_boot:  # baseline: the first frame seen of a running board
                self.next_index[stream] = first + n
                self.dropped[stream] = board_dropped
                self.board_dropped_before[stream] += board_dropped
                self.index_base[stream] = first
                return first, None
            exp = 0
            self.dropped[stream] = 0
            self.index_base[stream] = 0
        d = (first - exp) & MASK32
        if d >= HALF32:
            back = (exp - first) & MASK32
            if exp - back < self.index_base[stream]:
                return None, None  # from before tracking began: never counted lost
            if late and n <= back:
                # a reordered frame: its records were counted lost in an earlier gap
                self.lost_samples[stream] -= n
                self.late_samples[stream] += n
                return None, None
            # an in-order frame (by seq, same boot) whose index went back: the board broke
            # its own rule. Keep its records (the unwrapped index moves on, no gap counted)
            self.index_anomalies += 1
            self.dropped[stream] = board_dropped
            self.next_index[stream] = exp + d + n
            return exp + d, None
        board = (board_dropped - self.dropped[stream]) & MASK32
        self.dropped[stream] = board_dropped
        if board > d:  # the board claims more drops than the gap holds
            self.index_anomalies += 1
            board = d
        self.next_index[stream] = exp + d + n
        if d == 0:
            return exp, None
        self.lost_samples[stream] += d - board
        self.board_dropped[stream] += board
        return exp + d, Gap(stream, exp, d, board)


class LossCounters:
    """The Tracker's counters as read-only properties (the Decoder's public face)."""

    track: Tracker

    @property
    def boots(self) -> int:
        return self.track.boots

    @property
    def boot_id(self) -> int | None:
        return self.track.boot

    @property
    def lost_frames(self) -> int:
        return self.track.lost_frames

    @property
    def duplicate_frames(self) -> int:
        return self.track.duplicate_frames

    @property
    def reordered_frames(self) -> int:
        return self.track.reordered_frames

    @property
    def stale_frames(self) -> int:
        """Frames of an earlier boot that arrived after the new boot's (dropped)."""
        return self.track.stale_frames

    @property
    def lost_samples(self) -> dict[int, int]:
        """Samples lost on the link, per stream (board drops are in `board_dropped`)."""
        return self.track.lost_samples

    @property
    def board_dropped(self) -> dict[int, int]:
        """Samples the board dropped, per stream, as counted in Gaps."""
        return self.track.board_dropped

    @property
    def board_dropped_before(self) -> dict[int, int]:
        """Samples the board had dropped before tracking of a stream began (a reader that
        joined a running board: its first frame's `board_dropped`), per stream; no Gap
        holds them. With `board_dropped`, the board's own count as its frames told it."""
        return self.track.board_dropped_before

    def board_dropped_told(self) -> int:
        """All streams' board drops as the board's frames told them, summed over the boots
        this decoder saw. For one boot: equal to STATUS `samples_dropped` once the frame
        that carries the stream's last drops has arrived (it can come after a STATUS)."""
        tr = self.track
        return sum(tr.board_dropped.values()) + sum(tr.board_dropped_before.values())

    @property
    def late_samples(self) -> dict[int, int]:
        return self.track.late_samples
