# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""The stack-pressure hold on the board: the PI loop moves the press's stepper so the load
cell reads the setpoint while a disturbance (the cell's growth) pushes the force up, within
the step-rate and travel limits; runaway, travel exhausted and sensor faults end in a latched
stop with the actuator held; a single spike moves nothing; refusals name the field and range;
nothing is allocated while it acts (both VMs).

The plant here is a stiff stack in the test script: counts = base + growth + K * position
(fake load cell 0.001 N a count; K counts per step)."""

from protocol import defs
from tests.firmware.scripts import FAST_STREAMING_APP

# area 1e-4 m2: 1 MPa = 100 N = 100000 counts. K = 200 counts a step (0.4 N/um at 0.5 um)
RIG = """
from rig import Rig
from protocol import defs
import fakehal
d = dict(fakehal.DEFINITION)
d["limits"] = dict(d["limits"])
d["limits"].update(fakehal.PRESS_LIMITS)
r = Rig(rates=(80, 10, 100, 1), max_sleep_us=5000, definition=d)
st = fakehal.fit_press(r.hal)
r.cmd(defs.CMD_SET_STREAMING, (1,))  # the sample index counts the readings
K = 200
state = {"base": 1000000, "growth": 0, "g": 0.0}
def plant():
    now = r.hal.clock.ticks_us()
    r.hal.hx.value_counts = state["base"] + state["growth"] + K * st.position(now)
def run(seconds, growth_per_s=0, spike_at=None):
    clock = r.hal.clock
    t0 = clock.ticks_us()
    end = int(seconds * 1e6)
    el = 0
    errs = []
    k = r.app.sampler.index[0]
    while el < end:
        t = clock.ticks_us()
        el = clock.ticks_diff(t, t0)
        plant()
        r.app.step()
        state["g"] += growth_per_s * clock.ticks_diff(clock.ticks_us(), t) / 1e6
        state["growth"] = int(state["g"])
        ph = r.app.press_hold
        if ph is not None and ph.armed and r.app.sampler.index[0] != k:
            k = r.app.sampler.index[0]
            errs.append(ph.err)
    return errs
def readings(n):
    k0 = r.app.sampler.index[0]
    while r.app.sampler.index[0] - k0 < n:
        r.app.step()
"""


def test_hold_absorbs_the_growth_within_a_step(mp):
    (r,) = mp(
        RIG
        + """
out = {}
plant()
r.run_s(0.2)
# 10.5 MPa (1050000 counts) from 10 MPa: 2500 steps away, found at the rate limit
out["ack"] = r.cmd(defs.CMD_SET_PRESS_HOLD, (1, 10.5, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
run(3.0)
out["pos"] = st.position(r.hal.clock.ticks_us())
e = run(20.0, growth_per_s=5000)       # the cell grows 0.05 MPa/s: 1 MPa in 20 s
out["emax"] = max(abs(x) for x in e[80:])
out["pos2"] = st.position(r.hal.clock.ticks_us())
out["ev"] = [(e[2], e[3], e[4]) for e in r.events() if e[1] == defs.EV_PRESS_HOLD]
out["npos"] = len(r.events(defs.EV_PRESS_POSITION))
out["off"] = r.cmd(defs.CMD_SET_PRESS_HOLD, (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
out["ev2"] = [(e[2], e[3]) for e in r.events(defs.EV_PRESS_HOLD)]
emit(out)
"""
    )
    ack = r["ack"]
    assert ack[0] == "ack"
    assert abs(ack[1][1] - 10.5) < 1e-5 and ack[1][3] == 100.0 and ack[1][4] == 4000.0
    assert ack[1][7] == 4000.0 and ack[1][8] == 1000000
    # 50000 counts / 200 a step = 250 steps in
    assert abs(r["pos"] - 250) <= 2, r["pos"]
    # the growth (100000 counts) taken out by 500 steps back, the error within a step or two
    assert abs(r["pos2"] - (250 - 500)) <= 3, r["pos2"]
    assert r["emax"] <= 3 * 200, r["emax"]
    assert r["ev"][0] == [defs.CAUSE_NONE, 1, 10.5]
    assert r["npos"] > 20
    assert r["off"][0] == "ack"
    assert r["ev2"][-1] == [defs.CAUSE_HOST_STOP, 0]


def test_step_rate_limit_and_a_spike(mp):
    (r,) = mp(
        RIG
        + """
out = {}
plant()
r.run_s(0.2)
# 100 steps/s: 1.25 steps a reading at 80 SPS -> 1 a reading
r.cmd(defs.CMD_SET_PRESS_HOLD, (1, 10.2, 1e-4, 0.0, 0.0, 0.0, 0.0, 100.0, 60000000))
run(1.0)
out["pos1"] = st.position(r.hal.clock.ticks_us())
run(20.0)
p = st.position(r.hal.clock.ticks_us())
# one spike of +1 MPa in the readings: the median of three ignores it
state["base"] += 100000
plant(); readings(1)
state["base"] -= 100000
run(0.5)
out["moved"] = st.position(r.hal.clock.ticks_us()) - p
emit(out)
"""
    )
    assert 70 <= r["pos1"] <= 82, r["pos1"]  # 80 readings a second, one step each
    assert abs(r["moved"]) <= 1, r["moved"]


def test_travel_exhausted_latches_and_holds_the_actuator(mp):
    (r,) = mp(
        RIG
        + """
out = {}
plant()
r.run_s(0.2)
# 20 um of travel (40 steps) for a 1 MPa rise: runs out
r.cmd(defs.CMD_SET_PRESS_HOLD, (1, 10.0, 1e-4, 0.0, 0.0, 0.5, 20.0, 0.0, 500000))
run(1.0)
r.cmd(defs.CMD_CONSTANT, (0, 0.01, 0, 0, 0, 0))
run(30.0, growth_per_s=5000)
now = r.hal.clock.ticks_us()
out["pos"] = st.position(now)
out["moving"] = st.moving(now)
out["on"] = r.hal.source.on
out["latched"] = r.app.safety.latched
out["cause"] = r.app.safety.cause
out["ev"] = [(e[2], e[3]) for e in r.events(defs.EV_PRESS_HOLD)]
out["stop"] = [e[2] for e in r.events(defs.EV_STOP_LATCHED)]
out["again"] = r.cmd(defs.CMD_SET_PRESS_HOLD, (1, 10.0, 1e-4, 0.0, 0.0, 0.5, 20.0, 0.0, 500000))
emit(out)
"""
    )
    assert r["pos"] == -40 and not r["moving"]
    assert r["latched"] and not r["on"] and r["cause"] == defs.CAUSE_PRESS_TRAVEL
    assert r["ev"][-2:] == [[defs.CAUSE_PRESS_TRAVEL, 2], [defs.CAUSE_PRESS_TRAVEL, 0]]
    assert r["stop"] == [defs.CAUSE_PRESS_TRAVEL]
    assert r["again"][0] == "nack" and r["again"][1] == defs.NACK_LATCHED


def test_runaway_and_sensor_faults_latch(mp):
    (r,) = mp(
        RIG
        + """
out = {}
plant()
r.run_s(0.2)
# the press pushes the wrong way round (a miswired dir): the error grows -> runaway
r.cmd(defs.CMD_SET_PRESS_HOLD, (1, 10.5, 1e-4, 0.0, 0.0, 0.2, 0.0, 0.0, 500000))
K = -200
run(3.0)
out["runaway"] = [(e[2], e[3]) for e in r.events(defs.EV_PRESS_HOLD)]
out["cause1"] = r.app.safety.cause
r.app.clear_fault()
K = 200
state["base"] = 1000000 - K * st.position(r.hal.clock.ticks_us())
r.cmd(defs.CMD_SET_PRESS_HOLD, (1, 10.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
run(0.5)
out["ok"] = r.app.safety.latched
r.hal.hx.value_counts = 0x3FFFFF  # glitch words: two are skipped, the third latches
readings(2)
out["after2"] = r.app.safety.latched
readings(1)
r.app.step()
out["cause2"] = r.app.safety.cause
out["ev2"] = [(e[2], e[3]) for e in r.events(defs.EV_PRESS_HOLD)][-2:]
emit(out)
"""
    )
    assert r["runaway"][-2:] == [[defs.CAUSE_PRESS_RUNAWAY, 2], [defs.CAUSE_PRESS_RUNAWAY, 0]]
    assert r["cause1"] == defs.CAUSE_PRESS_RUNAWAY
    assert r["ok"] is False and r["after2"] is False
    assert r["cause2"] == defs.CAUSE_SENSOR_FAULT
    assert r["ev2"] == [[defs.CAUSE_SENSOR_FAULT, 2], [defs.CAUSE_SENSOR_FAULT, 0]]


def test_bad_settings_are_refused_naming_the_field(mp):
    ok = "(1, 10.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0)"
    bad = {
        "action": "(2, 10.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0)",
        "setpoint_mpa": "(1, 60.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0)",
        "setpoint_mpa ": "(1, 0.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0)",
        "stack_area_m2": "(1, 10.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)",
        "kp_um_per_mpa": "(1, 10.0, 1e-4, -1.0, 0.0, 0.0, 0.0, 0.0, 0)",
        "ki_um_per_mpa_s": "(1, 10.0, 1e-4, 1.0, 20000.0, 0.0, 0.0, 0.0, 0)",
        "max_error_mpa": "(1, 10.0, 1e-4, 0.0, 0.0, 3.0, 0.0, 0.0, 0)",
        "max_travel_um": "(1, 10.0, 1e-4, 0.0, 0.0, 0.0, 5000.0, 0.0, 0)",
        "rate_steps_per_s": "(1, 10.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 5000.0, 0)",
        "runaway_us": "(1, 10.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 61000000)",
    }
    code = RIG + "out = {}\n"
    for k, a in bad.items():
        code += "out[%r] = r.cmd(defs.CMD_SET_PRESS_HOLD, %s)\n" % (k, a)
    # a board without a press actuator
    code += "r.hal.press = None\nout['none'] = r.cmd(defs.CMD_SET_PRESS_HOLD, %s)\n" % ok
    code += "emit(out)\n"
    (r,) = mp(code)
    none = r.pop("none")
    assert none[0] == "nack" and none[1] == defs.NACK_UNSUPPORTED and "press" in none[2]
    for k, reply in r.items():
        assert reply[0] == "nack" and reply[1] == defs.NACK_OUT_OF_RANGE, (k, reply)
        assert k.strip() + "=" in reply[2], reply[2]


def test_press_hold_acts_without_allocating(mp):
    (r,) = mp(
        FAST_STREAMING_APP
        + """
app.limits = dict(app.limits)
app.limits.update(fakehal.PRESS_LIMITS)
st = fakehal.fit_press(hal)
hal.freeze_adcs()
hal.hx.value_counts = 1000000
for i in range(200):
    app.step()
app.commands.apply(defs.CMD_SET_PRESS_HOLD, (1, 10.2, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
app.commands.apply(defs.CMD_PULSE_TRAIN, (0, 0.01, 20000, 10000, 60000, 0.0, 0.0, 0.0, 0))
app.commands.after()
for i in range(200):
    app.step()
err = e = None
i = k = g = 0  # every global made before the lock
ph = app.press_hold
moves = hal.press_sm.words
gc.collect()
micropython.heap_lock()
try:
    for k in range(6000):
        hal.hx.value_counts = 1000000 + g + 200 * st.position(hal.clock.ticks_us())
        if k % 2 == 0:
            g += 3  # the cell grows
        app.step()
except MemoryError as e:
    err = "MemoryError"
micropython.heap_unlock()
emit({"err": err, "armed": ph.armed, "moves": hal.press_sm.words - moves,
      "running": app.waveform.running})
"""
    )
    assert r["err"] is None
    assert r["armed"] is True and r["running"] is True
    assert r["moves"] > 100


def test_board_press_actuator_is_optional_and_built_from_the_definition(mp):
    (r,) = mp("""
import fakehal
from firmware.drivers.stepper import fit_press, make_stepper
class Pin:
    OUT = 1
    def __init__(self, n, mode=0, value=0):
        self.n = n
        self.v = value
        self.rises = 0
    def value(self, v=None):
        if v is None:
            return self.v
        if v and not self.v:
            self.rises += 1
        self.v = v
class machine:
    Pin = Pin
class SM:
    def __init__(self, i, prog, freq=0, set_base=None):
        self.i = i
        self.words = []
    def put(self, w):
        self.words.append(w)
    def active(self, v=None):
        pass
class PIO:
    OUT_LOW = 0
def asm_pio(**kw):
    return lambda f: f
class rp2:
    StateMachine = SM
    PIO = PIO
    asm_pio = asm_pio
d = {"parts": {}, "pins": {}, "limits": {}}
out = {"none": make_stepper(fit_press(d, None), fakehal.VClock(), machine) is None}
press = {"driver": "gpio", "pins": {"press_step": 10, "press_dir": 11, "press_enable": 12},
         "limits": dict(fakehal.PRESS_LIMITS)}
fit_press(d, press)
out["limits"] = d["limits"]["press_um_per_step"]
clk = fakehal.VClock()
st = make_stepper(d, clk, machine)
st.move(-7, 1000, clk.ticks_us())
out["gpio"] = [st.position(clk.ticks_us()), st.step_pin.rises, st.dir_pin.v, st.en_pin.v]
# the PIO path: a move is two words; the period is 2 d + 7 us at 1 MHz
d["parts"]["press"]["driver"] = "pio"
st = make_stepper(d, clk, machine, rp2)
t0 = clk.ticks_us()
per = st.move(25, 2000, t0)
clk.sleep_us(5 * per + 1)
out["pio"] = [st.sm.i, st.sm.words, per, st.position(clk.ticks_us())]
clk.sleep_us(100 * per)
out["done"] = [st.position(clk.ticks_us()), st.moving(clk.ticks_us())]
emit(out)
""")
    assert r["none"] is True
    assert r["limits"] == 0.5
    assert r["gpio"] == [-7, 7, 0, 0]  # 7 pulses, dir low (backwards), enabled (active low)
    assert r["pio"] == [1, [24, 246], 499, 5]
    assert r["done"] == [25, False]
