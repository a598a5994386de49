# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Current derating by pressure rate on the board: the least-squares slope estimator
(exact on a ramp, offset-free, small ints across a large drift), the current scaled down
while the force rate is over the limit and back up below the resume rate (events with
cause, ELEC_DERATED, the source's code), sensor faults derate, refusals name the field and
range, and nothing is allocated while it acts (both VMs)."""

from protocol import defs
from tests.firmware.scripts import FAST_STREAMING_APP

# fake load cell: 0.001 N per count (fakehal.DEFINITION), 80 SPS
RIG = """
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 10, 100, 1), max_sleep_us=5000)
def counts(c):
    r.hal.hx.value_counts = c
def ramp(c0, per_reading, readings):
    c = c0
    for k in range(readings):
        c += per_reading
        counts(c)
        r.run_s(0.0125)
    return c
"""


def test_estimator_is_the_least_squares_slope_and_stays_small(mp):
    (r,) = mp("""
from firmware.loops.derate import Derate, window_d
d = Derate()
out = {}
# a ramp of 37 counts per reading near the top of the 24-bit range, through many rebases
d.arm(16, 1, 0, 512, 80)
c = 8000000
tmax = 0
full = []
for k in range(400):
    full.append(d.add(c))
    c -= 37 * 50   # 1850 counts per reading: the reference moves every ~70 readings
    tmax = max(tmax, abs(d.t))
out["slope"] = d.t / window_d(16)
out["tmax"] = tmax
out["full_at"] = full.index(True)
out["rate"] = d.rate_cps()
# noise only: T of a symmetric pattern
d.arm(5, 1, 0, 512, 10)
for x in (10, -10, 10, -10, 10):
    d.add(x)
out["sym"] = d.t
emit(out)
""")
    assert r["full_at"] == 15
    assert r["slope"] == -1850.0
    assert r["rate"] == -1850 * 80
    assert r["tmax"] < 2**29
    assert r["sym"] == 0


def test_current_scaled_while_the_rate_is_over_the_limit_and_back_up(mp):
    (r,) = mp(
        RIG
        + """
out = {}
counts(2000)
out["ack"] = r.cmd(defs.CMD_SET_DERATE, (1, 8, 5.0, 2.0, 0.5))
r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0, 0, 0, 0))
r.run_s(1.0)
out["full"] = r.hal.cell.amps()
t_ramp = r.now_us()
c = ramp(2000, 125, 40)   # 10 N/s for 0.5 s (limit 5 N/s)
out["derated"] = r.hal.cell.amps()
out["state"] = r.app.sampler.elec_state
t_stop = r.now_us()
r.run_s(1.0)
out["back"] = r.hal.cell.amps()
out["ev"] = [(e[0], e[2], e[3], e[4]) for e in r.events(defs.EV_DERATE)]
out["t"] = [t_ramp, t_stop]
r.cmd(defs.CMD_STOP)
emit(out)
"""
    )
    assert r["ack"] == ["ack", [1, 8, 5.0, 2.0, 0.5]]
    assert abs(r["full"] - 0.02) < 1e-5 and abs(r["derated"] - 0.01) < 1e-5
    assert abs(r["back"] - 0.02) < 1e-5
    assert r["state"] & defs.ELEC_DERATED and r["state"] & defs.ELEC_OUTPUT_ON
    ev = r["ev"]
    assert [(e[1], e[2]) for e in ev] == [
        (defs.CAUSE_PRESSURE_RATE, 1),
        (defs.CAUSE_PRESSURE_RATE, 0),
    ]
    t_ramp, t_stop = r["t"]
    # a noiseless ramp: the slope of 8 readings passes half the ramp's rate once more than
    # (8 - 1) / 2 readings are on it (4 of them: 50/84 of the rate; 3 give 34/84), i.e. at
    # the 4th reading of the ramp, 3 to 4 periods (12.5 ms) after the force began to move
    d_on = ev[0][0] - t_ramp
    assert 3 * 12500 < d_on <= 4 * 12500, d_on
    assert ev[0][3] > 5000  # counts/s (10 N/s is 10000 counts/s)
    d_off = ev[1][0] - t_stop
    assert 3 * 12500 <= d_off <= 7 * 12500, d_off


def test_bad_load_reading_derates_and_refills(mp):
    (r,) = mp(
        RIG
        + """
counts(2000)
r.cmd(defs.CMD_SET_DERATE, (1, 4, 5.0, 2.0, 0.25))
r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0, 0, 0, 0))
r.run_s(0.5)
counts(0x3FFFFF)     # a glitch word: the rate is unknown
r.run_s(0.0125)
a = r.hal.cell.amps()
counts(2000)
r.run_s(0.5)
b = r.hal.cell.amps()
emit({"a": a, "b": b, "ev": [(e[2], e[3]) for e in r.events(defs.EV_DERATE)]})
"""
    )
    assert abs(r["a"] - 0.005) < 1e-5 and abs(r["b"] - 0.02) < 1e-5
    assert r["ev"] == [[defs.CAUSE_SENSOR_FAULT, 1], [defs.CAUSE_PRESSURE_RATE, 0]]


def test_bad_settings_are_refused_naming_the_field(mp):
    bad = {
        "action": "(2, 8, 5.0, 2.0, 0.5)",
        "window_n": "(1, 65, 5.0, 2.0, 0.5)",
        "window_n ": "(1, 2, 5.0, 2.0, 0.5)",
        "limit_n_per_s": "(1, 8, 0.0, 0.0, 0.5)",
        "limit_n_per_s ": "(1, 8, 20000.0, 2.0, 0.5)",
        "resume_n_per_s": "(1, 8, 5.0, 5.0, 0.5)",
        "scale": "(1, 8, 5.0, 2.0, 1.0)",
        "scale ": "(1, 8, 5.0, 2.0, -0.1)",
    }
    code = RIG + "out = {}\n"
    for k, a in bad.items():
        code += "out[%r] = r.cmd(defs.CMD_SET_DERATE, %s)\n" % (k, a)
    code += "emit(out)\n"
    (r,) = mp(code)
    for k, reply in r.items():
        assert reply[0] == "nack" and reply[1] == defs.NACK_OUT_OF_RANGE, (k, reply)
        assert k.strip() + "=" in reply[2], reply[2]


def test_derating_acts_without_allocating(mp):
    (r,) = mp(
        FAST_STREAMING_APP
        + """
app.commands.apply(defs.CMD_SET_DERATE, (1, 8, 5.0, 2.0, 0.5))
app.commands.apply(defs.CMD_PULSE_TRAIN, (0, 0.01, 20000, 10000, 60000, 0.0, 0.0, 0.0, 0))
app.commands.after()
hal.freeze_adcs()
for i in range(500):
    app.step()
err = e = None
n = k = 0  # every global made before the lock (a new one can grow the module's dict)
c = 2000
gc.collect()
micropython.heap_lock()
try:
    for k in range(8):
        for i in range(1500):
            if k % 2 == 0:
                c += 10  # about 10 N/s at the loop's pace (1 ms a step)
            hal.hx.value_counts = c
            app.step()
            if app.derate.derated:
                n += 1
except MemoryError as e:
    err = "MemoryError"
micropython.heap_unlock()
emit({"err": err, "derated_steps": n, "running": app.waveform.running})
"""
    )
    assert r["err"] is None
    assert r["derated_steps"] > 1000 and r["running"] is True
