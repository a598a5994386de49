"""Adaptive rest: the board ends a rest once the cell has relaxed.

Criterion: |dV/dt| <= a threshold, continuously for `hold` us, and not before `min` us
(the waveform's own deadline is the maximum). The decision is taken here, on the board's
clock, from every fresh cell-voltage reading; the waveform then times the EV_REST_END event.

Rate estimator (robust to ADC noise and quantisation, integer arithmetic only, nothing
allocated per reading): readings are summed in blocks of `k` readings (one `window`);
at the end of each block, the difference of the last two block sums is
    S_new - S_old = k * (mean_new - mean_old) ~= k * dV/dt * (k * period),
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


class Settle:
    def __init__(self, clock):
        self.clock = clock
        self.k = 2  # readings per block
        self.thr = 0  # threshold on |S_new - S_old| (counts x readings)
        self.min_us = 0
        self.hold_us = 0
        self.t0 = 0
        self.ref = 0
        self.started = False
        self.n = 0
        self.acc = 0
        self.prev = 0
        self.have_prev = False
        self.ok = False
        self.t_ok = 0
        self.last_diff = 0

    def configure(self, k, thr, min_us, hold_us):
        """Block length (readings), threshold (see module doc), min and hold (us, < 2**28)."""
        self.k = k
        self.thr = thr
        self.min_us = min_us
        self.hold_us = hold_us

    def start(self, t):
        """A rest begins at raw ticks t."""
        self.t0 = t
        self.started = False
        self.n = 0
        self.acc = 0
        self.have_prev = False
        self.ok = False

    def elapsed_ms(self, now):
        return self.clock.ticks_diff(now, self.t0) // 1000

    def update(self, v_raw, now):
        """One fresh voltage reading at raw ticks `now`; True when the rest may end."""
        if not self.started:
            self.started = True
            self.ref = v_raw
        d = v_raw - self.ref
        if d > _CLAMP:
            d = _CLAMP
        elif d < -_CLAMP:
            d = -_CLAMP
        self.acc += d
        self.n += 1
        if self.n < self.k:
            return False
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
        clock = self.clock
        return (
            self.ok
            and clock.ticks_diff(now, self.t_ok) >= self.hold_us
            and clock.ticks_diff(now, self.t0) >= self.min_us
        )

    def settled(self, wfm, now):
        """The criterion held at raw ticks `now`: EV_REST_END, then the next pulse starts
        from there (or the waveform ends: a REST, or the last pulse's rest)."""
        wfm._event(defs.EV_REST_END, defs.CAUSE_SETTLED, wfm.index & 0xFFFF, self.elapsed_ms(now))
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


def block_threshold(dvdt_v_per_s, k, period_us, volts_per_count):
    """The integer threshold on |S_new - S_old| for |dV/dt| = dvdt_v_per_s (at the command,
    floats allowed): k readings x dV/dt x (k x period) / (volts per count)."""
    return int(dvdt_v_per_s * k * k * period_us * 1e-6 / abs(volts_per_count))
