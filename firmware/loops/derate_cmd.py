# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""SET_DERATE: validate the derating against the board's limits (refused with the field and
the allowed range), turn the rates into thresholds on the estimator's integer sum once, arm.

Allowed: action 0 (off) or 1 (on); window_n MIN_WINDOW..`derate_max_window` (default and at
most 64) load readings; 0 < limit_n_per_s <= `max_force_rate_n_per_s` (default 10000 N/s);
0 <= resume_n_per_s < limit_n_per_s; `min_derate_scale` (default 0) <= scale < 1. Needs a
fitted load cell with a calibration (load_n_per_count). The thresholds use the load stream's
rate at this command: send it again after changing that rate.

signal 1 (defs.DERATE_STRAIN) judges the FBG strain instead (firmware/loops/strain_signal.py):
grating, ref_grating (255: none) and pm_per_ue (0: the calibration's fbg_pm_per_ue) as for
the adaptive rest; 0 < limit_ue_per_s <= `max_strain_rate_ue_per_s` (default 1e5 ue/s),
0 <= resume_ue_per_s < limit_ue_per_s; window_n FBG readings; the *_n_per_s fields are unused
(ACKed as 0). A command in the older layout (5 fields) is a load-cell derating."""

from firmware.commands import Refuse, check_range
from firmware.loops.derate import FULL, MAX_WINDOW, MIN_WINDOW, Derate, window_d
from protocol import defs

_LOAD = 0
_FBG = 1
_OFF = (0, 0, 0.0, 0.0, 1.0, 0, 0, 0, 0.0, 0.0, 0.0)
_TMAX = 0x1FFFFFFF  # |T| stays under 2**29: a threshold above it never trips


def _threshold(n_per_s, nps, sps, d):
    t = n_per_s / abs(nps) / sps * d
    return _TMAX if t >= _TMAX else int(t)


def _limits(name, limit, resume, rmax, unit):
    lname = "limit_" + name
    rname = "resume_" + name
    check_range(lname, limit, 0.0, rmax, unit)
    if not limit > 0:
        raise Refuse(defs.NACK_OUT_OF_RANGE, "%s=%g %s must be above 0" % (lname, limit, unit))
    check_range(rname, resume, 0.0, limit, unit)
    if resume == limit:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "%s=%g %s must be below %s=%g %s" % (rname, resume, unit, lname, limit, unit),
        )


def set_derate(app, a):
    if len(a) < len(_OFF):  # the older layout (applied directly, as tests do)
        a = tuple(a) + _OFF[len(a) :]
    action, n, limit, resume, scale, signal, g, ref, pm, limit_e, resume_e = a
    check_range("action", action, 0, 1)
    if action == 0:
        if app.derate is not None:
            app.derate.disarm(app.waveform)
        return _OFF
    check_range("signal", signal, 0, 1)
    lim = app.limits
    smp = app.sampler
    wmax = min(int(lim.get("derate_max_window", MAX_WINDOW)), MAX_WINDOW)
    strain = None
    if signal == defs.DERATE_STRAIN:
        from firmware.loops.strain_signal import strain_from

        check_range("window_n", n, MIN_WINDOW, wmax, "readings")
        _limits("ue_per_s", limit_e, resume_e, lim.get("max_strain_rate_ue_per_s", 1e5), "ue/s")
        strain, fm_per_ue, pm = strain_from(app, "set_derate", g, ref, pm)
        per_unit = 1.0 / fm_per_ue  # microstrain per fm
        stream = _FBG
        limit = resume = 0.0
    else:
        nps = app.calib.get("load_n_per_count", 0.0)
        if not smp.fitted[_LOAD] or not nps:
            raise Refuse(defs.NACK_UNSUPPORTED, "set_derate: no calibrated load cell on this board")
        check_range("window_n", n, MIN_WINDOW, wmax, "readings")
        _limits("n_per_s", limit, resume, lim.get("max_force_rate_n_per_s", 10000.0), "N/s")
        per_unit = nps
        stream = _LOAD
        g = ref = 0
        pm = limit_e = resume_e = 0.0
    smin = lim.get("min_derate_scale", 0.0)
    check_range("scale", scale, smin, 1.0)
    q = int(scale * FULL + 0.5)
    if q >= FULL:
        raise Refuse(defs.NACK_OUT_OF_RANGE, "scale=%g must be below 1 (a derating)" % scale)
    sps = int(smp.rate_hz(stream) + 0.5)
    if sps < 1:
        sps = 1
    d = window_d(n)
    if strain is None:
        on = _threshold(limit, per_unit, sps, d)
        off = _threshold(resume, per_unit, sps, d)
    else:
        on = _threshold(limit_e, per_unit, sps, d)
        off = _threshold(resume_e, per_unit, sps, d)
    if app.derate is None:  # made on first use: boards without it keep the heap
        app.derate = Derate()
    dr = app.derate
    dr.disarm(app.waveform)
    dr.arm(n, on, off, q, sps, strain)
    return (1, n, limit, resume, q / FULL, signal, g, ref, pm, limit_e, resume_e)
