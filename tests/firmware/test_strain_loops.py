# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""FBG strain-rate criteria on the board (issue 14): the adaptive rest's strain criterion
(strain only, both, either) against a known relaxation, temperature compensation with the
reference grating, the derating on de/dt, every refusal naming its field and range, the older
command layouts, and no allocation while they run (on both VMs: the 32-bit port too).

The fake HAL's interrogator is analog (FbgAnalog): grating g reads 1520 nm + 10 nm g + raw x
300 fm, so the test sets the strain through the raw counts: 1 count = 300 fm = 0.25
microstrain at the 1.2 pm/microstrain the commands give."""

import math

from protocol import defs

PM_PER_UE = 1.2
FM_PER_COUNT = 300.0

# v(t), e(t) (microstrain, sensing grating 0) and th(t) (fm of thermal shift on grating 0;
# grating 1, the reference, shifts by th * lambda_1 / lambda_0) are set every 5 ms of device
# time after the command; returns the ACK and the rest's events relative to its start.
RELAX = """
import math
from rig import Rig
from protocol import defs
r = Rig(rates=(10, 100, 100, 1), max_sleep_us=10000)
L0 = 1520000000 + 30000 * 300
L1 = 1530000000 + 31000 * 300
def world(t, v, e, th):
    r.hal.cell.v_override = 3.0 + v(t)
    r.hal.fbg_raw[0] = 30000 + int(round((e(t) * %r * 1000 + th(t)) / %r))
    r.hal.fbg_raw[1] = 31000 + int(round(th(t) * L1 / L0 / %r))
def relax(cmd, args, v, e, th=lambda t: 0.0, limit_s=40.0):
    world(0.0, v, e, th)
    r.run_s(0.05)
    ack = r.cmd(cmd, args)
    t0 = r.hal.clock.ticks_us()
    t = 0.0
    while r.app.waveform.running and t < limit_s:
        t = r.hal.clock.ticks_diff(r.hal.clock.ticks_us(), t0) / 1e6
        world(t, v, e, th)
        r.run_s(0.005)
    ev = r.events()
    k = max(i for i, x in enumerate(ev) if x[1] == defs.EV_WAVEFORM_START)
    out = [(((x[0] - ev[k][0]) & 0xFFFFFFFF), x[1], x[2], x[3], x[4]) for x in ev[k:]
           if x[1] in (defs.EV_REST_END, defs.EV_WAVEFORM_END, defs.EV_EDGE)]
    return {"ack": ack, "ev": out}
