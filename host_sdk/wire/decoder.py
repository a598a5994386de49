"""Incremental frame decoder with a vectorised sample path and exact loss accounting.

Feed it bytes in any chunking; it returns messages. It never raises on any input, never
waits on more than one maximum-size frame of bytes (a bad header is rejected after its
13 bytes by the header check), and hands nothing on that failed its CRC. Frames are found
by a Python loop over frames (bytes.find + struct + zlib.crc32 per frame, nothing per
record); ordinary sample frames (in order, of a known stream, no gap) go through a tighter
loop, `lane.lane`, and everything else through the general per-frame code here. The
records of consecutive sample frames of a stream are joined and turned into a numpy
structured array with one `np.frombuffer` (`runs`).

Output order: messages come out in arrival order, except that sample frames of different
streams that arrive between two other messages are merged into one block per stream run.
Every SampleBlock holds gap-free records; a `Gap` is emitted where samples are missing,
split exactly into board drops and link losses; a `Reboot` when the boot id changes.
Duplicated frames are dropped, reordered ones counted (see `accounting`).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

from host_sdk.wire.accounting import DUPLICATE, LATE, LossCounters, Tracker
from host_sdk.wire.hello_check import (  # noqa: F401 (hello_from_dict, parse_hello: re-exported)
    ForeignHello,
    hello_from_dict,
    parse_hello,
)
from host_sdk.wire.lane import lane
from host_sdk.wire.messages import Hello, Message, RawSamples
from host_sdk.wire.payloads import decode_payload
from host_sdk.wire.runs import Run, materialise
from protocol import defs

_SYNC = bytes([defs.SYNC0, defs.SYNC1])
_U32 = struct.Struct("<I")
_INNER = struct.Struct("<" + defs.HEADER_FMT[4:-1])  # version type flags stream seq boot
assert _INNER.size == defs.HCHECK_OFFSET - 4
_SAMPLES_HEADER = struct.Struct(defs.SAMPLES_HEADER_FMT)

_HDR = defs.HEADER_SIZE
_HCK = defs.HCHECK_OFFSET
_SHDR = defs.SAMPLES_HEADER_SIZE
_OVERHEAD = defs.FRAME_OVERHEAD
_MASK32 = 0xFFFFFFFF
_LANE_MIN = _HDR + _SHDR  # the lane reads both headers at once

BAD_KINDS = ("header", "length", "crc", "version", "flags", "type", "payload", "internal")


class Decoder(LossCounters):
    """Bytes in, messages out. See the module docstring and protocol/README.md.

    Counters (all cumulative):
      frames_ok        frames accepted (CRC, header check, version, flags, payload good)
      bad_frames       candidate frames rejected; `bad` breaks them down by kind
      bytes_skipped    bytes discarded while resynchronising or in rejected frames
      bytes_ok         bytes of accepted frames
      foreign_version  version byte of the last intact frame of another protocol version
      unknown_stream_frames  sample frames of a stream with no known layout (see `raw`)
    and, from `track` (accounting.Tracker): boots, lost_frames, duplicate_frames,
    reordered_frames, lost_samples (link), board_dropped, board_dropped_before,
    late_samples (per stream).
    """

    def __init__(
        self,
        hello: Hello | None = None,
        *,
        max_payload: int = defs.MAX_PAYLOAD,
        fast: bool = True,
    ):
        self.max_payload = max_payload
        self.fast = fast  # take ordinary sample frames on the fast lane (`lane.lane`)
        self._buf = bytearray()
        self.frames_ok = 0
        self.bad_frames = 0
        self.bad: dict[str, int] = dict.fromkeys(BAD_KINDS, 0)
        self.bytes_skipped = 0
        self.bytes_ok = 0
        self.foreign_version: int | None = None
        self.unknown_stream_frames = 0
        self.track = Tracker()
        self.hello: Hello | None = None
        self.raw: list[RawSamples] = []
        self.dtypes: dict[int, np.dtype[Any]] = {}
        self.record_sizes_by_id: dict[int, int] = {}
        if hello is not None:
            self.set_hello(hello)

    # ---- configuration ----------------------------------------------------------------
    def set_hello(self, hello: Hello) -> None:
        """Take record layouts from a HELLO (done automatically when one is decoded)."""
        self.hello = hello
        self.dtypes = {s.id: s.dtype for s in hello.streams}
        self.record_sizes_by_id = {sid: int(dt.itemsize) for sid, dt in self.dtypes.items()}

    def take_raw(self) -> list[RawSamples]:
        """Sample frames kept aside because their stream's layout was unknown."""
        raw, self.raw = self.raw, []
        return raw

    @property
    def pending_bytes(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    # ---- decoding -------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add bytes; return every message completed by them. Never raises."""
        self._buf += data
        return self._process(final=False)

    def flush(self) -> list[Message]:
        """End of input: give up on any incomplete frame, decode what follows it."""
        out = self._process(final=True)
        self.bytes_skipped += len(self._buf)
        self._buf.clear()
        return out

    def _reject(self, kind: str) -> None:
        self.bad_frames += 1
        self.bad[kind] += 1

    def _process(self, final: bool) -> list[Message]:
        result, pos = self._scan(final)
        # every view into the buffer died with _scan's frame, so it may be resized now
        del self._buf[:pos]
        return result

    def _scan(self, final: bool) -> tuple[list[Message], int]:
        buf = self._buf
        n = len(buf)
        out: list[Any] = []  # Message or Run placeholders, materialised at the end
        runs: dict[int, Run] = {}  # open run per stream
        max_len = defs.LENGTH_BASE + self.max_payload
        v1_max = defs.V1_LENGTH_BASE + self.max_payload
        find = buf.find
        crc32 = zlib.crc32
        u32 = _U32.unpack_from
        inner = _INNER.unpack_from
        tr = self.track
        msg_samples = defs.MSG_SAMPLES
        unknown_flags = ~defs.FLAGS_KNOWN & 0xFF
        version = defs.PROTOCOL_VERSION
        pos = 0
        skipped = 0
        ok = 0
        ok_bytes = 0
        mv = memoryview(buf)
        fast = self.fast
        try:
            while True:
                if fast and pos + _LANE_MIN <= n and buf[pos + 5] == msg_samples:
                    # ordinary sample frames first, on the fast lane (see `lane`)
                    j, taken = lane(self, buf, mv, pos, out, runs)
                    if taken:
                        ok += taken
                        ok_bytes += j - pos
                        pos = j
                i = find(_SYNC, pos)
                if i < 0:
                    # keep a trailing A5: it may be the first half of the next sync word
                    keep = n - 1 if n > pos and buf[n - 1] == defs.SYNC0 and not final else n
                    skipped += keep - pos
                    pos = keep
                    break
                skipped += i - pos
                ver = buf[i + 4] if i + 4 < n else -1
                need_head = i + (4 if ver == 1 else _HDR)  # bytes to judge the header
                if ver < 0 or need_head > n:
                    if final:
                        self._reject("header")
                        skipped += 1
                        pos = i + 1
                        continue
                    pos = i
                    break
                length = buf[i + 2] | (buf[i + 3] << 8)
                if ver == 1:
                    # protocol version 1 has no header check: its CRC-32 alone tells it apart
                    h = 0
                    if length < defs.V1_LENGTH_BASE or length > v1_max:
                        self._reject("length")
                        skipped += 1
                        pos = i + 1
                        continue
                else:
                    h = crc32(mv[i + 2 : i + _HCK])
                    if ver == 0 or (h & 0xFF) != buf[i + _HCK]:
                        self._reject("header")
                        skipped += 1
                        pos = i + 1
                        continue
                    if length < defs.LENGTH_BASE or length > max_len:
                        self._reject("length")
                        skipped += 1
                        pos = i + 1
                        continue
                end = i + 4 + length
                if end + 4 > n:
                    if final:
                        self._reject("length")
                        skipped += 1
                        pos = i + 1
                        continue
                    pos = i
                    break
                if ver == 1:
                    good = crc32(mv[i + 2 : end]) == u32(buf, end)[0]
                else:
                    good = crc32(mv[i + _HCK : end], h) == u32(buf, end)[0]
                if not good:
                    self._reject("crc")
                    skipped += 1
                    pos = i + 1
                    continue
                # a real frame (CRC-32 matched): whatever happens now, skip all of it
                pos = end + 4
                if ver != version:
                    self.foreign_version = ver
                    self._reject("version")
                    skipped += pos - i
                    continue
                try:
                    _, mtype, flags, stream, seq, boot = inner(buf, i + 4)
                    if flags & unknown_flags:
                        self._reject("flags")
                        skipped += pos - i
                        continue
                    if boot != tr.boot:
                        if tr.stale(boot, flags):
                            ok += 1
                            ok_bytes += pos - i
                            continue
                        runs.clear()
                        reboot = tr.new_boot(boot, flags)
                        if reboot is not None:
                            out.append(reboot)
                    late = False
                    if seq == tr.next_seq:
                        tr.next_seq = (seq + 1) & 0xFFFF
                        tr.seq_u += 1
                    else:
                        kind = tr.seq_jump(seq)
                        if kind == DUPLICATE:
                            ok += 1
                            ok_bytes += pos - i
                            continue
                        late = kind == LATE

                    if mtype == msg_samples:
                        if self._sample_frame(mv, i, end, flags, stream, seq, late, out, runs):
                            ok += 1
                            ok_bytes += pos - i
                        else:
                            skipped += pos - i
                        continue

                    # any other message: close the sample runs first, so order is kept
                    runs.clear()
                    msg = self.decode_other(mtype, mv[i + _HDR : end])
                except Exception:  # noqa: BLE001 - never raise, never get stuck: count it
                    self._reject("internal")
                    skipped += pos - i
                    continue
                if msg is None:
                    skipped += pos - i
                    continue
                ok += 1
                ok_bytes += pos - i
                out.append(msg)
                if isinstance(msg, Hello):
                    self.set_hello(msg)

            result, failed = materialise(out)
            for _ in range(failed):
                self._reject("internal")
        finally:
            out.clear()
            runs.clear()
        self.bytes_skipped += skipped
        self.frames_ok += ok
        self.bytes_ok += ok_bytes
        return result, pos

    def _sample_frame(
        self,
        mv: memoryview,
        i: int,
        end: int,
        flags: int,
        stream: int,
        seq: int,
        late: bool,
        out: list[Any],
        runs: dict[int, Run],
    ) -> bool:
        """A SAMPLES frame at `i` (payload up to `end`) that passed the frame, boot and seq
        checks: add its records to its stream's run, or start a new run after the Gap the
        accounting finds; keep it aside when its stream's layout is unknown. False (and
        counted) when its payload does not hold whole records."""
        if end - i - _HDR < _SHDR:
            self._reject("payload")
            return False
        first, t_first, nrec, dropped = _SAMPLES_HEADER.unpack_from(mv, i + _HDR)
        start = i + _HDR + _SHDR
        rs = self.record_sizes_by_id.get(stream)
        if rs is None:
            self.unknown_stream_frames += 1
            self.raw.append(
                RawSamples(stream, first, t_first, nrec, bytes(mv[start:end]), flags, seq)
            )
            return True
        if nrec * rs != end - start:
            self._reject("payload")
            return False
        tr = self.track
        exp = tr.next_index.get(stream)
        in_order = (
            exp is not None
            and not late
            and first == exp & _MASK32
            and dropped == tr.dropped[stream]
        )
        if nrec == 0:  # no records; its board_dropped may tell new drops
            if not in_order:
                _, gap = tr.samples(stream, first, 0, dropped, late)
                if gap is not None:
                    runs.pop(stream, None)
                    out.append(gap)
            return True
        run = runs.get(stream)
        if in_order:
            assert exp is not None
            idx = exp
            tr.next_index[stream] = exp + nrec
        else:
            where, gap = tr.samples(stream, first, nrec, dropped, late)
            if where is None:  # delivered late or from before tracking: counted, not kept
                return True
            idx = where
            if gap is not None or exp is None:
                run = None
                if gap is not None:
                    out.append(gap)
        if run is None:
            run = Run(stream, idx, flags, seq, self.dtypes[stream])
            runs[stream] = run
            out.append(run)
        else:
            run.flags |= flags
        run.parts.append(mv[start:end])
        return True

    def decode_other(self, mtype: int, payload: memoryview) -> Message | None:
        """Decode one non-sample payload; None (counted) when it is malformed."""
        try:
            msg = decode_payload(mtype, payload)
        except ForeignHello as e:  # rejected, but the version is worth reporting
            self.foreign_version = e.version
            self._reject("payload")
            return None
        except Exception:  # noqa: BLE001 - malformed payload inside a CRC-valid frame
            self._reject("payload")
            return None
        if msg is None:
            self._reject("type")
        return msg
