"""Sampling: every fitted stream at its own rate on the one device clock, packed in place.

Acquisition always runs (safety and the waveform engine use the latest readings); records
are packed only for enabled streams while streaming is on. Each stream owns two
SampleFrame buffers (double buffering): the active one is filled with struct.pack_into;
when it is full (or older than `max_latency_us`) it is sealed and written. A frame the link
refuses stays pending and is retried every loop; when the next one is full while the
pending one is still refused, the older frame's records are counted as dropped and the
stream's next frame carries FLAG_DROPPED. Every frame carries the stream's cumulative count
of dropped samples with indices before its first one (taken when the frame leaves the
active slot, so a retried frame keeps it), which lets the host split any index gap exactly
into board drops and link losses. A frame the link took in part is finished by the
link (its outbox), never cut. Nothing here waits for the link and nothing allocates
(checked under heap_lock in tests, on a 32-bit VM too); counters wrap at 2**30.
"""

import struct

from micropython import const

from firmware.fastops import copy_bytes
from firmware.link import REFUSED, SENT
from protocol import defs
from protocol.frame import SampleFrame

_HDR = const(13)  # defs.HEADER_SIZE
_SHDR = const(14)  # defs.SAMPLES_HEADER_SIZE
_M30 = const(0x3FFFFFFF)  # counters wrap here: a small int on every port
_WAIT_POLL_US = const(500)  # re-poll a due self-paced part (HX711, interrogator) after this
_IDLE_US = const(1000000)  # longest wait when nothing is due sooner
_FLUSH_WAIT_US = const(20000)  # streaming off: how long the last frames may wait for the link
_FBG_MAX_LINES = const(8)  # interrogator lines taken in one pass (its driver queues 8)


def _repoll_us(period_us):
    """How soon a due self-paced part that had nothing yet is polled again."""
    poll = period_us >> 4
    return poll if poll > _WAIT_POLL_US else _WAIT_POLL_US


LOAD = const(0)
FBG = const(1)
ELEC = const(2)
TEMP = const(3)

_LOAD_FMT = "<IiB"
_ELEC_FMT = "<IiiB"
_TEMP_FMT = "<IHi"
_FBG_PREFIX = "<IB"


def record_format(stream, n_gratings=0):
    if stream == LOAD:
        return defs.LOAD_RECORD_FMT
    if stream == FBG:
        return defs.FBG_RECORD_FMT_PREFIX + "i" * n_gratings
    if stream == ELEC:
        return defs.ELEC_RECORD_FMT
    return defs.TEMP_RECORD_FMT


