# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""Validation of the adaptive-rest commands (ADAPTIVE_REST, ADAPTIVE_PULSES): every field
checked against the board's limits, refused with the field's name and allowed range, then
turned into a waveform Plan with a configured Settle (firmware/loops/adaptive_rest.py).

Board limits (optional keys of DEFINITION["limits"]):
    min_settle_dvdt_v_per_s   lowest dV/dt threshold (default 1e-6 V/s)
    max_settle_dvdt_v_per_s   highest (default 10 V/s)
The estimator window must hold 2..256 voltage readings at the elec stream's current rate;
min_rest and hold must be below 2**28 us (268 s: one ticks_diff span on a board).

Strain criterion (appended fields, defs.STRAIN_SETTLE_FIELDS; a command in the older layout
has strain_mode 0: off): strain_mode 0..3; grating and ref_grating (255: none) among the
FBG's gratings; pm_per_ue in [min_fbg_pm_per_ue, max_fbg_pm_per_ue] (defaults 0.1..10; 0:
the calibration's fbg_pm_per_ue); dedt_ue_per_s in [min_settle_dedt_ue_per_s,
max_settle_dedt_ue_per_s] (defaults 1e-4..1e4 microstrain/s); the strain window
(strain_window_us, 0: window_us) must hold 2..256 FBG readings at the FBG stream's rate.
"""

from firmware import waveform as wf
from firmware.commands import Refuse, check_range, s_to_us
from firmware.loops.adaptive_rest import MAX_BLOCK, MIN_BLOCK, Settle, block_threshold
from protocol import defs

_ELEC = 2
_FBG = 1
_NO_STRAIN = (0, 0, 0, 0.0, 0.0, 0)
_SPAN_US = 0x0FFFFFFF  # 2**28 - 1


def _us_range(name, us, lo, hi):
    if us < lo or us > hi:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "%s=%d us outside allowed range [%d, %d] us" % (name, us, lo, hi),
        )


def _blocks(name, window_us, period, what):
    """Readings per block for a window of window_us at a stream period; refused outside
    MIN_BLOCK..MAX_BLOCK naming the field."""
    k = (window_us + period // 2) // period
    if k < MIN_BLOCK or k > MAX_BLOCK:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "%s=%d us outside allowed range [%d, %d] us (%d..%d %s readings at the stream's "
            "%d us period)"
            % (
                name,
                window_us,
                MIN_BLOCK * period,
                MAX_BLOCK * period,
                MIN_BLOCK,
                MAX_BLOCK,
                what,
                period,
            ),
        )
    return k


def strain_settle(app, st, window_us, mode, g, ref, dedt, pm, strain_window_us):
    """Add the strain criterion to Settle `st`; return its applied fields."""
    check_range("strain_mode", mode, defs.STRAIN_OFF, defs.STRAIN_ONLY)
    if mode == defs.STRAIN_OFF:
        return _NO_STRAIN
    from firmware.loops.strain_signal import strain_from

    lim = app.limits
    check_range(
        "dedt_ue_per_s",
        dedt,
        lim.get("min_settle_dedt_ue_per_s", 1e-4),
        lim.get("max_settle_dedt_ue_per_s", 1e4),
        "ue/s",
    )
    sig, fm_per_ue, pm = strain_from(app, "adaptive rest", g, ref, pm)
    w = strain_window_us if strain_window_us else window_us
    period = app.sampler.period_us[_FBG]
    k = _blocks("strain_window_us", w, period, "FBG")
    st.configure_strain(mode, k, block_threshold(dedt, k, period, 1.0 / fm_per_ue), sig)
    return (mode, g, ref, dedt, pm, strain_window_us)


def settle_from(app, min_us, max_us, hold_us, dvdt, window_us):
    """A configured Settle for these fields (ints in us, dvdt in V/s) after range checks."""
    lim = app.limits
    smp = app.sampler
    if not smp.fitted[_ELEC]:
        raise Refuse(defs.NACK_UNSUPPORTED, "adaptive rest needs the elec stream (not fitted)")
    _us_range(
        "max_rest_us",
        max_us,
        s_to_us(lim.get("min_pulse_s", 0.001)),
        s_to_us(lim["max_duration_s"]),
    )
    hi = _SPAN_US if max_us > _SPAN_US else max_us
    _us_range("min_rest_us", min_us, 0, hi)
    _us_range("hold_us", hold_us, 0, hi)
    check_range(
        "dvdt_v_per_s",
        dvdt,
        lim.get("min_settle_dvdt_v_per_s", 1e-6),
        lim.get("max_settle_dvdt_v_per_s", 10.0),
        "V/s",
    )
    period = smp.period_us[_ELEC]
    k = _blocks("window_us", window_us, period, "voltage")
    st = Settle(app.clock)
    st.configure(k, block_threshold(dvdt, k, period, app.calib["volts_per_count"]), min_us, hold_us)
    return st


def plan_adaptive(cmds, cmd_id, a):
    """(Plan, applied values) for ADAPTIVE_REST / ADAPTIVE_PULSES; raises Refuse."""
    app = cmds.app
    p = wf.Plan()
    p.cmd_id = cmd_id
    if cmd_id == defs.CMD_ADAPTIVE_REST:
        if len(a) < 11:  # the older layout (applied directly, as tests do)
            a = tuple(a) + _NO_STRAIN[len(a) - 5 :]
        p.kind = wf.REST
        p.settle = settle_from(app, *a[:5])
        e = strain_settle(app, p.settle, a[4], *a[5:11])
        p.t_on = wf.split_us(a[1])
        return p, tuple(a[:5]) + e
    # adaptive_pulses: unit, amplitude, t_on_us, count, settle fields, cutoffs, strain fields
    if len(a) < 19:
        a = tuple(a) + _NO_STRAIN[len(a) - 13 :]
    unit = a[0]
    amps, back = cmds._amps(unit, "amplitude", a[1])
    p.kind = wf.PULSE
    p.t_on = cmds._time("t_on_us", a[2], app.limits.get("min_pulse_s", 0.001))
    check_range("count", a[3], 1, 65535)
    p.count = a[3]
    p.settle = settle_from(app, *a[4:9])
    e = strain_settle(app, p.settle, a[8], *a[13:19])
    p.t_off = wf.split_us(a[5])
    p.code = cmds._quantise(amps)
    p.amps = app.source.code_to_amps(p.code)
    cmds._cutoffs(p, *a[9:13])
    return p, (unit, p.amps * back) + tuple(a[2:13]) + e