""" % (PM_PER_UE, FM_PER_COUNT, FM_PER_COUNT)


def _rest(min_s, max_s, hold_s, dvdt, window_s, mode, g=0, ref=255, dedt=2.0, sw_s=0.5):
    return "(%d, %d, %d, %r, %d, %d, %d, %d, %r, %r, %d)" % (
        min_s * 1e6,
        max_s * 1e6,
        hold_s * 1e6,
        dvdt,
        window_s * 1e6,
        mode,
        g,
        ref,
        dedt,
        PM_PER_UE,
        sw_s * 1e6,
    )


def _t_true(a, tau, thr):
    """When |d/dt a exp(-t / tau)| falls to thr."""
    return tau * math.log(a / (tau * thr))


# a strain relaxation of 100 microstrain, tau 2 s: |de/dt| = 2 microstrain/s at 6.44 s; a
# voltage relaxation of 50 mV, tau 1 s: |dV/dt| = 5 mV/s at 2.30 s
E_A, E_TAU, E_THR = 100.0, 2.0, 2.0
V_A, V_TAU, V_THR = 0.05, 1.0, 5e-3
HOLD, W = 0.5, 0.5
E_EXP = "lambda t: %r * math.exp(-t / %r)" % (E_A, E_TAU)
V_EXP = "lambda t: %r * math.exp(-t / %r)" % (V_A, V_TAU)


def _one(r):
    ends = [e for e in r["ev"] if e[1] == defs.EV_REST_END]
    assert len(ends) == 1, r["ev"]
    return ends[0]


def test_strain_only_rest_ends_on_the_strain_relaxation_not_the_voltage(mp):
    """The voltage is flat from the start (its criterion holds at once) but the rest goes on
    until |de/dt| fell below its threshold and stayed there for the hold."""
    code = RELAX + "emit(relax(defs.CMD_ADAPTIVE_REST, %s, lambda t: 0.0, %s))" % (
        _rest(0, 30, HOLD, V_THR, 0.2, defs.STRAIN_ONLY, dedt=E_THR),
        E_EXP,
    )
    (r,) = mp(code)
    assert r["ack"][0] == "ack", r["ack"]
    applied = r["ack"][1]
    assert applied[5:8] == [defs.STRAIN_ONLY, 0, 255] and abs(applied[9] - PM_PER_UE) < 1e-6
    end = _one(r)
    t_true = _t_true(E_A, E_TAU, E_THR)  # 6.44 s
    t_dec = end[0] / 1e6
    assert end[2] == defs.CAUSE_STRAIN_SETTLED
    # the block estimator lags by about one window; hold and block ends round up by < 1 each
    assert t_true + HOLD <= t_dec <= t_true + HOLD + 2 * W + 0.05, (t_true, t_dec)
    assert abs(end[4] - end[0] / 1000) <= 1
    wf_end = [e for e in r["ev"] if e[1] == defs.EV_WAVEFORM_END]
    assert wf_end[0][2] == defs.CAUSE_SETTLED  # the rest step ended settled


def test_both_criteria_wait_for_the_later_and_name_it(mp):
    """Both required: the rest ends once the slower relaxation held too, and the cause names
    it; the voltage slower (tau 4 s) gives `settled`, the strain slower `strain_settled`."""
    slow_v = "lambda t: 0.2 * math.exp(-t / 4.0)"  # 5 mV/s at 4 ln(10) = 9.21 s
    code = RELAX
    code += "emit(relax(defs.CMD_ADAPTIVE_REST, %s, %s, %s))\n" % (
        _rest(0, 30, HOLD, V_THR, W, defs.STRAIN_BOTH, dedt=E_THR),
        V_EXP,
        E_EXP,
    )
    code += "emit(relax(defs.CMD_ADAPTIVE_REST, %s, %s, %s))\n" % (
        _rest(0, 30, HOLD, V_THR, W, defs.STRAIN_BOTH, dedt=E_THR),
        slow_v,
        E_EXP,
    )
    a, b = mp(code)
    ea, eb = _one(a), _one(b)
    t_e = _t_true(E_A, E_TAU, E_THR)
    t_v = _t_true(0.2, 4.0, V_THR)
    assert ea[2] == defs.CAUSE_STRAIN_SETTLED
    assert t_e + HOLD <= ea[0] / 1e6 <= t_e + HOLD + 2 * W + 0.05, ea
    assert eb[2] == defs.CAUSE_SETTLED
    assert t_v + HOLD <= eb[0] / 1e6 <= t_v + HOLD + 2 * W + 0.05, eb


def test_either_criterion_ends_on_the_first(mp):
    code = RELAX + "emit(relax(defs.CMD_ADAPTIVE_REST, %s, %s, %s))\n" % (
        _rest(0, 30, HOLD, V_THR, W, defs.STRAIN_EITHER, dedt=E_THR),
        V_EXP,
        E_EXP,
    )
    (r,) = mp(code)
    end = _one(r)
    t_v = _t_true(V_A, V_TAU, V_THR)  # 2.30 s, before the strain's 6.44 s
    assert end[2] == defs.CAUSE_SETTLED
    assert t_v + HOLD <= end[0] / 1e6 <= t_v + HOLD + 2 * W + 0.05, end


def test_reference_grating_removes_a_temperature_ramp(mp):
    """A thermal drift of 20 pm/s on both gratings (about 2 K/s) on top of the strain
    relaxation: compensated with the reference grating the rest ends on the strain truth;
    uncompensated the drift reads as 17 microstrain/s and the rest runs to its maximum."""
    th = "lambda t: 20000.0 * t"
    code = RELAX
    for ref in (1, 255):
        code += "emit(relax(defs.CMD_ADAPTIVE_REST, %s, lambda t: 0.0, %s, %s))\n" % (
            _rest(0, 12, HOLD, V_THR, W, defs.STRAIN_ONLY, ref=ref, dedt=E_THR),
            E_EXP,
            th,
        )
    comp, raw = mp(code)
    assert comp["ack"][0] == "ack" and comp["ack"][1][7] == 1
    ec, er = _one(comp), _one(raw)
    t_e = _t_true(E_A, E_TAU, E_THR)
    assert ec[2] == defs.CAUSE_STRAIN_SETTLED
    assert t_e + HOLD <= ec[0] / 1e6 <= t_e + HOLD + 2 * W + 0.05, ec
    assert er[2] == defs.CAUSE_DURATION and er[0] == 12_000_000


def test_a_lost_grating_restarts_the_strain_criterion(mp):
    """The sensing grating leaves the interrogator's window (rail) from 1 s to 9 s of a flat
    strain: no strain decision while it is lost; it settles a hold after it is back."""
    lose = "lambda t: 0.0 if (t < 1.0 or t > 9.0) else -7.6e3"  # raw 30000 - 7.6e3 * 4 <= rail
    code = RELAX + "emit(relax(defs.CMD_ADAPTIVE_REST, %s, lambda t: 0.0, %s))\n" % (
        _rest(2.0, 30, HOLD, V_THR, W, defs.STRAIN_ONLY, dedt=E_THR),
        lose,
    )
    (r,) = mp(code)
    end = _one(r)
    assert end[2] == defs.CAUSE_STRAIN_SETTLED
    # back at 9 s: two blocks of 0.5 s to judge again, then the hold
    assert 9.0 + 2 * W + HOLD <= end[0] / 1e6 <= 9.0 + 3 * W + HOLD + 0.05, end


def test_strain_settings_out_of_range_are_refused_naming_the_field(mp):
    bad = {
        "strain_mode": _rest(0, 10, 0.5, 1e-3, 0.2, 4),
        "grating": _rest(0, 10, 0.5, 1e-3, 0.2, 1, g=3),
        "ref_grating": _rest(0, 10, 0.5, 1e-3, 0.2, 1, ref=0),
        "dedt_ue_per_s": _rest(0, 10, 0.5, 1e-3, 0.2, 1, dedt=1e6),
        "strain_window_us": _rest(0, 10, 0.5, 1e-3, 0.2, 1, sw_s=0.01),
        "strain_window_us ": _rest(0, 10, 0.5, 1e-3, 0.2, 1, sw_s=3.0),
    }
    code = RELAX + "out = {}\n"
    for k, a in bad.items():
        code += "out[%r] = r.cmd(defs.CMD_ADAPTIVE_REST, %s)\n" % (k, a)
    # pm_per_ue 50 and 0 (the fake board's calibration has no fbg_pm_per_ue)
    code += "out['pm_per_ue'] = r.cmd(defs.CMD_ADAPTIVE_REST, %s)\n" % _rest(
        0, 10, 0.5, 1e-3, 0.2, 1
    ).replace(repr(PM_PER_UE), "50.0")
    code += "out['pm_per_ue=0'] = r.cmd(defs.CMD_ADAPTIVE_REST, %s)\n" % _rest(
        0, 10, 0.5, 1e-3, 0.2, 1
    ).replace(repr(PM_PER_UE), "0.0")
    code += "out['derate limit_ue_per_s'] = r.cmd(defs.CMD_SET_DERATE, %s)\n" % (
        "(1, 8, 0.0, 0.0, 0.5, 1, 0, 255, 1.2, 0.0, 0.0)",
    )
    code += "out['derate resume_ue_per_s'] = r.cmd(defs.CMD_SET_DERATE, %s)\n" % (
        "(1, 8, 0.0, 0.0, 0.5, 1, 0, 255, 1.2, 5.0, 5.0)",
    )
    code += "out['derate signal'] = r.cmd(defs.CMD_SET_DERATE, %s)\n" % (
        "(1, 8, 5.0, 2.0, 0.5, 2, 0, 255, 1.2, 5.0, 2.0)",
    )
    code += "emit(out)\n"
    (r,) = mp(code)
    nc = r.pop("pm_per_ue=0")
    assert nc[0] == "nack" and nc[1] == defs.NACK_NOT_CONFIGURED and "fbg_pm_per_ue" in nc[2]
    for k, reply in r.items():
        assert reply[0] == "nack" and reply[1] == defs.NACK_OUT_OF_RANGE, (k, reply)
        field = k.split()[-1].strip()
        assert field + "=" in reply[2], (k, reply[2])
        assert "allowed range" in reply[2] or "must be" in reply[2], reply[2]


def test_older_layouts_still_work_and_are_answered_in_kind(mp):
    """A host from before the strain fields sends ADAPTIVE_REST and SET_DERATE in their
    5-field layouts: applied as before (no strain criterion, a load-cell derating), and the
    ACKs carry 5 fields; the new layouts are ACKed with all 11."""
    (r,) = mp(
        RELAX
        + """