class Sampler:
    def __init__(
        self,
        hal,
        link,
        devclock,
        rates_hz,
        enabled,
        payload=defs.DEFAULT_SAMPLE_PAYLOAD,
        max_latency_us=defs.SAMPLE_FLUSH_US,
    ):
        self.hal = hal
        self.link = link
        self.dc = devclock
        self.max_latency_us = max_latency_us
        self.loadcell = getattr(hal, "loadcell", None)
        self.fbg = getattr(hal, "fbg", None)
        self.source = hal.source
        self.therm = getattr(hal, "thermistor", None)
        self.n_gratings = self.fbg.n_gratings if self.fbg is not None else 0
        self.fbg_self_paced = bool(getattr(self.fbg, "self_paced", False))
        self.fitted = [
            self.loadcell is not None,
            self.fbg is not None,
            True,
            self.therm is not None,
        ]
        self.streaming = False
        self.enabled = [bool(enabled[s]) and self.fitted[s] for s in range(4)]
        self.period_us = [1000000] * 4
        for s in range(4):
            self.set_rate(s, rates_hz[s])
        now = devclock.raw
        self.next_due = [now] * 4
        self.fbg_polled = now  # raw ticks of the last interrogator poll
        self.load_polled = now  # raw ticks of the last load-cell check that found no word
        self.load_empty = False  # a check since the last word found none (load_polled valid)
        self.index = [0] * 4  # low 30 bits of the per-stream sample index
        self.index_ep = [0] * 4  # its top 2 bits
        self.frames = []
        for s in range(4):
            if self.fitted[s]:
                size = struct.calcsize(record_format(s, self.n_gratings))
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
        # latest readings
        self.fresh = 0  # bit s: stream s acquired since the consumer cleared it
        self.load_counts = 0
        self.load_status = defs.LOAD_NOT_READY
        self.v_raw = 0
        self.i_raw = 0
        self.elec_state = 0
        self.elec_tick = now
        self.elec_dt_us = 0
        self.temp_raw = 0
        self.temp_mdegc = 0
        self.temp_ok = False

    # ---- configuration --------------------------------------------------------------
    def set_rate(self, s, rate_hz):
        """Set the period; return the rate actually applied (1e6 / integer period)."""
        p = int(round(1000000 / rate_hz))
        if p < 1:
            p = 1
        self.period_us[s] = p
        return 1000000 / p

    def min_period_us(self):
        """The shortest period of the fitted streams (acquired whether sent or not)."""
        m = _IDLE_US
        for s in range(4):
            if self.fitted[s] and self.period_us[s] < m:
                m = self.period_us[s]
        return m

    def rate_hz(self, s):
        return 1000000 / self.period_us[s]

    def set_streaming(self, on):
        if not on and self.streaming:
            self.flush_all()
        if on and not self.streaming:
            # slots that passed while not streaming are no samples of the stream: a grid
            # running late then (a long pass: commands, a STATUS heap scan, the collection
            # before streaming starts) counted them as dropped at the first pass that
            # streamed (rp2 VM: one elec sample at each start). A slot already due starts
            # the grid now: kept, a slot less than a period late plus the rest of this pass
            # (the ACK, the event: a few ms on a Pico) made a skip too
            clock = self.hal.clock
            now = self.dc.raw
            for s in range(4):
                if self.fitted[s] and clock.ticks_diff(now, self.next_due[s]) >= 0:
                    self.next_due[s] = now
        self.streaming = bool(on)
        for s in range(4):
            if self.frames[s] is not None:
                self._reset_active(s)

    def _reset_active(self, s):
        fr = self.frames[s][self.active[s]]
        fr.reset(self.index[s])
        fr.count = 0

    # ---- the loop's entry point ------------------------------------------------------
    def poll(self, now):
        """Acquire every stream that is due at raw ticks `now`; returns the next due tick.
        (In parts: a function with more than 11 words of locals and stack gets its frame
        from MicroPython's heap at every call, see firmware/app.py.)"""
        if self.fbg_self_paced:
            self._poll_fbg_lines()
        fitted = self.fitted
        if fitted[LOAD]:
            self._poll_load(now)
        s = FBG
        while s <= TEMP:
            if (
                fitted[s]
                and not (s == FBG and self.fbg_self_paced)
                and self.hal.clock.ticks_diff(now, self.next_due[s]) >= 0
            ):
                self._advance(s, now)
                self._acquire(s, now)
            s += 1
        self.pump(now)
        return self._next_wake(now)

    def _acquire(self, s, now):
        if s == ELEC:
            self._elec(now)
        elif s == TEMP:
            self._temp()
        else:
            self.fbg.poll(self.dc.t30)
            self._fbg_record()

    def _poll_fbg_lines(self):
        # lines arrive at the interrogator's pace: take one if it is at most a quarter
        # period early (jitter), so a stream at the interrogator's rate loses none.
        # Judged at the time of the read, not the pass's start: the pass began up to a few
        # ms before it (link, commands), and a line that came in between looked early by
        # that much and was dropped uncounted
        clock = self.hal.clock
        fbg = self.fbg
        prev = self.fbg_polled  # each read drains the UART: a line found now came later
        n = 0
        while n < _FBG_MAX_LINES:
            t = clock.ticks_us()
            if not fbg.poll(self.dc.t30):
                break
            n += 1
            self._fbg_line(t, n, prev)
        self.fbg_polled = t

    def _fbg_line(self, t, n, prev):
        """The n-th line this pass read (at raw ticks t; the pass's previous read: prev)."""
        p = self.period_us[FBG]
        d = self.hal.clock.ticks_diff(t, self.next_due[FBG])
        if d < -(p >> 2):
            return
        if self.fbg.backlog:
            # a newer line came by this read too (the loop was late by a line period or
            # more): this one is its slot's, recorded now. Only the newest line says
            # whether slots passed without a line: judged from `now`, an older one counted
            # the slot of the line after it as skipped and moved the grid a period away
            # from the lines (and that line went unrecorded)
            self._next_slot(FBG)
            self._fbg_record()
            return
        self._advance(FBG, t, True)
        if 0 < d <= p and n == 1 and self.hal.clock.ticks_diff(t, prev) <= d:
            # the interrogator sweeps on its own clock: follow its phase as for the HX711
            # (below), from a read of this period that found nothing
            self._repoll_after(FBG, prev)
        self._fbg_record()

    def _repoll_after(self, s, t):
        """Stream s (self-paced) is next due one re-poll and one period after raw ticks t."""
        p = self.period_us[s]
        self.next_due[s] = self.hal.clock.ticks_add(t, _repoll_us(p) + p)

    def _poll_load(self, now):
        # the chip paces itself: read a conversion when it is ready and the stream
        # is due (a quarter period early allowed for clock drift); when none came
        # for a whole period, record the last counts with LOAD_NOT_READY
        clock = self.hal.clock
        d = clock.ticks_diff(now, self.next_due[LOAD])
        p = self.period_us[LOAD]
        if d < -(p >> 2):
            return
        ready = self.loadcell.ready()
        if ready or d >= p:
            self._advance(LOAD, now)
            if ready and d <= p and self.load_empty:
                # the chip converts on its own clock, later in the period than
                # the grid: a check of this period found nothing, so it converted
                # after that check and by the re-poll after it; the next word is
                # there by that re-poll + p (one pass per reading, not a re-poll
                # every period). A word there at the first look keeps the grid:
                # following `now` or an older check moved it later by each pass's
                # latency, losing conversions uncounted (rp2 VM, cpu=rp2040), and
                # an old check's tick is invalid after 2**29 us.
                self._repoll_after(LOAD, self.load_polled)
            self.load_empty = False
            self._load()
        else:
            self.load_polled = now
            self.load_empty = True

    def _next_wake(self, now):
        # The next wake-up. A self-paced stream that is due but whose part has nothing yet
        # (HX711 converting, no interrogator line) is polled again after 1/16 of its
        # period (at least _WAIT_POLL_US) instead of making the loop spin until the part
        # is ready; the reading is then at most that late against the part's own clock.
        clock = self.hal.clock
        nd = clock.ticks_add(now, _IDLE_US)
        s = 0
        while s < 4:
            if self.fitted[s]:
                d = self.next_due[s]
                if clock.ticks_diff(d, now) <= 0:
                    d = self._repoll_at(s, now)
                if clock.ticks_diff(d, nd) < 0:
                    nd = d
            s += 1
        return nd

    def _repoll_at(self, s, now):
        """When a due self-paced stream whose part had nothing is looked at again."""
        return self.hal.clock.ticks_add(now, _repoll_us(self.period_us[s]))

    def _next_slot(self, s):
        self.next_due[s] = self.hal.clock.ticks_add(self.next_due[s], self.period_us[s])

    def _advance(self, s, now, keep_phase=False):
        clock = self.hal.clock
        nd = clock.ticks_add(self.next_due[s], self.period_us[s])
        self.next_due[s] = nd
        if clock.ticks_diff(now, nd) >= self.period_us[s]:
            self._late(s, now, keep_phase)  # the loop ran late: whole slots passed

    def _late(self, s, now, keep_phase):
        """Skip the slots of stream s that passed unsampled before `now`; move its next
        due tick on."""
        clock = self.hal.clock
        p = self.period_us[s]
        nd = self.next_due[s]
        k = clock.ticks_diff(now, nd) // p
        self._skip(s, k)
        # keep_phase: a part that paces itself (the interrogator) came on the grid's
        # phase, not at `now`: its next line is due by the slot after the skipped ones.
        # From `now` (up to a period after the line) the next line came early and was
        # dropped uncounted
        self.next_due[s] = clock.ticks_add(nd, k * p) if keep_phase else clock.ticks_add(now, p)

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

    # ---- acquisition + packing (hot path: no allocation) ------------------------------
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

    def _load(self):
        self.load_counts = self.loadcell.read()
        self.load_status = self.loadcell.status
        self.fresh |= 1 << LOAD
        fr = self._slot(LOAD)
        if fr is None:
            return
        off = fr.record_offset()
        struct.pack_into(
            _LOAD_FMT, fr.buf, off, self.dc.t30, self.load_counts, self.load_status
        )
        fr.buf[off + 3] |= self.dc.ep6
        self._added(LOAD, fr)

    def read_elec(self, now):
        """Read cell voltage and current (fresh for the checks) without recording them: the
        elec stream's samples, and the voltage guard's readings between them."""
        src = self.source
        self.v_raw = src.read_voltage_raw()
        self.i_raw = src.read_current_raw()
        self.elec_dt_us = self.hal.clock.ticks_diff(now, self.elec_tick)
        self.elec_tick = now
        self.fresh |= 1 << ELEC

    def _elec(self, now):
        self.read_elec(now)
        fr = self._slot(ELEC)
        if fr is None:
            return
        off = fr.record_offset()
        dc = self.dc
        struct.pack_into(_ELEC_FMT, fr.buf, off, dc.t30, self.v_raw, self.i_raw, self.elec_state)
        fr.buf[off + 3] |= self.dc.ep6
        self._added(ELEC, fr)

    def _temp(self):
        th = self.therm
        raw = th.read_raw()
        m = th.to_mdegc(raw)
        if m is None:
            self.temp_ok = False
            m = 0
            raw = 0xFFFF if raw > 0x7FFF else 0  # TEMP_OPEN sentinel
        else:
            self.temp_ok = True
        self.temp_raw = raw
        self.temp_mdegc = m
        self.fresh |= 1 << TEMP
        fr = self._slot(TEMP)
        if fr is None:
            return
        off = fr.record_offset()
        struct.pack_into(_TEMP_FMT, fr.buf, off, self.dc.t30, raw, m)
        fr.buf[off + 3] |= self.dc.ep6
        self._added(TEMP, fr)

    def _fbg_record(self):
        self.fresh |= 1 << FBG
        fr = self._slot(FBG)
        if fr is None:
            return
        dc = self.dc
        # stamped when the line was read, not at the pass's start: reading the link came
        # first, and a line that arrived meanwhile (1-4 ms on the rp2 VM) was stamped
        # before it existed
        dc.update()
        off = fr.record_offset()
        struct.pack_into(_FBG_PREFIX, fr.buf, off, dc.t30, self.fbg.status)
        fr.buf[off + 3] |= dc.ep6
        copy_bytes(fr.buf, off + 5, self.fbg.peaks, 0, 4 * self.n_gratings)
        self._added(FBG, fr)

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
