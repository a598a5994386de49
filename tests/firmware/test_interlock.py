# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""The pressure interlock on the board: suspend and resume with hysteresis (the waveform's
timing paused), end-the-step, sensor faults and saturation count as outside, refusals name
the field and range, and nothing is allocated while it acts (both VMs)."""

from protocol import defs
from tests.firmware.scripts import FAST_STREAMING_APP

# fake load cell: 0.001 N per count, no offset (fakehal.DEFINITION); it reads 2000 = 2 N
RIG = """
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 10, 100, 1), max_sleep_us=5000)
def counts(c):
    r.hal.hx.value_counts = c
def rel(evs, t0):
    return [((e[0] - t0) & 0xFFFFFFFF, e[1], e[2], e[3], e[4]) for e in evs]
def story(code):
    ev = r.events()
    k = max(i for i, e in enumerate(ev) if e[1] == defs.EV_WAVEFORM_START)
    return rel([e for e in ev[k:] if e[1] in code], ev[k][0])
"""
KEEP = (defs.EV_EDGE, defs.EV_INTERLOCK, defs.EV_WAVEFORM_END)


def test_suspend_pauses_the_waveform_and_resumes_inside_the_hysteresis_band(mp):
    (r,) = mp(
        RIG
        + """
a = r.cmd(defs.CMD_SET_INTERLOCK, (1, 1.5, 2.5, 0.1))
r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 2.0, 1.0, 2, 0, 0, 0, 0))
r.run_s(1.0)
counts(3000)            # 3 N: above the window
r.run_s(0.5)
on_out = r.hal.source.on
sp_out = r.app.waveform.setpoint_a
counts(2450)            # inside the window but not past the hysteresis band (2.4 N)
r.run_s(1.0)
on_band = r.hal.source.on
counts(2300)            # back inside
r.run_s(0.1)
on_back = r.hal.source.on
sp_back = r.app.waveform.setpoint_a
r.run_s(6)
emit({"ack": a, "ev": story(%r), "on": [on_out, on_band, on_back], "sp": [sp_out, sp_back]})
"""
        % (KEEP,)
    )
    assert r["ack"] == ["ack", [1, 1.5, 2.5, 0.10000000149011612]]
    assert r["on"] == [False, False, True]
    assert r["sp"][0] == 0.0 and abs(r["sp"][1] - 0.02) < 1e-5  # STATUS's setpoint
    ev = r["ev"]
    il = [e for e in ev if e[1] == defs.EV_INTERLOCK]
    assert [(e[2], e[3], e[4]) for e in il] == [
        (defs.CAUSE_PRESSURE, 0, 2000.0),  # the first reading after arming: inside
        (defs.CAUSE_PRESSURE, 1, 3000.0),
        (defs.CAUSE_PRESSURE, 0, 2300.0),
    ]
    t_out, t_back = il[1][0], il[2][0]
    assert 1_000_000 <= t_out <= 1_020_000  # the next 80 SPS reading after the change
    paused = t_back - t_out
    assert 1_490_000 <= paused <= 1_530_000
    edges = [e for e in ev if e[1] == defs.EV_EDGE]
    # the first pulse's remaining 1 s runs after the pause: its end moves by the pause
    assert edges[1][0] == 2_000_000 + paused and edges[1][4] == 0.0
    end = ev[-1]
    assert end[1] == defs.EV_WAVEFORM_END and end[2] == defs.CAUSE_COMPLETED
    assert end[0] == 6_000_000 + paused


def test_end_action_sensor_fault_and_saturation_count_as_outside(mp):
    (r,) = mp(
        RIG
        + """
