"""The streams' sample frames: records packed in place, sealed and written to the link.

Each stream owns two SampleFrame buffers (double buffering): the active one is filled with
struct.pack_into; when it is full (or older than `max_latency_us`) it is sealed and
written. A frame the link refuses stays pending and is retried every loop; when the next one
is full while the pending one is still refused, the older frame's records are counted as
dropped and the stream's next frame carries FLAG_DROPPED. Every frame carries the stream's
cumulative count of dropped samples with indices before its first one (taken when the frame
leaves the active slot, so a retried frame keeps it), which lets the host split any index
gap exactly into board drops and link losses. A frame the link took in part is finished by
the link (its outbox), never cut. Nothing here waits for the link and nothing allocates;
counters wrap at 2**30.

`StreamFrames` is the Sampler's base class (firmware/sampler.py): the sampling grid and the
readings there, their frames here.
"""

import struct

from micropython import const

from firmware.link import REFUSED, SENT
from protocol import defs
from protocol.frame import SampleFrame

_HDR = const(13)  # defs.HEADER_SIZE
_SHDR = const(14)  # defs.SAMPLES_HEADER_SIZE
_M30 = const(0x3FFFFFFF)  # counters wrap here: a small int on every port
_FLUSH_WAIT_US = const(20000)  # streaming off: how long the last frames may wait for the link


def record_format(stream, n_gratings=0):
    if stream == defs.STREAM_LOAD:
        return defs.LOAD_RECORD_FMT
    if stream == defs.STREAM_FBG:
        return defs.FBG_RECORD_FMT_PREFIX + "i" * n_gratings
    if stream == defs.STREAM_ELEC:
        return defs.ELEC_RECORD_FMT
    return defs.TEMP_RECORD_FMT


