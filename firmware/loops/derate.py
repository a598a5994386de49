"""Current derating by pressure rate: while the stack force changes faster than a limit,
the waveform's amplitude is scaled down; when the rate falls below a lower limit it comes
back up.

The rate estimator is the least-squares slope of the last N load-cell readings (HX711
counts), the optimal linear estimator of a ramp in white noise:

    b = sum((k - (N-1)/2) x_k) / sum((k - (N-1)/2)^2),   k = 0..N-1 (oldest first)

kept as T = sum((2k - N + 1) x_k) = b * N (N^2 - 1) / 6, updated per reading in O(1):

    T' = T + (N-1) x_0 - 2 (S - x_0) + (N-1) x_new,   S' = S - x_0 + x_new   (S = sum x)

T does not depend on an offset in x, so the ring holds x minus a reference that moves to
the newest reading when it drifts past 2**17 counts: |x| <= 2**18 and N <= 64 keep |T|
under 2**29 (a small int on a 32-bit port) and nothing is allocated per reading.

Noise (white, sigma counts per reading, rate f readings/s):
    sigma_rate = sigma * f * sqrt(12 / (N (N^2 - 1)))  counts/s
Delay: the slope estimate of a ramp is the ramp's rate (N-1)/2 readings ago (its centre),
so a step in the rate reaches half its new value (N-1)/2 readings later and the whole of it
N-1 readings later; plus the conversion latency (one reading period on an HX711).

The decision compares |T| to thresholds made once at the command (from N/s with the board's
load calibration and the load stream's rate at that moment): derate when |T| > on, restore
when |T| < off (off < on: hysteresis). A reading the board cannot trust (glitch, not
ready, saturated) derates (cause sensor_fault) and refills the window before judging again.
Each change is an EV_DERATE event (index 1 derated / 0 restored, value the rate estimate in
load counts/s); the elec stream's state has ELEC_DERATED while a derated current flows.
"""

from array import array

from micropython import const

from protocol import defs

MAX_WINDOW = const(64)
MIN_WINDOW = const(3)
FULL = const(1024)  # the scale is q / 1024
_BAD = const(0x07)  # LOAD_GLITCH | LOAD_NOT_READY | LOAD_SATURATED
_REBASE = const(0x20000)  # 2**17 counts from the reference: move the reference
_CLAMP = const(0x40000)  # 2**18


def window_d(n):
    """N (N^2 - 1) / 6: T = slope (counts per reading) * window_d(N); always an integer
    ((N-1) N (N+1) holds a factor 2 and a factor 3)."""
    return (n - 1) * n * (n + 1) // 6


class Derate:
    def __init__(self):
        self.ring = array("i", range(MAX_WINDOW))  # the one buffer, made at arming
        self.armed = False
        self.n = MIN_WINDOW
        self.on_thr = 0
        self.off_thr = 0
        self.q = FULL  # the scale applied while derated
        self.sps = 1  # load readings per second at the command (for the event's value)
        self.ref = 0
        self.head = 0  # oldest entry once full; next write while filling
        self.fill = 0
        self.s = 0
        self.t = 0
        self.derated = False

    def arm(self, n, on_thr, off_thr, q, sps):
        self.n = n
        self.on_thr = on_thr
        self.off_thr = off_thr
        self.q = q
        self.sps = sps
        self.fill = 0
        self.head = 0
        self.derated = False
        self.armed = True

    def disarm(self, wfm):
        if self.derated:
            self.derated = False
            wfm.set_scale(FULL)
        self.armed = False

    def _sums(self):
        """S and T of the full window from scratch (the reference moved, or it just
        filled): a loop of N, not per reading."""
        n = self.n
        r = self.ring
        s = 0
        t = 0
        j = self.head
        for k in range(n):
            x = r[j]
            s += x
            t += (2 * k - n + 1) * x
            j += 1
            if j == n:
                j = 0
        self.s = s
        self.t = t

    def add(self, counts):
        """One good reading; True once the window is full (T valid)."""
        n = self.n
        r = self.ring
        if self.fill == 0:
            self.ref = counts
        x = counts - self.ref
        if x > _REBASE or x < -_REBASE:
            self.ref = counts
            for j in range(self.fill):
                y = r[j] - x
                r[j] = _CLAMP if y > _CLAMP else (-_CLAMP if y < -_CLAMP else y)
            x = 0
            if self.fill == n:
                self._sums()
        if self.fill < n:
            r[self.fill] = x
            self.fill += 1
            if self.fill < n:
                return False
            self.head = 0
            self._sums()
            return True
        h = self.head
        x0 = r[h]
        self.t = self.t + (n - 1) * (x0 + x) - 2 * (self.s - x0)
        self.s = self.s - x0 + x
        r[h] = x
        h += 1
        self.head = 0 if h == n else h
        return True

    def rate_cps(self):
        """The estimate in load counts per second (an int: the event's value)."""
        d = window_d(self.n)
        t = self.t
        neg = t < 0
        if neg:
            t = -t
        v = (t // d) * self.sps + ((t % d) * self.sps) // d
        return -v if neg else v

    def step(self, wfm, smp):
        """The app loop's hook, every pass: judge a fresh load reading."""
        if not self.armed or not smp.fresh & 1:
            return
        if smp.load_status & _BAD:
            self.fill = 0
            if not self.derated:
                self._change(wfm, True, defs.CAUSE_SENSOR_FAULT, smp.load_counts)
            return
        if not self.add(smp.load_counts):
            return
        t = self.t
        if t < 0:
            t = -t
        if self.derated:
            if t < self.off_thr:
                self._change(wfm, False, defs.CAUSE_PRESSURE_RATE, self.rate_cps())
        elif t > self.on_thr:
            self._change(wfm, True, defs.CAUSE_PRESSURE_RATE, self.rate_cps())

    def _change(self, wfm, derated, cause, value):
        self.derated = derated
        wfm.set_scale(self.q if derated else FULL)
        wfm._event(defs.EV_DERATE, cause, 1 if derated else 0, value)
