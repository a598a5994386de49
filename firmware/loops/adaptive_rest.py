"""Adaptive rest: the board ends a rest once the cell has relaxed.

Criterion: |dV/dt| <= a threshold, continuously for `hold` us, and not before `min` us
(the waveform's own deadline is the maximum). The decision is taken here, on the board's
clock, from every fresh cell-voltage reading; the waveform then times the EV_REST_END event.
Optionally (issue 14) a strain-rate criterion on the FBG (firmware/loops/strain_signal.py):
|de/dt| <= its threshold for the same hold, judged on every fresh FBG reading, combined with
the voltage criterion as the command says: both (the rest ends once both held: the safe
choice, neither the electrochemistry nor the mechanics still moving), either (the first that
holds), or the strain alone. EV_REST_END's cause names the criterion that ended the rest
(with both: the one whose hold was completed last).

Rate estimator (robust to ADC noise and quantisation, integer arithmetic only, nothing
allocated per reading), the same for both signals: readings are summed in blocks of `k`
readings (one `window`); at the end of each block, the difference of the last two block
sums is
    S_new - S_old = k * (mean_new - mean_old) ~= k * dx/dt * (k * period),
compared with a threshold in the same units, computed once at the command. No division,
no float on the hot path. Noise: with sigma counts per reading the difference has a
standard deviation sqrt(2 k) * sigma; the mean-of-block slope has a delay of about one
block behind the true slope, plus up to one block until the next block ends.

Readings are taken relative to the first one of the rest and clamped to +-2**20 counts, so
block sums stay small ints (k <= 256) on a 32-bit port.
"""

from micropython import const

from protocol import defs

_CLAMP = const(0x100000)
MAX_BLOCK = const(256)
MIN_BLOCK = const(2)


class Blocks:
    """The block-difference rate criterion on one signal (see the module doc)."""

    def __init__(self, k, thr):
        self.k = k  # readings per block
        self.thr = thr  # threshold on |S_new - S_old| (counts x readings)
        self.ref = 0
        self.started = False
        self.n = 0
        self.acc = 0
        self.prev = 0
        self.have_prev = False
        self.ok = False  # the rate is at or below the threshold since t_ok
        self.t_ok = 0
        self.last_diff = 0

    def reset(self):
        self.started = False
        self.n = 0
        self.acc = 0
        self.have_prev = False
        self.ok = False

    def add(self, x, now):
        """One reading x at raw ticks `now`."""
        if not self.started:
            self.started = True
            self.ref = x
        d = x - self.ref
        if d > _CLAMP:
            d = _CLAMP
        elif d < -_CLAMP:
            d = -_CLAMP
        self.acc += d
        self.n += 1
        if self.n < self.k:
            return
        cur = self.acc
        self.acc = 0
        self.n = 0
        if self.have_prev:
            diff = cur - self.prev
            if diff < 0:
                diff = -diff
            self.last_diff = diff
            if diff <= self.thr:
                if not self.ok:
                    self.ok = True
                    self.t_ok = now
            else:
                self.ok = False
        self.prev = cur
        self.have_prev = True


class Settle:
    def __init__(self, clock):
        self.clock = clock
        self.v = Blocks(2, 0)  # the voltage criterion
        self.e = None  # the strain criterion (Blocks), with `strain` its signal
        self.strain = None
        self.mode = defs.STRAIN_OFF
        self.min_us = 0
        self.hold_us = 0
        self.t0 = 0
        self.cause = defs.CAUSE_SETTLED

    def configure(self, k, thr, min_us, hold_us):
        """Block length (readings), threshold (see module doc), min and hold (us, < 2**28)."""
        self.v = Blocks(k, thr)
        self.min_us = min_us
        self.hold_us = hold_us

    def configure_strain(self, mode, k, thr, strain):
        """The strain criterion: defs.STRAIN_BOTH / EITHER / ONLY, its blocks and signal."""
        self.mode = mode
        self.e = Blocks(k, thr)
        self.strain = strain

    def start(self, t):
        """A rest begins at raw ticks t."""
        self.t0 = t
        self.v.reset()
        if self.e is not None:
            self.e.reset()

    def elapsed_ms(self, now):
        return self.clock.ticks_diff(now, self.t0) // 1000

    def update(self, v_raw, now):
        """One fresh voltage reading at raw ticks `now`; True when the rest may end."""
        self.v.add(v_raw, now)
        return self._done(now)

    def update_strain(self, fbg, now):
        """One fresh FBG reading at raw ticks `now`; True when the rest may end. A reading
        that lost a grating the signal needs restarts the strain criterion (not trusted)."""
        e = self.e
        if e is None:
            return False
        if self.strain.read(fbg):
            e.add(self.strain.x, now)
        else:
            e.reset()
        return self._done(now)

    def _held(self, b, now):
        return b.ok and self.clock.ticks_diff(now, b.t_ok) >= self.hold_us

    def _done(self, now):
        clock = self.clock
        if clock.ticks_diff(now, self.t0) < self.min_us:
            return False
        mode = self.mode
        v_ok = self._held(self.v, now)
        if mode == defs.STRAIN_OFF:
            self.cause = defs.CAUSE_SETTLED
            return v_ok
        e_ok = self._held(self.e, now)
        if mode == defs.STRAIN_ONLY:
            self.cause = defs.CAUSE_STRAIN_SETTLED
            return e_ok
        if mode == defs.STRAIN_BOTH:
            if not (v_ok and e_ok):
                return False
            # the criterion whose hold was completed last ended the rest
            later_e = clock.ticks_diff(self.e.t_ok, self.v.t_ok) > 0
        else:  # STRAIN_EITHER
            if not (v_ok or e_ok):
                return False
            later_e = not v_ok or (e_ok and clock.ticks_diff(self.e.t_ok, self.v.t_ok) < 0)
        self.cause = defs.CAUSE_STRAIN_SETTLED if later_e else defs.CAUSE_SETTLED
        return True

    def settled(self, wfm, now):
        """The criterion held at raw ticks `now`: EV_REST_END, then the next pulse starts
        from there (or the waveform ends: a REST, or the last pulse's rest)."""
        wfm._event(defs.EV_REST_END, self.cause, wfm.index & 0xFFFF, self.elapsed_ms(now))
        if wfm.plan.kind == 0:  # waveform.REST
            wfm.stop(defs.CAUSE_SETTLED)
            return
        wfm.index += 1
        if wfm.plan.count and wfm.index >= wfm.plan.count:
            wfm.stop(defs.CAUSE_COMPLETED)
            return
        wfm._enter(now, True)

    def at_max(self, wfm):
        """The rest's deadline (its maximum) came first; the waveform goes on as usual."""
        ms = self.elapsed_ms(wfm.phase.t)
        wfm._event(defs.EV_REST_END, defs.CAUSE_DURATION, wfm.index & 0xFFFF, ms)


def block_threshold(rate_per_s, k, period_us, units_per_count):
    """The integer threshold on |S_new - S_old| for a rate of rate_per_s (at the command,
    floats allowed): k readings x rate x (k x period) / (units per count)."""
    return int(rate_per_s * k * k * period_us * 1e-6 / abs(units_per_count))
