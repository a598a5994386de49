"""Current derating by pressure (or strain) rate: while the stack force, or the FBG strain,
changes faster than a limit, the waveform's amplitude is scaled down; when the rate falls
below a lower limit it comes back up.

The rate estimator is the least-squares slope of the last N readings of the signal
(firmware/loops/slope.py: its noise and delay): HX711 counts of the load cell, or the FBG
strain signal in fm (firmware/loops/strain_signal.py: a grating's wavelength, temperature-
compensated with a reference grating when one is named). Delay: plus the conversion latency
(one reading period on an HX711).

The decision compares |T| to thresholds made once at the command (from N/s with the board's
load calibration, or from microstrain/s with pm_per_ue, and the signal stream's rate at that
moment): derate when |T| > on, restore when |T| < off (off < on: hysteresis). A reading the
board cannot trust (load: glitch, not ready, saturated; FBG: a grating lost) derates (cause
sensor_fault) and refills the window before judging again. Each change is an EV_DERATE event
(index 1 derated / 0 restored, cause pressure_rate or strain_rate, value the rate estimate in
load counts/s or fm/s); the elec stream's state has ELEC_DERATED while a derated current
flows.
"""

from micropython import const

from firmware.loops.slope import MAX_WINDOW, MIN_WINDOW, Slope, window_d  # noqa: F401
from protocol import defs

FULL = const(1024)  # the scale is q / 1024
_BAD = const(0x07)  # LOAD_GLITCH | LOAD_NOT_READY | LOAD_SATURATED


class Derate(Slope):
    def __init__(self):
        super().__init__()
        self.armed = False
        self.on_thr = 0
        self.off_thr = 0
        self.q = FULL  # the scale applied while derated
        self.derated = False
        self.strain = None  # strain_signal.StrainSignal: judge de/dt instead of dF/dt
        self.cause = defs.CAUSE_PRESSURE_RATE

    def arm(self, n, on_thr, off_thr, q, sps, strain=None):
        self.n = n
        self.on_thr = on_thr
        self.off_thr = off_thr
        self.q = q
        self.sps = sps
        self.strain = strain
        self.cause = defs.CAUSE_PRESSURE_RATE if strain is None else defs.CAUSE_STRAIN_RATE
        self.fill = 0
        self.head = 0
        self.derated = False
        self.armed = True

    def disarm(self, wfm):
        if self.derated:
            self.derated = False
            wfm.set_scale(FULL)
        self.armed = False

    def step(self, wfm, smp):
        """The app loop's hook, every pass: judge a fresh reading of the signal."""
        if not self.armed:
            return
        sig = self.strain
        if sig is None:
            if not smp.fresh & 1:
                return
            good = not smp.load_status & _BAD
            x = smp.load_counts
        else:
            if not smp.fresh & 2:
                return
            good = sig.read(smp.fbg)
            x = sig.x
        if not good:
            self.fill = 0
            if not self.derated:
                self._change(wfm, True, defs.CAUSE_SENSOR_FAULT, x)
            return
        if not self.add(x):
            return
        t = self.t
        if t < 0:
            t = -t
        if self.derated:
            if t < self.off_thr:
                self._change(wfm, False, self.cause, self.rate_cps())
        elif t > self.on_thr:
            self._change(wfm, True, self.cause, self.rate_cps())

    def _change(self, wfm, derated, cause, value):
        self.derated = derated
        wfm.set_scale(self.q if derated else FULL)
        wfm._event(defs.EV_DERATE, cause, 1 if derated else 0, value)