out = {}
r.cmd(defs.CMD_SET_INTERLOCK, (2, 1.5, 2.5, 0.1))
r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0, 0, 0, 0))
r.run_s(0.5)
counts(1000)            # 1 N: below the window -> the step ends
r.run_s(0.2)
out["end"] = story(%r)
counts(2000)
r.cmd(defs.CMD_SET_INTERLOCK, (1, 1.5, 2.5, 0.1))
r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0, 0, 0, 0))
r.run_s(0.5)
counts(0x3FFFFF)          # a glitch word (a disturbed read): not trusted, outside
r.run_s(0.0125)
out["glitch_on"] = r.hal.source.on
counts(2000)
r.run_s(0.5)
out["back_on"] = r.hal.source.on
r.hal.hx.present = False  # the chip stops answering: not ready, then missing
r.run_s(0.5)
out["sensor_on"] = r.hal.source.on
out["latched"] = r.app.safety.latched  # the safety layer latches a missing sensor too
out["ev"] = story(%r)
r.cmd(defs.CMD_STOP)
emit(out)
"""
        % (KEEP, KEEP)
    )
    end = r["end"]
    assert [(e[1], e[2], e[3]) for e in end if e[1] != defs.EV_EDGE] == [
        (defs.EV_INTERLOCK, defs.CAUSE_PRESSURE, 0),  # first judgement: inside
        (defs.EV_INTERLOCK, defs.CAUSE_PRESSURE, 1),
        (defs.EV_WAVEFORM_END, defs.CAUSE_PRESSURE, end[-1][3]),
    ]
    assert r["glitch_on"] is False and r["back_on"] is True
    assert r["sensor_on"] is False and r["latched"] is True
    il = [(e[2], e[3]) for e in r["ev"] if e[1] == defs.EV_INTERLOCK]
    assert il == [
        (defs.CAUSE_PRESSURE, 0),  # re-armed: first judgement
        (defs.CAUSE_SENSOR_FAULT, 1),  # the glitch
        (defs.CAUSE_PRESSURE, 0),
        (defs.CAUSE_SENSOR_FAULT, 1),  # the chip gone (before the safety latch)
    ]
    end = [e for e in r["ev"] if e[1] == defs.EV_WAVEFORM_END]
    assert end[-1][2] == defs.CAUSE_SENSOR_FAULT


def test_bad_windows_are_refused_naming_the_field(mp):
    bad = {
        "action": "(3, 1.5, 2.5, 0.1)",
        "f_min_n": "(1, -6000.0, 2.5, 0.1)",
        "f_max_n": "(1, 1.5, 6000.0, 0.1)",
        "f_min_n ": "(1, 2.5, 1.5, 0.1)",
        "hysteresis_n": "(1, 1.5, 2.5, 0.5)",
    }
    code = RIG + "out = {}\n"
    for k, a in bad.items():
        code += "out[%r] = r.cmd(defs.CMD_SET_INTERLOCK, %s)\n" % (k, a)
    code += "emit(out)\n"
    (r,) = mp(code)
    for k, reply in r.items():
        assert reply[0] == "nack" and reply[1] == defs.NACK_OUT_OF_RANGE, (k, reply)
        assert k.strip() + "=" in reply[2], reply[2]


def test_interlock_acts_without_allocating(mp):
    (r,) = mp(
        FAST_STREAMING_APP
        + """
app.commands.apply(defs.CMD_SET_INTERLOCK, (1, 1.5, 2.5, 0.1))
app.commands.apply(defs.CMD_PULSE_TRAIN, (0, 0.01, 20000, 10000, 60000, 0.0, 0.0, 0.0, 0))
app.commands.after()
hal.freeze_adcs()
for i in range(500):
    app.step()
err = None
n = k = 0
gc.collect()
micropython.heap_lock()
try:
    for k in range(40):
        hal.hx.value_counts = 3000 if k % 2 == 0 else 2000
        for i in range(300):
            app.step()
            if app.waveform.suspended:
                n += 1
except MemoryError as e:
    err = "MemoryError"
micropython.heap_unlock()
emit({"err": err, "suspended_steps": n, "running": app.waveform.running})
"""
    )
    assert r["err"] is None
    assert r["suspended_steps"] > 1000 and r["running"] is True


def test_saturation_is_outside_even_inside_the_force_window(mp):
    (r,) = mp(
        RIG
        + """
r.cmd(defs.CMD_SET_INTERLOCK, (1, -5000.0, 5000.0, 0.0))   # the whole range
il = r.app.interlock
il.update(2000, 0)
inside = il.outside
il.update(0x7FFFFF, defs.LOAD_SATURATED)
emit({"inside": inside, "sat": il.outside, "sensor": il.sensor})
"""
    )
    assert r == {"inside": False, "sat": True, "sensor": True}
