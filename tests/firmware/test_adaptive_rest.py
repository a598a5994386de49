# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Adaptive rests on the board (firmware/loops): the decision against a known relaxation,
the minimum and maximum, every refusal naming its field and range, and no allocation while
adaptive pulses run (on both VMs: the 32-bit WebAssembly port too)."""

import math

from protocol import defs
from tests.firmware.scripts import FAST_STREAMING_APP

# The fake cell's voltage is set from the test: 3 V + A exp(-t / tau) after the rest starts,
# so the true settling time of |dV/dt| <= thr is tau ln(A / (tau thr)).
RELAX = """
import math
from rig import Rig
from protocol import defs
r = Rig(rates=(10, 10, 100, 1), max_sleep_us=10000)
def relax(args, a_v, tau_s, slope_v_s=0.0, limit_s=30.0):
    r.hal.cell.v_override = 3.0 + a_v
    ack = r.cmd(defs.CMD_ADAPTIVE_REST, args)
    t0 = r.hal.clock.ticks_us()
    t = 0.0
    while r.app.waveform.running and t < limit_s:
        t = r.hal.clock.ticks_diff(r.hal.clock.ticks_us(), t0) / 1e6
        r.hal.cell.v_override = 3.0 + a_v * math.exp(-t / tau_s) + slope_v_s * t
        r.run_s(0.005)
    ev = r.events()
    k = max(i for i, e in enumerate(ev) if e[1] == defs.EV_WAVEFORM_START)
    out = [(((e[0] - ev[k][0]) & 0xFFFFFFFF), e[1], e[2], e[3], e[4]) for e in ev[k:]
           if e[1] in (defs.EV_REST_END, defs.EV_WAVEFORM_END)]
    return {"ack": ack, "ev": out, "on": r.hal.source.on}
"""


def _args(min_s, max_s, hold_s, dvdt, window_s):
    return "(%d, %d, %d, %r, %d)" % (
        min_s * 1e6,
        max_s * 1e6,
        hold_s * 1e6,
        dvdt,
        window_s * 1e6,
    )


def test_rest_ends_when_the_relaxation_rate_falls_below_the_threshold(mp):
    a_v, tau, thr, hold, w = 0.05, 1.0, 5e-3, 0.5, 0.2
    (r,) = mp(RELAX + "emit(relax(%s, %r, %r))" % (_args(0, 20, hold, thr, w), a_v, tau))
    assert r["ack"][0] == "ack"
    (rest_end, wf_end) = r["ev"]
    t_true = tau * math.log(a_v / (tau * thr))  # 2.30 s
    t_dec = rest_end[0] / 1e6
    assert rest_end[1] == defs.EV_REST_END and rest_end[2] == defs.CAUSE_SETTLED
    assert wf_end[1] == defs.EV_WAVEFORM_END and wf_end[2] == defs.CAUSE_SETTLED
    # the estimator lags by ~one window; the hold and block ends round up by < 1 window each
    assert t_true + hold <= t_dec <= t_true + hold + 2 * w + 0.03, (t_true, t_dec)
    assert abs(rest_end[4] - rest_end[0] / 1000) <= 1  # value: the rest's length in ms
    assert r["on"] is False


def test_minimum_and_maximum_bound_the_rest(mp):
    (a, b) = mp(
        RELAX
        + "emit(relax(%s, 0.0, 1.0))\n" % _args(2.0, 20, 0.3, 5e-3, 0.2)  # settled at once
        + "emit(relax(%s, 0.0, 1.0, 0.02))\n" % _args(0, 3.0, 0.3, 5e-3, 0.2)  # never settles
    )
    t_min = a["ev"][0][0] / 1e6
    assert a["ev"][0][2] == defs.CAUSE_SETTLED and 2.0 <= t_min <= 2.0 + 0.2 + 0.02
    rest_end, wf_end = b["ev"]
    assert rest_end[2] == defs.CAUSE_DURATION and rest_end[0] == 3000000
    assert rest_end[4] == 3000.0
    assert wf_end[2] == defs.CAUSE_COMPLETED


def test_unsafe_or_impossible_settings_are_refused_naming_the_field(mp):
    bad = {
        "window_us": _args(0, 10, 0.5, 1e-3, 0.01),  # 1 reading at 100 Hz
        "window_us ": _args(0, 10, 0.5, 1e-3, 3.0),  # 300 readings
        "min_rest_us": _args(11, 10, 0.5, 1e-3, 0.2),
        "hold_us": _args(0, 10, 11, 1e-3, 0.2),
        "dvdt_v_per_s": _args(0, 10, 0.5, 100.0, 0.2),
        "max_rest_us": _args(0, 0, 0, 1e-3, 0.2),
    }
    code = RELAX + "out = {}\n"
    for k, a in bad.items():
        code += "out[%r] = r.cmd(defs.CMD_ADAPTIVE_REST, %s)\n" % (k, a)
    code += "emit(out)\n"
    (r,) = mp(code)
    for k, reply in r.items():
        assert reply[0] == "nack" and reply[1] == defs.NACK_OUT_OF_RANGE, (k, reply)
        assert k.strip() + "=" in reply[2] and "allowed range" in reply[2], reply[2]


def test_adaptive_pulses_alternate_and_allocate_nothing(mp):
    """A pulse series with adaptive rests on frozen ADCs (the voltage never moves, so each
    rest settles after its hold): rests end on the board's decision, the hot path stays
    allocation-free under heap_lock (decisions and pulse edges included)."""
    (r,) = mp(
        FAST_STREAMING_APP
        + """