out = {}
out["old_rest"] = r.cmd(defs.CMD_ADAPTIVE_REST, (0, 1000000, 100000, 0.01, 100000))
r.run_s(1.5)
out["old_derate"] = r.cmd(defs.CMD_SET_DERATE, (1, 8, 5.0, 2.0, 0.5))
out["new_derate"] = r.cmd(defs.CMD_SET_DERATE, (1, 8, 0.0, 0.0, 0.5, 1, 0, 1, 1.2, 5.0, 2.0))
out["cause"] = r.app.derate.cause
emit(out)
"""
    )
    assert r["old_rest"][0] == "ack" and len(r["old_rest"][1]) == 5
    assert r["old_derate"][0] == "ack" and len(r["old_derate"][1]) == 5
    nd = r["new_derate"]
    assert nd[0] == "ack" and len(nd[1]) == 11 and nd[1][5:8] == [1, 0, 1]
    assert r["cause"] == defs.CAUSE_STRAIN_RATE


DERATE = """
from rig import Rig
from protocol import defs
r = Rig(rates=(10, 100, 100, 1), max_sleep_us=10000)
ack = r.cmd(defs.CMD_SET_DERATE, (1, 16, 0.0, 0.0, 0.5, 1, 0, 255, 1.2, 20.0, 10.0))
c = r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0.0, 0.0, 0.0, 0))
t0 = r.hal.clock.ticks_us()
w0 = r.now_us()
t = 0.0
while t < 6.0:
    t = r.hal.clock.ticks_diff(r.hal.clock.ticks_us(), t0) / 1e6
    # strain ramps at 50 microstrain/s from 2 s to 3.5 s; grating lost 4.5 s to 4.6 s
    e = 50.0 * (min(max(t, 2.0), 3.5) - 2.0)
    r.hal.fbg_raw[0] = 30000 + int(round(e * 1200.0 / 300.0))
    if 4.5 <= t < 4.6:
        r.hal.fbg_raw[0] = 0
    r.run_s(0.005)
