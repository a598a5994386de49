"""The stack-pressure hold on the emulated board, against the plant's truth, through a
seed-001-like lithiation of the gain_solid_state cell (Ga-In | Li6PS5Cl | NMC111 in a 9 mm
die): the lithiation to q = 0.85 (4.2 C, through three of seed 001's four phases) at 2 mA
instead of C/20 (the device clock is virtual; the pressure rise depends on the charge
passed, not on its rate: 1.1 MPa open loop at q = 0.85, the cell growing 35 um against a
load path of 2 N/um). Beyond q ~ 0.9 the film saturates and the voltage reaches the
source's compliance at any current the test could afford, which would latch the board.

The board holds 12 MPa (true calibration of the scenario's load cell) to within a step of
the actuator (0.3125 um = 0.0098 MPa) plus the HX711's noise (8e-5 MPa): every true-pressure
reading after the first second is within +-0.1 MPa, and the p99 error is under 0.02 MPa.
The travel the press gave back is the thickness the plant grew: the held pressure plus the
stiffness times the travel is the plant's open-loop pressure (preload creep + dP(q)) to
within a few steps' worth, over the whole lithiation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from boards.emulated.plant import Plant
from host_sdk.calibration import LoadCellCalibration
from host_sdk.client import Block, Cutoffs, Rig
from host_sdk.press_hold import press_hold_changes, press_positions, set_press_hold
from tests.emulator.device_time import run_until

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = json.loads((ROOT / "boards/emulated/scenarios/gain_solid_state.json").read_text())
A = SCENARIO["pressure"]["stack_area_m2"]
LC = SCENARIO["loadcell"]
TRUE_CAL = LoadCellCalibration(float(LC["tare_counts"]), float(LC["span_n_per_count"]))
K_MPA_PER_UM = SCENARIO["press"]["stiffness_n_per_um"] / A * 1e-6
Q_END = SCENARIO["pressure"]["q_end_c"]
CURRENT_A = -2e-3  # lithiation of the anode: insertion, negative current
Q_STOP = 0.85
SETPOINT = 12.0


@pytest.mark.parametrize("sps", [80, 10])
def test_pressure_held_through_a_lithiation(sps: int) -> None:
    try:
        rig = Rig.open(f"emu://gain_solid_state?seed=3&load_sps={sps}")
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    try:
        blocks: list[Block] = []
        rig.on_block(blocks.append)
        rig.configure_stream("load", rate_hz=sps)
        rig.configure_stream("elec", rate_hz=10)
        rig.set_streaming(True)
        mark = rig.event_mark()
        ack = set_press_hold(rig, setpoint_mpa=SETPOINT, stack_area_m2=A, calibration=TRUE_CAL)
        assert ack.applied["kp_um_per_mpa"] == 12.0  # the board's defaults
        duration = Q_STOP * Q_END / abs(CURRENT_A)
        cut = Cutoffs(v_max_v=4.3, max_duration_s=duration)
        rig.constant_current(current_a=CURRENT_A, cutoffs=cut)
        t_end = rig.device_time_s + duration + 2.0
        run_until(rig, t_end)
        ch = press_hold_changes(rig, mark)
        assert [c.what for c in ch] == ["started"], ch  # no runaway, no latched stop
        ws = next(e for e in rig.events[mark:] if e.name == "waveform_start")
        we = next(e for e in rig.events[mark:] if e.name == "waveform_end")
        assert we.cause_name == "duration", we
        load = [b for b in blocks if b.stream == "load"]
        t = np.concatenate([b.t_s for b in load])
        p = TRUE_CAL.force_n(np.concatenate([b.records["counts"] for b in load])) / A * 1e-6
        held = (t > ws.t_s + 1.0) & (t < we.t_s)
        err = p[held] - SETPOINT
        assert held.sum() > 0.95 * sps * (duration - 1.0)
        assert np.abs(err).max() < 0.1, np.abs(err).max()
        assert np.percentile(np.abs(err), 99) < 0.02, np.percentile(np.abs(err), 99)
        # the press backed off as the cell grew: the open-loop pressure the plant would have
        # had at each reading, from the held pressure and the travel (what the press absorbed)
        tx, x = press_positions(rig, mark)
        assert len(tx) > 50
        x_at = np.interp(t[held], tx, x)  # steps are reported within 0.25 s or 16 steps
        predicted = p[held] - K_MPA_PER_UM * x_at
        plant = Plant(SCENARIO)
        q = np.clip((t[held] - ws.t_s) * abs(CURRENT_A) / Q_END, 0.0, 1.0)
        age = SCENARIO["pressure"]["age_at_start_s"]
        truth = np.array(
            [
                plant._preload_pa(tt + age) + plant.pressure_rise_pa(qq)
                for tt, qq in zip(t[held], q, strict=True)
            ]
        )
        truth *= 1e-6
        # 16 steps between reports at most: 0.16 MPa of travel; interpolated, a few steps
        dev = predicted - truth
        assert np.percentile(np.abs(dev), 95) < 0.03, np.percentile(np.abs(dev), 95)
        # the open-loop rise over the lithiation: 1.1 MPa of dP(q) less the preload's creep
        rise = truth[-1] - truth[0]
        assert 0.95 < rise < 1.2, rise
        assert abs((x_at[-1] - x_at[0]) * K_MPA_PER_UM + rise) < 0.05
    finally:
        rig.close()