# 20 ms pulses, rests: window 10 ms, hold 20 ms, at most 1 s
app.commands.apply(defs.CMD_ADAPTIVE_PULSES,
                   (0, 0.01, 20000, 60000, 0, 1000000, 20000, 0.01, 10000, 0.0, 0.0, 0.0, 0))
app.commands.after()
hal.freeze_adcs()
for i in range(500):
    app.step()
wf = app.waveform
err = None
i0 = i1 = 0
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
emit({"err": err, "pulses": i1 - i0, "running": wf.running})
"""
    )
    assert r["err"] is None
    # each cycle: 20 ms on + (hold 20 ms, rounded up to block ends) of rest, not 1 s
    assert r["pulses"] >= 20 and r["running"] is True


def test_adaptive_pulses_run_on_without_the_host_until_the_watchdog(mp):
    """The host goes silent: the board keeps deciding rests on its own, until the watchdog
    switches the current off and latches; no rest or pulse after that."""
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(rates=(10, 10, 100, 1), max_sleep_us=10000, watchdog_ms=2000)
a = r.cmd(defs.CMD_ADAPTIVE_PULSES,
          (0, 0.01, 100000, 1000, 0, 1000000, 50000, 0.01, 20000, 0.0, 0.0, 0.0, 0))
r.run_s(4.0)   # no command: the watchdog (2 s) latches
ev = r.events()
k = max(i for i, e in enumerate(ev) if e[1] == defs.EV_WAVEFORM_START)
t0 = ev[k][0]
out = [(((e[0] - t0) & 0xFFFFFFFF), e[1], e[2]) for e in ev[k:]]
emit({"ack": a[0], "ev": out, "on": r.hal.source.on})
""")
    assert r["ack"] == "ack"
    ev = r["ev"]
    latch = [e for e in ev if e[1] == defs.EV_STOP_LATCHED]
    assert len(latch) == 1 and latch[0][2] == defs.CAUSE_WATCHDOG
    t_latch = latch[0][0]
    assert 2_000_000 <= t_latch <= 2_020_000
    rests = [e for e in ev if e[1] == defs.EV_REST_END]
    assert len(rests) >= 10 and all(e[2] == defs.CAUSE_SETTLED for e in rests)
    assert all(e[0] <= t_latch for e in ev if e[1] in (defs.EV_REST_END, defs.EV_EDGE))
    assert r["on"] is False
