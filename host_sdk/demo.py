"""`stressrig demo`: the whole path on an emulated board in a few seconds.

An emulated NaK50 | NASICON cell (seed 004: 0.385 cm² electrode in a 12 mm press at
10 MPa) first has its load cell calibrated with known masses (the emulated press places
them), then is stripped with 1 s current pulses until 3 V, once per rest time, each series
on a fresh cell (the protocol's `fresh_cell = true`: the emulated board puts its simulated
cell back to new before each series, as the paper used a new cell each time). Everything
is recorded to HDF5, analysed per step (critical stripping capacity vs rest time with the
planner's prediction, voltage/current, stack pressure over the stack area), and written
to the output folder with the protocol that ran, the calibration and a summary.json.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

DEMO_SCENARIO = "nak50_pulsed"
DEMO_SPEED = "max"  # virtual device time: as fast as this computer allows, nothing lost
# The demo needs neither the load cell at 80 SPS nor the interrogator at 100 Hz; the
# emulated parts convert whether or not their stream is sent, so slow them down and let
# the clock run faster.
DEMO_PARTS = "load_sps=10&fbg_hz=1"
# seed 004 Fig. 4c: 1 s pulses at 1 mA cm⁻², longer rests until the capacity levels off
DEMO_RESTS_S = (0.5, 1.0, 2.0, 4.0)
DEMO_CURRENT_A_M2 = 10.0
DEMO_MASSES_KG = (0.0, 1.0, 2.0, 5.0)  # the load-cell calibration, placed by the press
G_M_S2 = 9.80665

DEMO_PROTOCOL = """\
# The demo's pulsed-stripping series (seed 004 style): 1 s pulses at {i_ma_cm2:g} mA cm^-2,
# a different rest between pulses in each series, each series until 3 V on a fresh cell.
[protocol]
name = "demo-pulsed-stripping"
description = "1 s pulses at {i_ma_cm2:g} mA/cm2, rests {rests} s, until 3 V; fresh cell each"
source = "stressrig demo (after seed 004)"

[cell]
area_m2 = 3.85e-5             # the electrode: 7 mm i.d. O-ring
stack_diameter_m = 0.012      # the pressed stack the load cell measures (10 MPa)
label = "NaK50 | NASICON | Na (emulated)"

[safety]
v_min_v = -1.0
v_max_v = 3.5
watchdog_s = 30.0

[streams]
elec = {{ rate_hz = 20 }}
load = {{ rate_hz = 10 }}
temp = {{ rate_hz = 1 }}
fbg = {{ enabled = false }}
{steps}"""

STEP = """
[[steps]]
kind = "rest"
label = "open circuit, fresh cell"
fresh_cell = true
duration_s = 5.0

