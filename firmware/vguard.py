"""Voltage guard: extra cell-voltage readings between the elec stream's samples while the
output is on and the voltage is heading for a limit (a cutoff or the safety window).

Why: a cell's voltage can run away at the end of a step (a diffusion-limited interface:
R_ct ~ 1 / (C_max - C_s) grows hyperbolically), from below a 4.2 V cutoff to past a 4.3 V
safety window in well under a second. With the elec stream at 1 Hz, one reading is under
the cutoff and the next is beyond the window: the step latches instead of ending on its
cutoff, and the cell spent up to a second past its limit. Cyclers read faster as a limit
nears; so does this board, without changing the stream's rate (guard readings are not
recorded: they feed the cutoffs, the safety checks and the charge count).

When the next reading is due (all integer arithmetic, small ints on every port):
- within NEAR_MV of a limit: every NEAR_US;
- else, at the last two readings' rate, LOOKAHEAD readings before the limit would be
  reached (a hyperbolic run-away outpaces any linear forecast, so the forecast is
  repeated at every reading and shrinks as the rate grows);
- never more often than every MIN_US, and only when sooner than the stream's own sample.
A flat voltage far from every limit costs nothing: no guard reading at all.
"""

from micropython import const

NEAR_MV = const(50)
NEAR_US = const(20000)
LOOKAHEAD = const(8)
MIN_US = const(10000)


class VoltageGuard:
    def __init__(self, calib):
        self.near_raw = int(NEAR_MV * 0.001 / abs(calib["volts_per_count"])) + 1
        self.active = False  # a guard reading is scheduled at due_at
        self.due_at = 0
        self.last_v = 0
        self.has_last = False  # last_v is a reading with the output on
        self.reads = 0  # guard readings taken (wraps at 2**30)

    def due(self, clock, now):
        return self.active and clock.ticks_diff(now, self.due_at) >= 0

    def taken(self):
        self.active = False
        self.reads = self.reads + 1 if self.reads < 0x3FFFFFFF else 0

    def idle(self):
        """The output is off (or no waveform runs): nothing to guard, no rate to keep."""
        self.active = False
        self.has_last = False

    def plan(self, clock, now, v, dt_us, lo, hi, period_us):
        """Schedule the next guard reading after reading `v` (raw counts, output on), taken
        `dt_us` after the previous reading; `lo`/`hi` the nearest limits in raw counts (None:
        none on that side); `period_us` the elec stream's period."""
        margin = -1  # to the nearest limit; -1: no limit, or already past one
        if hi is not None:
            margin = hi - v
        if lo is not None and (hi is None or v - lo < margin):
            margin = v - lo
        last = self.last_v
        had = self.has_last
        self.last_v = v
        self.has_last = True
        self.active = False
        if margin < 0:  # past a limit, the checks acted on it
            return
        iv = period_us
        if margin <= self.near_raw:
            iv = NEAR_US
        if had and dt_us > 0:
            dv = v - last
            if dv < 0:
                dv = -dv
            if dv > 0:
                q = margin // dv  # previous intervals left before the limit at this rate
                step = dt_us // LOOKAHEAD
                if step < 1:
                    step = 1
                if q < period_us // step:  # step * q stays below the period: a small int
                    r = step * q
                    if r < iv:
                        iv = r
        if iv < MIN_US:
            iv = MIN_US
        if iv < period_us:
            self.due_at = clock.ticks_add(now, iv)
            self.active = True
