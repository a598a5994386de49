# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""SET_DERATE: validate the derating against the board's limits (refused with the field and
the allowed range), turn the rates into thresholds on the estimator's integer sum once, arm.

Allowed: action 0 (off) or 1 (on); window_n MIN_WINDOW..`derate_max_window` (default and at
most 64) load readings; 0 < limit_n_per_s <= `max_force_rate_n_per_s` (default 10000 N/s);
0 <= resume_n_per_s < limit_n_per_s; `min_derate_scale` (default 0) <= scale < 1. Needs a
fitted load cell with a calibration (load_n_per_count). The thresholds use the load stream's
rate at this command: send it again after changing that rate."""

from firmware.commands import Refuse, check_range
from firmware.loops.derate import FULL, MAX_WINDOW, MIN_WINDOW, Derate, window_d
from protocol import defs

_LOAD = 0
_TMAX = 0x1FFFFFFF  # |T| stays under 2**29: a threshold above it never trips


def _threshold(n_per_s, nps, sps, d):
    t = n_per_s / abs(nps) / sps * d
    return _TMAX if t >= _TMAX else int(t)


def set_derate(app, a):
    action, n, limit, resume, scale = a
    check_range("action", action, 0, 1)
    if action == 0:
        if app.derate is not None:
            app.derate.disarm(app.waveform)
        return (0, 0, 0.0, 0.0, 1.0)
    lim = app.limits
    nps = app.calib.get("load_n_per_count", 0.0)
    smp = app.sampler
    if not smp.fitted[_LOAD] or not nps:
        raise Refuse(defs.NACK_UNSUPPORTED, "set_derate: no calibrated load cell on this board")
    wmax = min(int(lim.get("derate_max_window", MAX_WINDOW)), MAX_WINDOW)
    check_range("window_n", n, MIN_WINDOW, wmax, "readings")
    rmax = lim.get("max_force_rate_n_per_s", 10000.0)
    check_range("limit_n_per_s", limit, 0.0, rmax, "N/s")
    if not limit > 0:
        raise Refuse(defs.NACK_OUT_OF_RANGE, "limit_n_per_s=%g N/s must be above 0" % limit)
    check_range("resume_n_per_s", resume, 0.0, limit, "N/s")
    if resume == limit:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "resume_n_per_s=%g N/s must be below limit_n_per_s=%g N/s" % (resume, limit),
        )
    smin = lim.get("min_derate_scale", 0.0)
    check_range("scale", scale, smin, 1.0)
    q = int(scale * FULL + 0.5)
    if q >= FULL:
        raise Refuse(defs.NACK_OUT_OF_RANGE, "scale=%g must be below 1 (a derating)" % scale)
    sps = int(smp.rate_hz(_LOAD) + 0.5)
    if sps < 1:
        sps = 1
    d = window_d(n)
    on = _threshold(limit, nps, sps, d)
    off = _threshold(resume, nps, sps, d)
    if app.derate is None:  # made on first use: boards without it keep the heap
        app.derate = Derate()
    dr = app.derate
    dr.disarm(app.waveform)
    dr.arm(n, on, off, q, sps)
    return (1, n, limit, resume, q / FULL)