class StreamFrames:
    def _init_frames(self, fitted, n_gratings, payload):
        """Two frame buffers per fitted stream, and the counters the frames carry."""
        self.index = [0] * 4  # low 30 bits of the per-stream sample index
        self.index_ep = [0] * 4  # its top 2 bits
        self.frames = []
        for s in range(4):
            if fitted[s]:
                size = struct.calcsize(record_format(s, n_gratings))
                self.frames.append([SampleFrame(s, size, payload), SampleFrame(s, size, payload)])
            else:
                self.frames.append(None)
        self.active = [0] * 4
        self.pending = [False] * 4  # the non-active buffer holds a refused frame
        self.first_tick = [0] * 4
        self.first_ep6 = [0] * 4
        self.first_iep6 = [0] * 4
        self.dropped = 0
        self.sdrop = [0] * 4  # per stream: dropped samples, low 30 bits
        self.sdrop_ep6 = [0] * 4  # their top 2 bits << 6
        self.sdrop_sent = [0] * 4  # sdrop as the last frame sent told the host
        self.missed = 0  # acquisitions skipped because the loop ran late
        self.records = 0

    def _reset_active(self, s):
        fr = self.frames[s][self.active[s]]
        fr.reset(self.index[s])
        fr.count = 0

    # ---- lost slots -----------------------------------------------------------------
    def _skip(self, s, k):
        """k sample slots of stream s passed without a sample: they are lost samples.

        The index moves on by k so the host's gap accounting counts them, the next frame
        carries FLAG_DROPPED, and STATUS samples_dropped includes them."""
        m = self.missed  # + k, wrapping at 2**30 without forming it (a big int on boards)
        self.missed = m + k if k <= _M30 - m else k - (_M30 - m) - 1
        if not (self.streaming and self.enabled[s]):
            return
        if self.frames[s][self.active[s]].count:
            self._rotate(s)  # a frame holds consecutive indices only
        i = self.index[s]
        room = _M30 - i  # i + k would be a big int on a 32-bit port when k > room
        if k > room:
            i = k - room - 1
            self.index_ep[s] = (self.index_ep[s] + 1) & 3
        else:
            i += k
        self.index[s] = i
        self.frames[s][self.active[s]].first_index = i
        self._drops(s, k)

    def _drops(self, s, k):
        """k samples of stream s dropped: the total (STATUS) and the stream's own count."""
        m = self.dropped
        self.dropped = m + k if k <= _M30 - m else k - (_M30 - m) - 1
        m = self.sdrop[s]
        if k > _M30 - m:
            self.sdrop[s] = k - (_M30 - m) - 1
            self.sdrop_ep6[s] = (self.sdrop_ep6[s] + 64) & 0xC0
        else:
            self.sdrop[s] = m + k
        # the flag rides with the frame after the gap, not with the stream: set on the
        # stream, it went out on an older frame still waiting for the link (before the
        # gap) and was cleared by sending it, leaving the gap unflagged
        self.frames[s][self.active[s]].flag = defs.FLAG_DROPPED

    # ---- packing (hot path: no allocation) -----------------------------------------
    def _slot(self, s):
        """Frame to pack into if this stream records now, else None."""
        if not (self.streaming and self.enabled[s]):
            return None
        return self.frames[s][self.active[s]]

    def _added(self, s, fr):
        if fr.count == 0:
            self.first_tick[s] = self.dc.raw
            self.first_ep6[s] = self.dc.ep6
            fr.first_index = self.index[s]
            self.first_iep6[s] = self.index_ep[s] << 6
            fr.t_first_us = self.dc.t30
        fr.count += 1
        i = self.index[s]
        if i == _M30:  # i + 1 would be 2**30: a big int on a 32-bit port
            i = 0
            self.index_ep[s] = (self.index_ep[s] + 1) & 3
        else:
            i += 1
        self.index[s] = i
        self.records = self.records + 1 if self.records < _M30 else 0
        if fr.count >= fr.capacity:
            self._rotate(s)

    # ---- frames to the link ----------------------------------------------------------
    def _seal(self, s, fr):
        buf = fr.buf
        struct.pack_into("<IIHI", buf, _HDR, fr.first_index, fr.t_first_us, fr.count, fr.dropped)
        buf[_HDR + 3] |= self.first_iep6[s]
        buf[_HDR + 7] |= self.first_ep6[s]
        buf[_HDR + 13] |= fr.dropped_ep6
        w = fr.writer
        w.seq = self.link.seq
        w.boot = self.link.boot
        return w.finish(
            defs.MSG_SAMPLES,
            self.link.flags() | fr.flag,
            s,
            _SHDR + fr.count * fr.record_size,
        )

    def _send(self, s, fr):
        link = self.link
        if not link.pump():
            # the outbox still holds an earlier frame, so the link would refuse this one:
            # seal it only when it can go (sealing costs ~1 ms on a Pico, and a frame
            # retried on every pass while the outbox drained cost 5 ms passes on the rp2 VM)
            return REFUSED
        r = link.send(fr.buf, self._seal(s, fr))
        if r == SENT:
            fr.flag = 0
            self.sdrop_sent[s] = fr.dropped
        return r

    def _rotate(self, s):
        pair = self.frames[s]
        a = self.active[s]
        other = pair[1 - a]
        if self.pending[s]:
            if self._send(s, other) == REFUSED:
                other.flag = 0  # its records are dropped: the gap is before `cur` now
                self._drops(s, other.count)
            self.pending[s] = False
            other.count = 0
        cur = pair[a]
        # drops so far are all of indices before cur's first (a skip rotates first)
        cur.dropped = self.sdrop[s]
        cur.dropped_ep6 = self.sdrop_ep6[s]
        if self._send(s, cur) == REFUSED:
            self.pending[s] = True
            a = 1 - a
            self.active[s] = a
        nxt = pair[a]
        nxt.count = 0
        nxt.first_index = self.index[s]

    def pump(self, now):
        """Retry refused frames; seal frames older than max_latency_us."""
        s = 0
        while s < 4:  # (no range iterator: a frame small enough for MicroPython's C stack)
            if self.frames[s] is not None:
                self._pump(s, now)
            s += 1

    def _pump(self, s, now):
        pair = self.frames[s]
        if self.pending[s]:
            other = pair[1 - self.active[s]]
            if self._send(s, other) != REFUSED:
                self.pending[s] = False
                other.count = 0
        fr = pair[self.active[s]]
        if fr.count and self.hal.clock.ticks_diff(now, self.first_tick[s]) >= self.max_latency_us:
            self._rotate(s)

    def flush_all(self):
        """Send what the streams hold; a stream whose last frame did not tell all its drops
        sends a frame of 0 records carrying them (else drops after it would go unseen)."""
        clock = self.hal.clock
        t0 = clock.ticks_us()
        for s in range(4):
            pair = self.frames[s]
            if pair is not None and (
                pair[self.active[s]].count or self.sdrop[s] != self.sdrop_sent[s]
            ):
                # streaming stops, so no new records need the older buffer: give the link a
                # bounded moment to take a frame it refused before (each try writes a chunk)
                # instead of dropping it to make room (7-11 samples at each stop on the rp2
                # VM, where the four streams' last frames queue behind each other)
                while self.pending[s] and clock.ticks_diff(clock.ticks_us(), t0) < _FLUSH_WAIT_US:
                    other = pair[1 - self.active[s]]
                    if self._send(s, other) != REFUSED:
                        self.pending[s] = False
                        other.count = 0
                self._rotate(s)