ev = [(((x[0] - w0) & 0xFFFFFFFF) / 1e6, x[2], x[3], x[4]) for x in r.events(defs.EV_DERATE)]
emit({"ack": ack, "c": c[0], "ev": ev})
"""


def test_derating_engages_on_the_strain_rate(mp):
    """A 50 microstrain/s ramp (limit 20, resume 10) derates once the least-squares slope
    over 16 FBG readings (100 Hz) passes the limit: from the ramp's start about 6.4 readings
    (when the window's mean slope reaches 20/50 of the ramp's), back to full about 6.4
    readings after the ramp ends below the resume limit; a lost grating derates (cause
    sensor_fault) and the window refills before judging again."""
    (r,) = mp(DERATE)
    assert r["ack"][0] == "ack" and r["c"] == "ack"
    ev = r["ev"]
    assert [(e[1], e[2]) for e in ev[:2]] == [
        (defs.CAUSE_STRAIN_RATE, 1),
        (defs.CAUSE_STRAIN_RATE, 0),
    ], ev
    n, per = 16, 0.01
    # ramp into the window: slope estimate = rate * (fraction of the LS weight on the ramp);
    # the estimate passes 20/50 of the rate after j readings of ramp, j ~ 0.4 ... of N:
    # computed exactly here from the least-squares weights
    k = [i - (n - 1) / 2 for i in range(n)]
    kk = sum(x * x for x in k)

    def est(j):  # ramp of slope 1 over the last j readings, 0 before: the LS slope
        y = [max(0, i - (n - 1 - j)) for i in range(n)]
        return sum(a * b for a, b in zip(k, y, strict=True)) / kk

    j_on = next(j for j in range(1, n + 1) if est(j) * 50.0 > 20.0)
    t_on = 2.0 + j_on * per
    assert abs(ev[0][0] - t_on) <= 2 * per, (ev[0][0], t_on)
    assert 20.0 <= ev[0][3] / 1200.0 <= 50.0  # the value: fm/s at the decision
    j_off = next(j for j in range(1, n + 1) if (1.0 - est(j)) * 50.0 < 10.0)
    t_off = 3.5 + j_off * per
    assert abs(ev[1][0] - t_off) <= 2 * per, (ev[1][0], t_off)
    lost = ev[2:]
    assert lost[0][1] == defs.CAUSE_SENSOR_FAULT and lost[0][2] == 1
    assert 4.5 <= lost[0][0] <= 4.5 + 2 * per
    # back once the window refilled with a flat strain: 16 readings after 4.6 s
    assert lost[1][1] == defs.CAUSE_STRAIN_RATE and lost[1][2] == 0
    assert 4.6 + n * per - per <= lost[1][0] <= 4.6 + (n + 2) * per


def test_strain_loops_allocate_nothing(mp):
    """Adaptive pulses whose rests need both criteria, and a strain-rate derating armed, on
    frozen ADCs (nothing moves: each rest settles after its hold) under heap_lock, on both
    VMs: the strain signal, both criteria, the decisions and the derating's estimator
    allocate nothing."""
    from tests.firmware.scripts import FAST_STREAMING_APP

    (r,) = mp(
        FAST_STREAMING_APP
        + """