[[steps]]
kind = "pulse_train"
label = "rest {rest:g} s"
current_a_m2 = {i:g}
t_on_s = 1.0
t_off_s = {rest:g}
count = 65535
cutoff = {{ v_max_v = 3.0 }}
"""


def demo_protocol_text(
    rests_s: tuple[float, ...] = DEMO_RESTS_S, current_a_m2: float = DEMO_CURRENT_A_M2
) -> str:
    steps = "".join(STEP.format(rest=r, i=current_a_m2) for r in rests_s)
    return DEMO_PROTOCOL.format(
        i_ma_cm2=current_a_m2 / 10.0, rests=", ".join(f"{r:g}" for r in rests_s), steps=steps
    )


def _calibrate_load_cell(rig: Any, protocol: Any, say: Any) -> Any:
    """Tare and span from known masses the emulated press places (press opened)."""
    from host_sdk.calibration import (
        Calibration,
        emulated_press_loads,
        fit_load_cell,
        nominal_span,
    )

    loads = [m * G_M_S2 for m in DEMO_MASSES_KG]
    counts = emulated_press_loads(rig, loads, 1.0)
    lc = fit_load_cell(counts, loads, nominal_n_per_count=nominal_span(rig.hello))
    say(
        f"load cell calibrated with {len(loads)} masses: span {lc.span_n_per_count:.6g} "
        f"N/count, tare {lc.tare_counts:.0f} counts"
    )
    return Calibration(
        load_cell=lc,
        stack_area_m2=protocol.stack_area_m2,
        electrode_area_m2=protocol.area_m2,
        unique_id=rig.unique_id,
        created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        notes="stressrig demo: masses placed by the emulated press",
    )


def run_demo(
    out_dir: Path,
    *,
    speed: float | str | None = None,
    seed: int = 1,
    rests_s: tuple[float, ...] = DEMO_RESTS_S,
    current_a_m2: float = DEMO_CURRENT_A_M2,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the demo into `out_dir`; returns the analysis summary (also in summary.json)."""
    from host_sdk.client import Rig, RigError
    from host_sdk.protocols import parse_protocol, run_protocol
    from host_sdk.recording import Recorder
    from host_sdk.recording.analyze import analyze_recording

    def say(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    t_wall = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = demo_protocol_text(rests_s, current_a_m2)
    (out / "protocol.toml").write_text(text, encoding="utf-8")
    full = parse_protocol(tomllib.loads(text), str(out / "protocol.toml"))
    url = f"emu://{DEMO_SCENARIO}?speed={speed or DEMO_SPEED}&seed={seed}&{DEMO_PARTS}"
    rec_path = out / "recording.h5"
    say(f"starting the emulated board: {url}")
    with Rig.open(url) as rig:
        say(
            f"board {rig.board_id} {rig.unique_id}, firmware "
            f"{'.'.join(map(str, rig.firmware_version))} on {rig.link.device}"
        )
        cal = _calibrate_load_cell(rig, full, say)
        cal.save(out / "calibration.json")
        rec = Recorder.attach(
            rig,
            rec_path,
            protocol=full.to_dict(),
            calibration=cal.to_dict(),
            cell={
                "electrode_area_m2": full.area_m2,
                "stack_area_m2": full.stack_area_m2,
                "label": str(full.cell.get("label", "")),
            },
            meta={"demo": True, "url": url},
        )
        t0 = time.monotonic()
        try:
            result = run_protocol(rig, full, recorder=rec)
        finally:
            rec.close(lost_samples=rig.lost_samples, board_reboots=rig.boots)
        for step in result.steps:
            if step.kind == "pulse_train":
                say(
                    f"  series '{step.label}' on a fresh cell: ended by {step.end_cause} "
                    f"after {step.t_end_s - step.t_start_s:.0f} s device time"
                )
        if not result.completed and result.outcome is not None:
            raise RigError(f"the demo's protocol did not complete: {result.outcome.line()}")
        say(f"  {len(rests_s)} series in {time.monotonic() - t0:.1f} s wall")
    say("analysing ...")
    summary = analyze_recording(rec_path, out)
    summary["demo"] = {
        "url": url,
        "wall_s": time.monotonic() - t_wall,
        "recording": str(rec_path),
        "protocol": str(out / "protocol.toml"),
        "calibration": str(out / "calibration.json"),
    }
    sp = summary.get("stack_pressure")
    if sp:
        say(
            f"  stack pressure {sp['mean_mpa']:.2f} MPa (mean; force over the "
            f"{sp['stack_area_m2'] * 1e6:.1f} mm² stack, {sp['calibration']} calibration)"
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    for row in summary.get("pulsed_stripping", []):
        if "capacity_mah_cm2" in row:
            say(
                f"  rest {row.get('rest_s', float('nan')):g} s: critical stripping capacity "
                f"{row['capacity_mah_cm2'] * 1000:.2f} µAh cm⁻² ({row['pulses']} pulses, "
                f"{row['end_cause']})"
            )
    say(f"recording: {rec_path.resolve()}")
    for p in summary["plots"]:
        say(f"plot:      {Path(p).resolve()}")
    say(f"summary:   {(out / 'summary.json').resolve()}")
    say(f"done in {time.monotonic() - t_wall:.0f} s")
    return summary
