"""The pressure interlock on the emulated board: the press is opened under a running
waveform (the plant's stack force leaves the load cell), the board suspends the current on
the very load reading that left the window and resumes when the press closes; with
action "end" from a protocol file the step ends with cause pressure and the run goes on."""

from __future__ import annotations

import time

import numpy as np
import pytest

from host_sdk.client import Block, Cutoffs, Rig
from host_sdk.interlock import set_pressure_interlock
from host_sdk.protocols import parse_protocol, run_protocol
from protocol import defs

URL = "emu://nak50_pulsed?seed=5&load_sps=80&fbg_hz=1"
STACK_M2 = 1.131e-4  # the scenario's 10 MPa on 1.131 cm²


def _held_at(rig: Rig, t_dev_s: float) -> float:
    """Wait until the emulated board stands at a hold at `t_dev_s`: its STATUS, answered at
    the frozen time, stops moving close to it. Returns the board's device time there."""
    deadline = time.monotonic() + 120
    last = -1.0
    while True:
        rig.status()
        now = rig.device_time_s
        if now == last and now >= t_dev_s - 0.2:
            return now
        last = now
        assert time.monotonic() < deadline, "the board did not reach the hold"
        time.sleep(0.05)


@pytest.fixture
def rig() -> Rig:
    try:
        r = Rig.open(URL)
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    yield r
    r.close()


def test_open_press_suspends_on_the_reading_that_left_the_window_and_resumes(rig: Rig) -> None:
    blocks: list[Block] = []
    rig.on_block(blocks.append)
    rig.configure_stream("load", rate_hz=80)
    rig.configure_stream("elec", rate_hz=100)
    rig.set_streaming(True)
    set_pressure_interlock(
        rig, p_min_mpa=9.0, p_max_mpa=11.0, hysteresis_mpa=0.2, stack_area_m2=STACK_M2
    )
    mark = rig.event_mark()
    # the press opens and closes at held device times, however slow the host is
    emu = rig.emulator
    emu.hold(rig.device_time_s)
    rig.constant_current(current_a=2e-4, cutoffs=Cutoffs(max_duration_s=6.0))
    # the waveform's own start, not the host's latest device time: a busy host can be
    # behind the hold by more than the 0.1 s margin below (failed in CI that way)
    start = rig.wait_event((defs.EV_WAVEFORM_START,), after=mark, timeout_s=60)
    assert start is not None, "the waveform did not start"
    t0 = start.t_s
    emu.hold(t0 + 2.0)
    t_open = _held_at(rig, t0 + 2.0)
    emu.open_press(True)
    emu.hold(t0 + 3.5)
    t_close = _held_at(rig, t0 + 3.5)
    emu.open_press(False)
    emu.release()
    end = rig.wait_event((defs.EV_WAVEFORM_END,), after=mark, timeout_s=60)
    assert end is not None and end.cause == defs.CAUSE_DURATION
    assert rig.wait_data(end.t_s, ["load", "elec"]), "the streams fell silent"
    il = [e for e in rig.events[mark:] if e.code == defs.EV_INTERLOCK]
    if il and il[0].index == 0:  # the report of the first reading after arming, if late
        il = il[1:]
    assert [(e.index, e.cause) for e in il] == [(1, defs.CAUSE_PRESSURE), (0, defs.CAUSE_PRESSURE)]
    t_out, t_in = il[0].t_s, il[1].t_s
    assert t_open <= t_out < t_close <= t_in
    # truth from the load cell's own records (the force the plant put on it): the board
    # acted on the first reading outside the window, and on the first one back in the band
    load = [b for b in blocks if b.stream == "load"]
    t_l = np.concatenate([b.t_s for b in load])
    c_l = np.concatenate([b.records["counts"] for b in load]).astype(float)
    field = next(f for f in rig.streams["load"].fields if f.name == "counts")
    p_mpa = (c_l * field.scale + field.offset) / STACK_M2 / 1e6
    run = (t_l >= t0) & (t_l < t_out)
    assert run.sum() > 100 and ((p_mpa[run] >= 9.0) & (p_mpa[run] <= 11.0)).all()
    k = int(np.argmin(np.abs(t_l - t_out)))
    assert abs(t_l[k] - t_out) < 1e-3 and c_l[k] == il[0].value and p_mpa[k] < 9.0
    away = (t_l > t_out) & (t_l < t_in)
    assert not ((p_mpa[away] >= 9.2) & (p_mpa[away] <= 10.8)).any()
    k = int(np.argmin(np.abs(t_l - t_in)))
    assert abs(t_l[k] - t_in) < 1e-3 and 9.2 <= p_mpa[k] <= 10.8
    elec = [b for b in blocks if b.stream == "elec"]
    t_e = np.concatenate([b.t_s for b in elec])
    st = np.concatenate([b.records["state"] for b in elec])
    off = (t_e > t_out + 0.02) & (t_e < t_in - 0.02)
    on = ((t_e > t0 + 0.1) & (t_e < t_out - 0.02)) | ((t_e > t_in + 0.02) & (t_e < end.t_s))
    assert off.sum() > 100 and not (st[off] & defs.ELEC_OUTPUT_ON).any()
    assert (st[on] & defs.ELEC_OUTPUT_ON).all()


def test_protocol_step_ends_on_the_interlock_and_the_run_goes_on(rig: Rig) -> None:
    import tomllib

    proto = parse_protocol(
        tomllib.loads(
            """
[cell]
stack_diameter_m = 0.012
[streams]
load = { rate_hz = 80 }
elec = { rate_hz = 50 }
[[steps]]
kind = "constant"
current_a = 2e-4
cutoff = { max_duration_s = 30.0 }
interlock = { p_min_mpa = 9.0, p_max_mpa = 11.0, hysteresis_mpa = 0.2, action = "end" }
[[steps]]
kind = "rest"
duration_s = 1.0
"""
        )
    )

    ramp: list[float] = []

    def on_step(i: int, _step: object) -> None:
        if i == 0:  # the press lets go under the first step, at a set device time
            emu = rig.emulator
            # no device time passes while the drop is scheduled (a host slowed down by a
            # busy machine could otherwise schedule it after the step's 30 s are over)
            emu.hold(rig.device_time_s)
            rig.status()  # the board's own time (the host's view lags by a frame)
            t0 = rig.device_time_s + 1.0
            emu.ramp_force(-1000.0, t0, t0 + 0.5)  # 500 N: 10 -> 5.6 MPa on the 12 mm die
            emu.release()
            ramp.append(t0)

    res = run_protocol(rig, proto, on_step=on_step)
    assert res.completed
    assert [s.end_cause for s in res.steps] == ["pressure", "completed"]
    # the window is left during the 0.5 s drop (1 MPa is 113 N, 0.11 s of it)
    assert ramp[0] < res.steps[0].t_end_s < ramp[0] + 1.0
