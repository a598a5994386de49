"""`analyze_recording` on a stack-pressure hold (issue 14): a protocol run on the emulated
gain_solid_state board (press stiffness 2 N/um) holds 12 MPa through a lithiation; the
analysis finds the hold, measures its error against the setpoint and draws the pressure
held vs open loop, whose open-loop rise (held - k travel / A) is the plant's own dP(q) over
the step (q 0 -> 0.0612 in seed 001's first phase, 3.5 MPa per unit q: 0.214 MPa, less
the preload's creep, about 0.001 MPa over 150 s). With the emulated board's host
calibration the setpoint is on the recorded scale; a hold with no pressure recorded is
refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host_sdk import cli
from host_sdk.recording.analyze import analyze_recording

URL = "emu://gain_solid_state?load_sps=80&seed=9"


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hold")
    proto = tmp / "hold.toml"
    proto.write_text(
        "[cell]\nstack_diameter_m = 0.009\n"
        "[streams]\nload = { rate_hz = 80 }\nelec = { rate_hz = 10 }\n"
        '[[steps]]\nkind = "constant"\ncurrent_a = -2e-3\ncutoff = { max_duration_s = 150 }\n'
        "press_hold = { setpoint_mpa = 12.0 }\n"
    )
    out = tmp / "hold.h5"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    return out


def test_pressure_held_vs_open_loop(held: Path, tmp_path: Path) -> None:
    summary = analyze_recording(held, tmp_path, formats=("png", "pdf", "svg"))
    done = [a for a in summary["analyses"] if a["analysis"] == "pressure held vs open loop"]
    assert len(done) == 1, summary.get("refused")
    num = done[0]["numbers"]
    assert num["stiffness_n_per_um"] == 2.0 and "emulated" in num["stiffness_source"]
    (h,) = num["holds"]
    assert h["end_cause"] == "host_stop"  # the runner stopped it after the step
    # the board's setpoint (its nominal calibration) put on the recording's scale
    assert abs(h["setpoint_mpa"] - 12.0) < 0.1
    assert h["error_mpa"]["p99"] < 0.02 and h["error_mpa"]["max"] < 0.1
    # the press first closed in to the setpoint (the stack was below it), then backed off
    # as the cell grew: ~7 um (0.214 MPa x 63.6 mm^2 / 2 N/um)
    tr = h["travel_um"]
    assert tr["max"] > 0 and -8.5 < tr["end"] - tr["max"] < -5.5, tr
    assert abs(h["open_loop_rise_mpa"] - 0.213) < 0.03, h["open_loop_rise_mpa"]
    for ext in ("png", "pdf", "svg"):
        assert (tmp_path / f"pressure_held.{ext}").stat().st_size > 1000
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert any(f["name"] == "pressure_held" for f in saved["figures"])
