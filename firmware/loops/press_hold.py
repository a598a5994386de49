"""Stack-pressure hold: a PI loop on the load cell that moves the press's stepper
(firmware/drivers/stepper.py) so the stack force stays at a setpoint while the cell's
thickness changes with the charge passed (seed 001: lithiating Ga-In raises the pressure
by about 1.2 MPa at a fixed press).

The loop acts once per fresh, good load reading (10 or 80 SPS), on the median of the last
three (an unflagged spike moves nothing); all its arithmetic is in small ints, so a pass
allocates nothing and stays under 2**30 on a 32-bit port:

    e      = setpoint - median (load counts; sign so that e > 0 asks for more force)
    I     += ki * e                 (kept as whole steps + a 2**-S fraction)
    target = x_ref + I + kp * e     (steps; x_ref: where the press was at the start)

with kp (steps per count) and ki (steps per count per reading) as fixed-point integers
kp_q = kp 2**S (S chosen at the command so the larger gain has 12 bits) and e clamped so
that kp_q e stays under 2**29. The target is clamped to the hold's travel window (at most
`max_travel` from x_ref, inside the board's travel limits) and the move per reading to
the step-rate limit; while either clamp holds in the error's direction the integral is
not advanced (anti-windup: conditional integration). A move goes out at the rate limit,
so it ends before the next reading.

Latched stops (EV_PRESS_HOLD index 2 with the cause, then the app's latched stop: current
off, the actuator stopped where it is, holding torque kept):
- |e| beyond `err_lim` for `runaway_us` without shrinking by err_lim/4 (cause
  press_runaway, or press_travel when the press sits at its travel limit that way);
- a saturated load reading (over_force); 3 glitch/not-ready readings in a row
  (sensor_fault; a single one is skipped: the press holds for that reading).
Any latched stop of the board (safety, watchdog) stops the hold too (actuator holds).
While a hold runs, EV_PRESS_POSITION reports the actuator's position (steps) when it moved
a step and 0.25 s passed, or it moved 16 steps since the last report.
"""

from array import array

from micropython import const

from protocol import defs

_BAD = const(0x03)  # LOAD_GLITCH | LOAD_NOT_READY
_BAD_MAX = const(3)
_REPORT_US = const(250000)
_REPORT_STEPS = const(16)


def _med3(a, b, c):
    if a > b:
        a, b = b, a
    if b > c:
        b = c
    return a if a > b else b


class PressHold:
    def __init__(self, stepper):
        self.st = stepper
        self.ring = array("i", (0, 0, 0))
        self.armed = False
        self.set_c = 0
        self.neg = False
        self.kp_q = 0
        self.ki_q = 0
        self.shift = 0
        self.half = 0
        self.emax = 0
        self.err_lim = 0
        self.runaway_us = 0
        self.x_ref = 0
        self.x_lo = 0
        self.x_hi = 0
        self.max_step = 1
        self.rate = 1
        self.fill = 0
        self.k = 0
        self.bad = 0
        self.i_w = 0
        self.i_f = 0
        self.over = False
        self.over_t = 0
        self.best = 0
        self.rep_pos = 0
        self.rep_t = 0
        self.err = 0  # the last error (counts): for tests and the runaway event

    def arm(self, app, now, set_c, neg, gains, err_lim, runaway_us, window, max_step, rate):
        """gains: (kp_q, ki_q, shift, emax); window: (x_ref, x_lo, x_hi) in steps."""
        self.set_c = set_c
        self.neg = neg
        self.kp_q, self.ki_q, self.shift, self.emax = gains
        self.half = (1 << self.shift) >> 1
        self.err_lim = err_lim
        self.runaway_us = runaway_us
        self.x_ref, self.x_lo, self.x_hi = window
        self.max_step = max_step
        self.rate = rate
        self.fill = 0
        self.k = 0
        self.bad = 0
        self.i_w = 0
        self.i_f = 0
        self.over = False
        self.rep_pos = self.x_ref
        self.rep_t = now
        self.st.enable(True)
        self.armed = True

    def disarm(self, app, now, cause):
        """Stop holding: the actuator stops where it is (holding torque kept)."""
        if not self.armed:
            return
        self.armed = False
        pos = self.st.stop(now)
        app.event(defs.EV_PRESS_HOLD, cause, 0, pos)
        self.rep_pos = pos

    def _runaway(self, app, now, cause, value):
        self.st.stop(now)
        app.event(defs.EV_PRESS_HOLD, cause, 2, value)
        if not app.safety.latched:
            app.latch(cause)
        self.disarm(app, now, cause)

    def step(self, app, now, smp):
        """The app loop's hook, every pass: act on a fresh load reading."""
        if not self.armed:
            return
        if app.safety.latched:
            self.disarm(app, now, app.safety.cause)
            return
        if not smp.fresh & 1:
            return
        st = smp.load_status
        if st & defs.LOAD_SATURATED:
            self._runaway(app, now, defs.CAUSE_OVER_FORCE, smp.load_counts)
            return
        if st & _BAD:
            self.bad += 1
            if self.bad >= _BAD_MAX:
                self._runaway(app, now, defs.CAUSE_SENSOR_FAULT, smp.load_counts)
            return
        self.bad = 0
        r = self.ring
        r[self.k] = smp.load_counts
        self.k = 0 if self.k == 2 else self.k + 1
        if self.fill < 3:
            self.fill += 1
            if self.fill < 3:
                return
        e = self.set_c - _med3(r[0], r[1], r[2])
        if self.neg:
            e = -e
        self.err = e
        pos = self.st.position(now)
        self._report(app, now, pos)
        if self._watch(app, now, e, pos):
            return
        self._control(now, e, pos)

    def _watch(self, app, now, e, pos):
        """The runaway timer; True when it latched."""
        ae = e if e >= 0 else -e
        lim = self.err_lim
        if ae <= lim:
            self.over = False
            return False
        if not self.over or ae + (lim >> 2) < self.best:
            self.over = True
            self.over_t = now
            self.best = ae
            return False
        if app.clock.ticks_diff(now, self.over_t) < self.runaway_us:
            return False
        at_end = (e > 0 and pos >= self.x_hi) or (e < 0 and pos <= self.x_lo)
        self._runaway(app, now, defs.CAUSE_PRESS_TRAVEL if at_end else defs.CAUSE_PRESS_RUNAWAY, e)
        return True

    def _control(self, now, e, pos):
        em = self.emax
        if e > em:
            e = em
        elif e < -em:
            e = -em
        s = self.shift
        f = self.i_f + self.ki_q * e
        carry = f >> s
        iw = self.i_w + carry
        f -= carry << s
        target = self.x_ref + iw + ((self.kp_q * e + self.half) >> s)
        sat = 0
        if target > self.x_hi:
            target = self.x_hi
            sat = 1
        elif target < self.x_lo:
            target = self.x_lo
            sat = -1
        d = target - pos
        if d > self.max_step:
            d = self.max_step
            sat = 1
        elif d < -self.max_step:
            d = -self.max_step
            sat = -1
        if not ((sat > 0 and e > 0) or (sat < 0 and e < 0)):
            self.i_w = iw
            self.i_f = f
        if d:
            self.st.move(d, self.rate, now)

    def _report(self, app, now, pos):
        dp = pos - self.rep_pos
        if not dp:
            return
        if -_REPORT_STEPS < dp < _REPORT_STEPS and (
            app.clock.ticks_diff(now, self.rep_t) < _REPORT_US
        ):
            return
        self.rep_pos = pos
        self.rep_t = now
        app.event(defs.EV_PRESS_POSITION, 0, 0, pos)
