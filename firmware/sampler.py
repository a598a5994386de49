"""Sampling: every fitted stream at its own rate on the one device clock.

Acquisition always runs (safety and the waveform engine use the latest readings); records
are packed (firmware/stream_frames.py) only for enabled streams while streaming is on. Each
stream has a grid of sample slots; a part that paces itself (the HX711, a UART interrogator)
is read when it has something and the slot is due, and slots the loop could not take in
time are counted as lost. Nothing here waits for the link and nothing allocates (checked
under heap_lock in tests, on a 32-bit VM too); counters wrap at 2**30.
"""

import struct

from micropython import const

from firmware.fastops import copy_bytes
from firmware.stream_frames import StreamFrames
from protocol import defs

_WAIT_POLL_US = const(500)  # re-poll a due self-paced part (HX711, interrogator) after this
_IDLE_US = const(1000000)  # longest wait when nothing is due sooner
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


class Sampler(StreamFrames):
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
        self._init_frames(self.fitted, self.n_gratings, payload)
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

    # ---- acquisition + packing (hot path: no allocation) ------------------------------
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

