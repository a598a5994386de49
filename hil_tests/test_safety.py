"""Safety through the wire: the heartbeat watchdog, refused commands, latched stops with
their cause, STOP, CLEAR_FAULT.

The rig of this module runs WITHOUT the client's automatic heartbeat (heartbeat_s=None), so
the board hears only the commands the tests send: the watchdog test then really is a silent
host. The watchdog only acts while a waveform runs, and the other tests' waveforms are far
shorter than its timeout.

Emulated board: nak50_pulsed at speed 5 (NaK cell: ~0.2 V at half the current limit).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hil_tests._util import Collector, events_after, wait_for
from hil_tests.conftest import BenchSpec
from host_sdk.client import CommandRefused, Cutoffs
from protocol import defs

BENCH = BenchSpec(
    scenario="nak50_pulsed",
    speed=5.0,
    seed=2,
    rig_options={"heartbeat_s": None, "watchdog_s": 60.0},
)


@pytest.fixture(autouse=True)
def _clean_state(bench):
    """Each test starts idle, unlatched, with the board's full voltage window."""
    rig = bench.rig
    yield
    rig.stop()
    if rig.status().state_name == "latched":
        rig.clear_fault()
    lim = rig.hello.limits
    rig.set_voltage_window(lim["min_voltage_v"], lim["compliance_v"])
    rig.set_streaming(False)


def _assert_idle_and_off(rig):
    st = rig.status()
    assert st.state_name == "idle" and st.setpoint_a == 0.0, st


def test_current_density_needs_cell_first(bench, rig):
    """A/m² before SET_CELL: refused as not_configured (fresh board of this module)."""
    try:
        rig.constant_current(current_a_m2=1e-3)
    except CommandRefused as e:
        refused = e
    else:
        rig.stop()
        pytest.skip("this board was given a cell area since it booted")
    e = pytest.ExceptionInfo.from_exc_info((type(refused), refused, refused.__traceback__))
    assert e.value.reason_name == "not_configured"
    assert "set_cell" in e.value.text
    _assert_idle_and_off(rig)


def _refusals(lim):
    imax = lim["max_current_a"]
    return [
        ("constant current above max", lambda r: r.constant_current(current_a=1.5 * imax),
         "current"),
        ("negative current below -max", lambda r: r.constant_current(current_a=-1.5 * imax),
         "current"),
        ("pulse shorter than min_pulse_s",
         lambda r: r.pulse_train(amplitude_a=0.1 * imax, t_on_s=0.5 * lim["min_pulse_s"],
                                 t_off_s=0.1, count=3), "t_on_us"),  # wire name: us
        ("gitt amplitude above max",
         lambda r: r.gitt(amplitude_a=2 * imax, t_pulse_s=1, t_rest_s=1, count=1), "amplitude"),
        ("staircase stop above max",
         lambda r: r.staircase(start=0.0, step=0.5 * imax, stop=2 * imax, dwell_s=1, on_s=1),
         "stop"),
        ("cutoff above compliance",
         lambda r: r.constant_current(current_a=0.1 * imax,
                                      cutoffs=Cutoffs(v_min_v=0.0,
                                                      v_max_v=lim["compliance_v"] + 1)),
         "v_max_v"),
        ("stream rate above max",
         lambda r: r.configure_stream("elec", rate_hz=2 * lim["max_rate_elec_hz"]), "rate_hz"),
        ("watchdog above max",
         lambda r: r.set_watchdog(2 * lim["max_watchdog_ms"] / 1000), "timeout_ms"),
        ("watchdog below min",
         lambda r: r.set_watchdog(0.5 * lim["min_watchdog_ms"] / 1000), "timeout_ms"),
        ("cell area above max", lambda r: r.set_cell(2 * lim["max_area_m2"]), "area_m2"),
        ("window above compliance",
         lambda r: r.set_voltage_window(0.0, lim["compliance_v"] + 1.0), "v_max_v"),
        ("window inverted", lambda r: r.set_voltage_window(1.0, 0.5), "v_min_v"),
    ]  # fmt: skip


