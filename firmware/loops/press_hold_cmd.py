# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""SET_PRESS_HOLD: check the hold against the board's limits (refused with the field and the
allowed range), turn MPa, um and seconds into the loop's integers once, arm.

Needs a press actuator (hal.press, limits `press_um_per_step`, `press_max_rate_sps`,
`press_min_steps`/`press_max_steps`) and a calibrated load cell. Allowed:
- action 0 (off: the actuator stops where it is) or 1;
- 0 < setpoint_mpa <= min(`press_max_setpoint_mpa`, max_force_n / stack area);
- stack_area_m2 in [min_area_m2, max_area_m2];
- kp_um_per_mpa in [0, `press_max_kp_um_per_mpa`], ki_um_per_mpa_s in
  [0, `press_max_ki_um_per_mpa_s`], not both 0 unless both are (then the board's
  `press_default_kp_um_per_mpa` / `press_default_ki_um_per_mpa_s`);
- max_error_mpa in [0, `press_max_error_mpa`], max_travel_um in [0, `press_max_travel_um`],
  rate_steps_per_s in [0, `press_max_rate_sps`], runaway_us in [0, `press_max_runaway_s`]
  (0: the board's value; runaway 0: `press_runaway_s`, default 2 s).
The gains use the load stream's rate at this command: send it again after changing it.
"""

from firmware.commands import Refuse, check_range
from firmware.loops.press_hold import PressHold
from protocol import defs

_LOAD = 0
_M29 = 0x1FFFFFFF


def _fixed(kp_spc, ki_spc):
    """(kp_q, ki_q, shift, emax): the larger gain with 12 bits, e clamped so that
    gain * e stays under 2**29."""
    m = kp_spc if kp_spc > ki_spc else ki_spc
    s = 0
    while s < 28 and m * (1 << (s + 1)) < 4096:
        s += 1
    kp_q = int(kp_spc * (1 << s) + 0.5)
    ki_q = int(ki_spc * (1 << s) + 0.5)
    if ki_spc > 0 and ki_q == 0:
        ki_q = 1
    g = kp_q if kp_q > ki_q else ki_q
    return kp_q, ki_q, s, _M29 // (g if g > 0 else 1)


def set_press_hold(app, a):
    action, p_set, area, kp, ki, err_mpa, travel_um, rate, runaway_us = a
    check_range("action", action, 0, 1)
    now = app.dc.update()
    ph = app.press_hold
    if action == 0:
        if ph is not None:
            ph.disarm(app, now, defs.CAUSE_HOST_STOP)
        return (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    lim = app.limits
    stepper = getattr(app.hal, "press", None)
    upm = lim.get("press_um_per_step", 0.0)
    if stepper is None or not upm:
        raise Refuse(defs.NACK_UNSUPPORTED, "set_press_hold: no press actuator on this board")
    nps = app.calib.get("load_n_per_count", 0.0)
    if not app.sampler.fitted[_LOAD] or not nps:
        raise Refuse(defs.NACK_UNSUPPORTED, "set_press_hold: no calibrated load cell on this board")
    if app.safety.latched:
        raise Refuse(defs.NACK_LATCHED, "set_press_hold: latched stop: send clear_fault first")
    check_range("stack_area_m2", area, lim["min_area_m2"], lim["max_area_m2"], "m2")
    p_hi = lim.get("press_max_setpoint_mpa", 100.0)
    f_hi = lim.get("max_force_n", 0.0)
    if f_hi and f_hi / area * 1e-6 < p_hi:
        p_hi = f_hi / area * 1e-6
    check_range("setpoint_mpa", p_set, 0.0, p_hi, "MPa")
    if not p_set > 0:
        raise Refuse(defs.NACK_OUT_OF_RANGE, "setpoint_mpa=%g MPa must be above 0" % p_set)
    check_range("kp_um_per_mpa", kp, 0.0, lim.get("press_max_kp_um_per_mpa", 1000.0), "um/MPa")
    check_range(
        "ki_um_per_mpa_s", ki, 0.0, lim.get("press_max_ki_um_per_mpa_s", 1000.0), "um/MPa/s"
    )
    if kp == 0 and ki == 0:
        kp = lim.get("press_default_kp_um_per_mpa", 0.0)
        ki = lim.get("press_default_ki_um_per_mpa_s", 0.0)
        if not (kp > 0 or ki > 0):
            raise Refuse(
                defs.NACK_NOT_CONFIGURED,
                "kp_um_per_mpa, ki_um_per_mpa_s: 0 asks for the board's defaults, and it has none",
            )
    emx = lim.get("press_max_error_mpa", 1.0)
    check_range("max_error_mpa", err_mpa, 0.0, emx, "MPa")
    err_mpa = err_mpa or emx
    tmx = lim.get("press_max_travel_um", 1000.0)
    check_range("max_travel_um", travel_um, 0.0, tmx, "um")
    travel_um = travel_um or tmx
    rmx = lim["press_max_rate_sps"]
    check_range("rate_steps_per_s", rate, 0.0, rmx, "steps/s")
    rate = int(rate or rmx)
    if rate < 1:
        rate = 1
    rwx = int(lim.get("press_max_runaway_s", 300.0) * 1000) * 1000
    if runaway_us < 0 or runaway_us > rwx:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "runaway_us=%d us outside allowed range [0, %d] us" % (runaway_us, rwx),
        )
    runaway_us = runaway_us or int(lim.get("press_runaway_s", 2.0) * 1000) * 1000
    smp = app.sampler
    sps = int(smp.rate_hz(_LOAD) + 0.5)
    if sps < 1:
        sps = 1
    cpm = 1e6 * area / abs(nps)  # load counts per MPa
    gains = _fixed(kp / upm / cpm, ki / upm / cpm / sps)
    pos = stepper.position(now)
    mt = int(travel_um / upm)
    lo = pos - mt
    hi = pos + mt
    a_lo = int(lim.get("press_min_steps", -(1 << 28)))
    a_hi = int(lim.get("press_max_steps", 1 << 28))
    if pos < a_lo or pos > a_hi:
        raise Refuse(
            defs.NACK_BAD_STATE,
            "set_press_hold: the press is at %d steps, outside its travel [%d, %d] steps"
            % (pos, a_lo, a_hi),
        )
    lo = a_lo if lo < a_lo else lo
    hi = a_hi if hi > a_hi else hi
    max_step = rate // sps
    if max_step < 1:
        max_step = 1
    set_c = int((p_set * 1e6 * area - app.calib.get("load_offset_n", 0.0)) / nps)
    err_lim = int(err_mpa * cpm)
    if err_lim > 1 << 28:
        err_lim = 1 << 28
    if ph is None:  # made on first use: boards without a press keep the heap
        ph = app.press_hold = PressHold(stepper)
    else:
        ph.disarm(app, now, defs.CAUSE_HOST_STOP)
    ph.arm(app, now, set_c, nps < 0, gains, err_lim, runaway_us, (pos, lo, hi), max_step, rate)
    app.event(defs.EV_PRESS_HOLD, defs.CAUSE_NONE, 1, p_set)
    return (1, p_set, area, kp, ki, err_mpa, travel_um, float(rate), runaway_us)
