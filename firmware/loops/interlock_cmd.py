# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""SET_INTERLOCK: validate the stack-force window against the board's limits (refused with
the field and the allowed range), convert it to load-cell counts once, arm the interlock.

Allowed: action 0 (off), 1 (suspend), 2 (end); -max_force_n <= f_min_n < f_max_n <=
max_force_n; 0 <= hysteresis_n < (f_max_n - f_min_n) / 2. Needs a fitted load cell with a
calibration (load_n_per_count)."""

from firmware.commands import Refuse, check_range
from firmware.loops.interlock import OFF, Interlock
from protocol import defs

_LOAD = 0


def set_interlock(app, a):
    action, f_lo, f_hi, h = a
    lim = app.limits
    cal = app.calib
    check_range("action", action, 0, 2)
    if action == OFF:
        if app.interlock is not None:
            app.interlock.arm(OFF, 0, 0, 0)
        return (0, 0.0, 0.0, 0.0)
    nps = cal.get("load_n_per_count", 0.0)
    if not app.sampler.fitted[_LOAD] or not nps:
        raise Refuse(defs.NACK_UNSUPPORTED, "set_interlock: no calibrated load cell on this board")
    fmax = lim.get("max_force_n", 5000.0)
    check_range("f_min_n", f_lo, -fmax, fmax, "N")
    check_range("f_max_n", f_hi, -fmax, fmax, "N")
    if not f_lo < f_hi:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE, "f_min_n=%g N must be below f_max_n=%g N" % (f_lo, f_hi)
        )
    check_range("hysteresis_n", h, 0.0, (f_hi - f_lo) / 2, "N")
    if h * 2 == f_hi - f_lo:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "hysteresis_n=%g N must be below half the window (%g N)" % (h, (f_hi - f_lo) / 2),
        )
    off = cal.get("load_offset_n", 0.0)
    a_c = (f_lo - off) / nps
    b_c = (f_hi - off) / nps
    lo = int(min(a_c, b_c) + 0.999999)  # inside stays inside after rounding
    hi = int(max(a_c, b_c))
    hc = int(h / abs(nps))
    if app.interlock is None:  # made on first use: boards without it keep the heap
        app.interlock = Interlock()
    app.interlock.arm(action, lo, hi, hc)
    return (action, f_lo, f_hi, h)