def test_out_of_range_commands_refused_with_reason(bench, rig):
    """Every out-of-range argument is refused (never clipped), the NACK text names the
    field and the allowed range, and nothing is applied."""
    m = rig.event_mark()
    for what, call, fieldname in _refusals(rig.hello.limits):
        with pytest.raises(CommandRefused) as e:
            call(rig)
        assert e.value.reason_name == "out_of_range", what
        assert fieldname in e.value.text, (what, e.value.text)
        if "must be below" not in e.value.text:
            assert "allowed range" in e.value.text, (what, e.value.text)
    assert not events_after(rig, m, defs.EV_WAVEFORM_START), "a refused waveform started"
    _assert_idle_and_off(rig)


def test_busy_refused_while_running(bench, rig):
    imax = rig.hello.limits["max_current_a"]
    rig.pulse_train(amplitude_a=0.2 * imax, t_on_s=0.2, t_off_s=0.2, count=100)
    with pytest.raises(CommandRefused) as e:
        rig.constant_current(current_a=0.1 * imax)
    assert e.value.reason_name == "busy"
    with pytest.raises(CommandRefused) as e:
        rig.set_cell(1e-4)
    assert e.value.reason_name == "busy"


def test_stop_reports_host_stop_without_latching(bench, rig):
    imax = rig.hello.limits["max_current_a"]
    rig.configure_stream("elec", rate_hz=100.0)
    m = rig.event_mark()
    with Collector(rig, ["elec"]) as col:
        rig.set_streaming(True)
        rig.constant_current(current_a=0.5 * imax)
        bench.sleep_device(0.5)
        rig.stop()
        end = rig.wait_event((defs.EV_WAVEFORM_END,), after=m, timeout_s=5)
        bench.sleep_device(0.3)
        rig.set_streaming(False)
    assert end is not None and end.cause_name == "host_stop"
    assert not events_after(rig, m, defs.EV_STOP_LATCHED)
    _assert_idle_and_off(rig)
    rec, t, _ = col.records("elec")
    after = t > end.t_s + 0.02
    assert after.any() and not np.any(rec["state"][after] & defs.ELEC_OUTPUT_ON)


def test_watchdog_switches_current_off_when_host_silent(bench, rig, figure):
    """No command for the watchdog timeout while a waveform runs: the board switches the
    current off by itself, latches with cause `watchdog`, flags every frame, refuses
    waveforms until CLEAR_FAULT."""
    lim = rig.hello.limits
    timeout_s = max(1.0, lim["min_watchdog_ms"] / 1000)
    rig.set_watchdog(timeout_s)
    rig.configure_stream("elec", rate_hz=100.0)
    m = rig.event_mark()
    with Collector(rig, ["elec"]) as col:
        rig.set_streaming(True)
        rig.constant_current(current_a=0.5 * lim["max_current_a"])  # last command
        # ...and now silence (no heartbeat thread on this rig)
        ev = rig.wait_event(
            (defs.EV_STOP_LATCHED,), after=m, timeout_s=bench.timeout_s(3 * timeout_s)
        )
        bench.sleep_device(0.5)
        # the first frame that starts after the latch may still be filling (or on its way
        # through a busy host): wait for it, bounded, rather than take what came in 0.5 s
        deadline = time.monotonic() + bench.timeout_s(2.0)
        blocks_after: list = []
        while ev and time.monotonic() < deadline:
            blocks_after = [b for b in col.blocks.get("elec", []) if b.t_s[0] > ev.t_s]
            if blocks_after:
                break
            bench.sleep_device(0.1)
        rig.set_streaming(False)  # talking again
    assert ev is not None, "the board did not latch with the host silent"
    assert ev.cause_name == "watchdog"
    start = events_after(rig, m, defs.EV_WAVEFORM_START)[0]
    delay = ev.t_s - start.t_s
    figure("watchdog_delay_s", delay, "s dev", timeout_s=timeout_s)
    # the command that started the waveform fed the watchdog in the same loop iteration;
    # the latch comes one timeout later, plus at most one loop latency (2 ms x speed)
    assert timeout_s <= delay < timeout_s + 0.002 * bench.speed + 0.01
    end = events_after(rig, m, defs.EV_WAVEFORM_END)
    assert end and end[0].cause_name == "watchdog"
    # the current really is off: readback ~0 and output-off state right after the latch
    rec, t, _ = col.records("elec")
    f = rig.streams["elec"].field("current")
    amps = rec["current"] * f.scale + f.offset
    after = t > ev.t_s + 0.015
    assert after.sum() >= 10
    assert not np.any(rec["state"][after] & defs.ELEC_OUTPUT_ON)
    assert np.all(np.abs(amps[after]) < 0.02 * lim["max_current_a"])
    before = (t > start.t_s + 0.05) & (t < ev.t_s - 0.015)
    assert np.all(np.abs(amps[before] - 0.5 * lim["max_current_a"]) < 0.02 * lim["max_current_a"])
    # every frame after the latch carries FLAG_LATCHED
    assert blocks_after and all(b.flags & defs.FLAG_LATCHED for b in blocks_after)
    st = rig.status()
    assert st.state_name == "latched" and st.latched_cause_name == "watchdog"
    assert st.setpoint_a == 0.0
    with pytest.raises(CommandRefused) as e:
        rig.pulse_train(amplitude_a=1e-5, t_on_s=0.1, t_off_s=0.1, count=1)
    assert e.value.reason_name == "latched" and "watchdog" in e.value.text
    m2 = rig.event_mark()
    rig.clear_fault()
    wait_for(lambda: events_after(rig, m2, defs.EV_FAULT_CLEARED), 5, "fault_cleared")
    _assert_idle_and_off(rig)
    rig.set_watchdog(60.0)


