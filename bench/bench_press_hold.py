"""pressure_hold_error_mpa_p99: the stack-pressure hold on the emulated board (real firmware,
virtual device time) through a seed-001-like lithiation of the gain_solid_state cell (q 0 ->
0.85 at 2 mA; the pressure rise depends on the charge, not its rate).

Value: the 99th percentile of |true stack pressure - setpoint| over the lithiation (load
readings from 1 s into the step, converted with the scenario's true load-cell calibration),
the board holding 12 MPa with its default gains. Baseline, in the same process: the same
lithiation with the press fixed (no hold), the 99th percentile of |pressure - its value at
the start of the step| (the open-loop rise the hold takes away); ratio = held / open loop.
Reported at 80 SPS (value) and at 10 SPS (`at_10sps`), with the actuator travel the hold
used and the largest error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETPOINT = 12.0
CURRENT_A = -2e-3
Q_STOP = 0.85


def _scenario() -> dict[str, Any]:
    path = ROOT / "boards/emulated/scenarios/gain_solid_state.json"
    return dict(json.loads(path.read_text()))


def _run(sps: int, hold: bool, seed: int) -> dict[str, Any]:
    from host_sdk.calibration import LoadCellCalibration
    from host_sdk.client import Block, Cutoffs, Rig
    from host_sdk.press_hold import press_hold_changes, press_positions, set_press_hold

    sc = _scenario()
    area = float(sc["pressure"]["stack_area_m2"])
    lc = sc["loadcell"]
    cal = LoadCellCalibration(float(lc["tare_counts"]), float(lc["span_n_per_count"]))
    duration = Q_STOP * float(sc["pressure"]["q_end_c"]) / abs(CURRENT_A)
    blocks: list[Block] = []
    wall = time.perf_counter()
    with Rig.open(f"emu://gain_solid_state?seed={seed}&load_sps={sps}") as rig:
        rig.on_block(blocks.append)
        rig.configure_stream("load", rate_hz=sps)
        rig.configure_stream("elec", rate_hz=10)
        rig.set_streaming(True)
        mark = rig.event_mark()
        if hold:
            set_press_hold(rig, setpoint_mpa=SETPOINT, stack_area_m2=area, calibration=cal)
        rig.constant_current(
            current_a=CURRENT_A, cutoffs=Cutoffs(v_max_v=4.3, max_duration_s=duration)
        )
        end = rig.device_time_s + duration + 2.0
        last = (rig.device_time_s, time.monotonic())
        while rig.device_time_s < end:
            time.sleep(0.05)
            if rig.device_time_s != last[0]:
                last = (rig.device_time_s, time.monotonic())
            if time.monotonic() - last[1] > 120:
                raise RuntimeError("device time stopped")
        ev = rig.events[mark:]
        ws = next(e for e in ev if e.name == "waveform_start")
        we = next(e for e in ev if e.name == "waveform_end")
        changes = press_hold_changes(rig, mark)
        tx, x = press_positions(rig, mark)
    load = [b for b in blocks if b.stream == "load"]
    t = np.concatenate([b.t_s for b in load])
    p = cal.force_n(np.concatenate([b.records["counts"] for b in load])) / area * 1e-6
    m = (t > ws.t_s + 1.0) & (t < we.t_s)
    ref = SETPOINT if hold else float(np.median(p[m][:sps]))
    dev = np.abs(p[m] - ref)
    return {
        "p99_mpa": float(np.percentile(dev, 99)),
        "max_mpa": float(dev.max()),
        "rise_mpa": float(p[m][-sps:].mean() - p[m][:sps].mean()),
        "travel_um": float(x.min() - x.max()) if len(x) else 0.0,
        "end": we.cause_name,
        "hold_events": [c.what for c in changes],
        "device_s": float(we.t_s - ws.t_s),
        "wall_s": time.perf_counter() - wall,
    }


def _case(sps: int) -> dict[str, Any]:
    held = _run(sps, True, 11)
    open_loop = _run(sps, False, 11)
    for name, r in (("held", held), ("open loop", open_loop)):
        print(f"   {sps} SPS {name}: " + json.dumps(r), flush=True)
    return {
        "sps": sps,
        "p99_mpa": held["p99_mpa"],
        "open_loop_p99_mpa": open_loop["p99_mpa"],
        "ratio": held["p99_mpa"] / open_loop["p99_mpa"],
        "held": held,
        "open_loop": open_loop,
    }


def run() -> list[dict[str, Any]]:
    fast = _case(80)
    slow = _case(10)
    return [
        {
            "name": "pressure_hold_error_mpa_p99",
            "value": fast["p99_mpa"],
            "unit": "MPa",
            "baseline": fast["open_loop_p99_mpa"],
            "ratio": fast["ratio"],
            "at_80sps": fast,
            "at_10sps": slow,
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
