"""Pressure interlock: a stack-force window around the running waveform.

SET_INTERLOCK arms a window [lo, hi] (load-cell counts, converted once at the command from
newtons with the board's calibration) and a hysteresis band h. Leaving the window (or any
load reading flagged glitch, not ready or saturated: a sensor that cannot be trusted is
outside) makes the board either suspend the waveform (current off, its timing paused) until
the reading is back inside [lo + h, hi - h], or end it (cause pressure). Every change is an
EV_INTERLOCK event: index 1 on leaving, 0 on returning; cause pressure (or sensor_fault);
value the load counts. The state follows every fresh load reading whether or not a waveform
runs, so a waveform started outside the window is suspended in the same loop pass.

Nothing is allocated per reading: integer compares against thresholds set at the command.
"""

from micropython import const

from protocol import defs

OFF = const(0)
SUSPEND = const(1)
END = const(2)
_BAD = const(0x07)  # LOAD_GLITCH | LOAD_NOT_READY | LOAD_SATURATED
_CHUNK = const(0x10000000)  # 2**28 us: ticks_add takes at most +-2**29 on a board


def suspend(wfm, now):
    """Current off and the waveform's phase clock paused, until resume()."""
    if not wfm.running or wfm.suspended:
        return
    wfm.suspended = True
    wfm.t_susp = now
    wfm.source.enable(False)
    wfm.sampler.elec_state = 0
    wfm.setpoint_a = 0.0  # STATUS says what flows (resume restores the plan's float)


def resume(wfm, now):
    """Continue where suspend() paused: the phase deadline moves by the pause."""
    if not wfm.suspended:
        return
    wfm.suspended = False
    clock = wfm.clock
    d = clock.ticks_diff(now, wfm.t_susp)
    ph = wfm.phase
    if ph.active:
        while d > _CHUNK:
            ph.t = clock.ticks_add(ph.t, _CHUNK)
            d -= _CHUNK
        ph.t = clock.ticks_add(ph.t, d)
    if wfm.on:
        wfm._output(True, wfm.code_on)


class Interlock:
    def __init__(self):
        self.action = OFF
        self.lo = 0
        self.hi = 0
        self.lo_in = 0  # back inside: lo + hysteresis
        self.hi_in = 0
        self.outside = False
        self.sensor = False  # the last leaving was a sensor fault
        self.known = False  # a reading was judged since arming

    def arm(self, action, lo, hi, h):
        """Window [lo, hi] in counts (lo < hi), hysteresis h counts (0 <= 2 h < hi - lo)."""
        self.action = action
        self.lo = lo
        self.hi = hi
        self.lo_in = lo + h
        self.hi_in = hi - h
        self.outside = False
        self.sensor = False
        self.known = False

    def update(self, counts, status):
        """One fresh load reading; True when the inside/outside state changed."""
        if self.action == OFF:
            return False
        if status & _BAD:
            out = True
            sensor = True
        elif self.outside:
            out = counts < self.lo_in or counts > self.hi_in
            sensor = False
        else:
            out = counts < self.lo or counts > self.hi
            sensor = False
        changed = out != self.outside or not self.known
        self.known = True
        self.outside = out
        if out:
            self.sensor = sensor
        return changed

    def step(self, wfm, now, smp):
        """The app loop's hook, every pass: judge a fresh load reading, act on the waveform
        (also on one that started while outside)."""
        if self.action == OFF:
            return
        changed = False
        if smp.fresh & 1:
            changed = self.update(smp.load_counts, smp.load_status)
        if self.outside:
            if changed or (wfm.running and not wfm.suspended):
                self._leave(wfm, now, smp.load_counts)
        elif changed:
            wfm._event(defs.EV_INTERLOCK, defs.CAUSE_PRESSURE, 0, smp.load_counts)
            if wfm.running:
                resume(wfm, now)

    def _leave(self, wfm, now, counts):
        cause = defs.CAUSE_SENSOR_FAULT if self.sensor else defs.CAUSE_PRESSURE
        wfm._event(defs.EV_INTERLOCK, cause, 1, counts)
        if not wfm.running:
            return
        if self.action == END:
            wfm.stop(cause)
        else:
            suspend(wfm, now)