def test_voltage_window_latches_with_cause(bench, rig):
    """Leaving the SET_VOLTAGE_WINDOW window with the output on latches (cause v_max)."""
    imax = rig.hello.limits["max_current_a"]
    rig.set_voltage_window(-1.0, 0.1)  # the NaK cell sits ~0.2 V above OCV at 0.5 imax
    m = rig.event_mark()
    rig.constant_current(current_a=0.5 * imax, cutoffs=Cutoffs(v_min_v=-2.0, v_max_v=2.0))
    ev = rig.wait_event((defs.EV_STOP_LATCHED,), after=m, timeout_s=5)
    assert ev is not None and ev.cause_name == "v_max"
    st = rig.status()
    assert (st.state_name, st.latched_cause_name, st.setpoint_a) == ("latched", "v_max", 0.0)
    rig.clear_fault()  # the output is off, so the condition is gone
    _assert_idle_and_off(rig)


def test_over_temperature_latches_and_clear_refused_while_hot(bench, rig):
    """Over-temperature latches even when idle; CLEAR_FAULT is refused (bad_state) while
    it persists and accepted once the cell has cooled."""
    emu = bench.require_emulator("heats the cell through the plant's ambient temperature")
    lim = rig.hello.limits
    rig.configure_stream("temp", rate_hz=10.0)
    m = rig.event_mark()
    try:
        emu.set_sensor_fault(ambient_c=lim["max_temp_c"] + 10.0)
        ev = rig.wait_event((defs.EV_STOP_LATCHED,), after=m, timeout_s=bench.timeout_s(2))
        assert ev is not None and ev.cause_name == "over_temp"
        with pytest.raises(CommandRefused) as e:
            rig.clear_fault()
        assert e.value.reason_name == "bad_state" and "temperature" in e.value.text
    finally:
        emu.set_sensor_fault(ambient_c=bench.truth["thermal"]["ambient_c"])
    bench.sleep_device(0.5)  # a few temperature readings at the normal ambient
    m2 = rig.event_mark()
    rig.clear_fault()
    wait_for(lambda: events_after(rig, m2, defs.EV_FAULT_CLEARED), 5, "fault_cleared")
    _assert_idle_and_off(rig)


def test_open_thermistor_latches_running_waveform(bench, rig):
    """A sensor that fails while a waveform runs: EV_SENSOR_FAULT then a latched stop."""
    emu = bench.require_emulator("opens the thermistor in the plant")
    imax = rig.hello.limits["max_current_a"]
    rig.configure_stream("temp", rate_hz=10.0)
    m = rig.event_mark()
    try:
        rig.constant_current(current_a=0.3 * imax)
        emu.set_sensor_fault(thermistor="open")
        ev = rig.wait_event((defs.EV_STOP_LATCHED,), after=m, timeout_s=bench.timeout_s(2))
    finally:
        emu.set_sensor_fault(thermistor="ok")
    assert ev is not None and ev.cause_name == "sensor_fault"
    sf = events_after(rig, m, defs.EV_SENSOR_FAULT)
    assert sf and sf[0].index == rig.stream_id("temp")
    bench.sleep_device(0.5)
    rig.clear_fault()
    _assert_idle_and_off(rig)
