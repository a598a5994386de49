"""Least-squares rate estimator over a sliding window of integer readings (issue 14): the
derating judges the load cell's dF/dt or the FBG's de/dt with it (firmware/loops/derate.py).

The slope of the last N readings is the optimal linear estimator of a ramp in white noise:

    b = sum((k - (N-1)/2) x_k) / sum((k - (N-1)/2)^2),   k = 0..N-1 (oldest first)

kept as T = sum((2k - N + 1) x_k) = b * N (N^2 - 1) / 6, updated per reading in O(1):

    T' = T + (N-1) x_0 - 2 (S - x_0) + (N-1) x_new,   S' = S - x_0 + x_new   (S = sum x)

T does not depend on an offset in x, so the ring holds x minus a reference that moves to
the newest reading when it drifts past 2**17 counts: |x| <= 2**18 and N <= 64 keep |T|
under 2**29 (a small int on a 32-bit port) and nothing is allocated per reading.

Noise (white, sigma per reading, rate f readings/s):
    sigma_rate = sigma * f * sqrt(12 / (N (N^2 - 1)))  per second
Delay: the slope estimate of a ramp is the ramp's rate (N-1)/2 readings ago (its centre),
so a step in the rate reaches half its new value (N-1)/2 readings later and the whole of it
N-1 readings later.
"""

from array import array

from micropython import const

MAX_WINDOW = const(64)
MIN_WINDOW = const(3)
_REBASE = const(0x20000)  # 2**17 from the reference: move the reference
_CLAMP = const(0x40000)  # 2**18


def window_d(n):
    """N (N^2 - 1) / 6: T = slope (counts per reading) * window_d(N); always an integer
    ((N-1) N (N+1) holds a factor 2 and a factor 3)."""
    return (n - 1) * n * (n + 1) // 6


class Slope:
    def __init__(self):
        self.ring = array("i", range(MAX_WINDOW))  # the one buffer, made once
        self.n = MIN_WINDOW
        self.sps = 1  # readings per second (for rate_cps)
        self.ref = 0
        self.head = 0  # oldest entry once full; next write while filling
        self.fill = 0
        self.s = 0
        self.t = 0

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
        """The estimate in counts per second (an int: an event's value)."""
        d = window_d(self.n)
        t = self.t
        neg = t < 0
        if neg:
            t = -t
        v = (t // d) * self.sps + ((t % d) * self.sps) // d
        return -v if neg else v