for i in range(50):  # FBG readings first: the reference's wavelength ratio is taken at the command
    app.step()
app.commands.apply(defs.CMD_SET_DERATE, (1, 8, 0.0, 0.0, 0.5, 1, 0, 1, 1.2, 50.0, 20.0))
app.commands.apply(defs.CMD_ADAPTIVE_PULSES,
                   (0, 0.01, 20000, 60000, 0, 1000000, 20000, 0.01, 10000, 0.0, 0.0, 0.0, 0,
                    1, 0, 1, 1.0, 1.2, 20000))
app.commands.after()
hal.freeze_adcs()
for i in range(500):
    app.step()
wf = app.waveform
err = None
i0 = wf.index
gc.collect()
micropython.heap_lock()
try:
    for i in range(20000):
        app.step()
except MemoryError as e:
    err = "MemoryError"
micropython.heap_unlock()
i1 = wf.index
emit({"err": err, "pulses": i1 - i0, "running": wf.running,
      "armed": app.derate.armed, "derated": app.derate.derated,
      "strain": wf.plan.settle.e is not None})
"""
    )
    assert r["err"] is None
    assert r["strain"] and r["armed"] and not r["derated"]
    # each cycle: 20 ms on + a rest of both holds (rounded up to block ends), not 1 s
    assert r["pulses"] >= 20 and r["running"] is True
