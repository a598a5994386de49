# ruff: noqa: UP031  (MicroPython snippets built with %-formatting)
"""The safety checks judge a reading by the output state it was taken with, and the voltage
guard reads between slow elec samples as a limit nears (firmware/vguard.py)."""

from protocol import defs

_RUNAWAY = """
from rig import Rig
from protocol import defs

def runaway(guard):
    # V = 4.1 + 0.05 / (t_end - t): a diffusion-limited interface running away (the
    # gain_solid_state plant's end of lithiation: 4.2 -> 4.46 V in its last 0.4 s)
    r = Rig(rates=(80, 100, 1, 1))
    if not guard:
        r.app.vguard.plan = lambda *a: None
    r.cmd(defs.CMD_SET_VOLTAGE_WINDOW, (1.0, 4.3))
    r.hal.cell.v_override = 4.1
    t0 = r.now_us()
    t_end = 30.0
    a = r.cmd(defs.CMD_CONSTANT, (0, 0.01, 1.0, 4.2, 0, 0))
    passes = 0
    while r.app.waveform.running and passes < 200000:
        t = ((r.now_us() - t0) & 0xFFFFFFFF) * 1e-6
        r.hal.cell.v_override = 4.1 + 0.05 / (t_end - t) if t < t_end - 0.01 else 5.0
        r.step()
        passes += 1
    ev = r.events()
    vpc = r.app.calib["volts_per_count"]
    return {"a": a[0], "on": r.hal.source.on, "v_end": r.app.sampler.v_raw * vpc,
            "end": [e[2] for e in ev if e[1] == defs.EV_WAVEFORM_END],
            "lat": [e[2] for e in ev if e[1] == defs.EV_STOP_LATCHED],
            "guard_reads": r.app.vguard.reads, "passes": passes}

emit({"guard": runaway(True), "no_guard": runaway(False)})
"""


def test_a_reading_past_the_window_latches_even_when_it_also_hit_the_cutoff(mp):
    # The cutoff (4.2 V) and the window (4.5 V) both judge the same 1 Hz reading of 4.6 V.
    # The cutoff used to switch the output off first, and the window check then took the
    # reading for an open-circuit one: the step ended "normally" on a voltage past the
    # window, with no latch.
    (r,) = mp(
        """
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 100, 1, 10))
r.cmd(defs.CMD_SET_VOLTAGE_WINDOW, (1.0, 4.5))
a = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 1.0, 4.2, 0, 0))
r.run_s(1.5)
r.hal.cell.v_override = 4.6
r.run_s(2.0)
ev = r.events()
emit({"a": a[0], "on": r.hal.source.on,
      "end": [e[2] for e in ev if e[1] == defs.EV_WAVEFORM_END],
      "lat": [e[2] for e in ev if e[1] == defs.EV_STOP_LATCHED]})
"""
    )
    assert r["a"] == "ack"
    assert r["on"] is False
    assert r["lat"] == [defs.CAUSE_V_MAX]
    assert len(r["end"]) == 1


def test_the_guard_ends_a_runaway_on_its_cutoff_between_slow_samples(mp):
    (r,) = mp(_RUNAWAY)
    g, ng = r["guard"], r["no_guard"]
    assert g["a"] == "ack" and g["on"] is False
    # ended on the 4.2 V cutoff, a few mV past it, not latched on the 4.3 V window
    assert g["end"] == [defs.CAUSE_V_MAX] and g["lat"] == []
    assert 4.199 <= g["v_end"] < 4.215  # (one ADC count is 0.1 mV)
    # far from the limit the guard reads nothing: a few dozen readings in the last
    # seconds, not 50 per second for 30 s
    assert 0 < g["guard_reads"] < 300
    # without it, the 1 Hz stream sees 4.1x V and then the run-away past the window (up to
    # the source's compliance)
    assert ng["lat"] in ([defs.CAUSE_V_MAX], [defs.CAUSE_COMPLIANCE]) and ng["v_end"] > 4.3


def test_guard_readings_allocate_nothing(mp):
    # near the cutoff the guard reads at 50 Hz between 1 Hz samples: all of it under
    # heap_lock on both VMs (the 32-bit one too)
    (r,) = mp(
        """
import gc, micropython
import fakehal
from firmware.app import App
from protocol import defs
hal = fakehal.FakeHal(link=fakehal.NullLink())
d = dict(fakehal.DEFINITION)
d["streams"] = {"load": {"rate_hz": 80.0, "enabled": True},
                "fbg": {"rate_hz": 100.0, "enabled": True},
                "elec": {"rate_hz": 1.0, "enabled": True},
                "temp": {"rate_hz": 1.0, "enabled": True}}
app = App(d, hal)
app.safety.watchdog_ms = 600000
app.set_streaming(1)
hal.cell.v_override = 4.17
for cmd, args in ((defs.CMD_SET_VOLTAGE_WINDOW, (1.0, 4.3)),
                  (defs.CMD_CONSTANT, (0, 0.01, 1.0, 4.2, 0.0, 0))):
    app.commands.apply(cmd, args)
    if app.commands.after is not None:
        app.commands.after()
hal.freeze_adcs()  # the fake cell's float arithmetic is not the firmware's
for i in range(300):
    app.step()
g0 = g1 = 0
err = None
g0 = app.vguard.reads
gc.collect()
micropython.heap_lock()
try:
    for i in range(3000):
        app.step()
except MemoryError:
    err = "MemoryError"
micropython.heap_unlock()
g1 = app.vguard.reads
emit({"err": err, "reads": g1 - g0, "running": app.waveform.running})
"""
    )
    assert r["err"] is None
    assert r["running"] is True and r["reads"] > 50
