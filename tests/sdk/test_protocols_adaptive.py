"""Adaptive rests from protocol files: validation names field, value and range; a file runs
on the emulated board through the SDK runner and the CLI, and the recording holds the
board's rest_end decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host_sdk import cli
from host_sdk.analysis.rests import plot_rest_decisions, rest_decisions
from host_sdk.protocols import ProtocolError, load_protocol, parse_protocol
from host_sdk.recording import load_recording

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed004_adaptive_rests.toml"
URL = "emu://nak50_pulsed?load_sps=10&fbg_hz=1&seed=2"


def _steps(*steps: str) -> dict:
    import tomllib

    return tomllib.loads("\n".join(f"[[steps]]\n{s}" for s in steps))


def test_the_example_loads_with_its_settle_tables() -> None:
    p = load_protocol(EXAMPLE)
    kinds = [s.kind for s in p.steps]
    assert kinds == ["adaptive_rest", "adaptive_pulses"]
    pulses = p.steps[1]
    assert pulses.params["settle"] == {
        "dvdt_v_per_s": 5e-4,
        "hold_s": 0.5,
        "min_s": 0.2,
        "max_s": 20.0,
        "window_s": 0.5,
    }
    assert pulses.nominal_duration_s() == pytest.approx(65535 * 21.0)
    assert pulses.params["interlock"] == {
        "p_min_mpa": 9.0,
        "p_max_mpa": 11.0,
        "hysteresis_mpa": 0.2,
        "action": "suspend",
    }


@pytest.mark.parametrize(
    ("table", "path", "words"),
    [
        ("{ p_max_mpa = 11 }", "steps[0].interlock.p_min_mpa", "missing"),
        ("{ p_min_mpa = 11, p_max_mpa = 9 }", "steps[0].interlock", "must be below"),
        (
            "{ p_min_mpa = 9, p_max_mpa = 11, hysteresis_mpa = 1.0 }",
            "steps[0].interlock.hysteresis_mpa",
            "below half the window (1 MPa)",
        ),
        (
            '{ p_min_mpa = 9, p_max_mpa = 11, action = "stop" }',
            "steps[0].interlock.action",
            "suspend, end",
        ),
    ],
)
def test_bad_interlocks_name_the_field(table: str, path: str, words: str) -> None:
    data = _steps(f'kind = "rest"\nduration_s = 1.0\ninterlock = {table}')
    data["cell"] = {"stack_diameter_m": 0.012}
    with pytest.raises(ProtocolError) as e:
        parse_protocol(data)
    assert any(err.startswith(path) and words in err for err in e.value.errors), e.value.errors


def test_an_interlock_needs_the_stack_area() -> None:
    data = _steps('kind = "rest"\nduration_s = 1.0\ninterlock = { p_min_mpa = 9, p_max_mpa = 11 }')
    with pytest.raises(ProtocolError) as e:
        parse_protocol(data)
    assert any(err.startswith("cell.stack_area_m2: missing") for err in e.value.errors)


@pytest.mark.parametrize(
    ("step", "path", "words"),
    [
        (
            'kind = "adaptive_rest"\nsettle = { max_s = 10 }',
            "steps[0].settle.dvdt_v_per_s",
            "missing",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 0.0, max_s = 10 }',
            "steps[0].settle.dvdt_v_per_s",
            "(0, 10] V/s",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, hold_s = 11 }',
            "steps[0].settle.hold_s",
            "longer than max_s",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, wait_s = 1 }',
            "steps[0].settle.wait_s",
            "unknown field",
        ),
        (
            'kind = "adaptive_pulses"\nt_on_s = 1.0\ncount = 3\n'
            "settle = { dvdt_v_per_s = 1e-3, max_s = 10 }",
            "steps[0]",
            "exactly one of current_a",
        ),
        ('kind = "adaptive_pulses"\ncurrent_a = 1e-4\ncount = 3', "steps[0].settle", "missing"),
    ],
)
def test_bad_settle_settings_name_the_field(step: str, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(_steps(step))
    assert any(err.startswith(path + ":") and words in err for err in e.value.errors), (
        e.value.errors
    )


def test_cli_runs_adaptive_rests_and_records_the_decisions(tmp_path: Path) -> None:
    proto = tmp_path / "adaptive.toml"
    proto.write_text(
        "[streams]\nelec = { rate_hz = 100 }\n"
        '[[steps]]\nkind = "adaptive_pulses"\ncurrent_a = 3e-4\nt_on_s = 1.0\ncount = 3\n'
        "settle = { dvdt_v_per_s = 5e-4, hold_s = 0.5, max_s = 30.0 }\n"
        '[[steps]]\nkind = "adaptive_rest"\n'
        "settle = { dvdt_v_per_s = 1e-3, hold_s = 1.0, min_s = 2.0, max_s = 30.0 }\n"
    )
    out = tmp_path / "adaptive.h5"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    rec = load_recording(out)
    rests = rest_decisions(rec)
    assert len(rests) == 4 and rests.settled.all()  # 3 pulses' rests + the final rest
    lengths = rests.length_s
    # after 1 s at 0.3 mA the plant needs ~5 s to fall to 0.5 mV/s (test_adaptive_rest_truth)
    assert all(4.0 < x < 8.0 for x in lengths[:3]), lengths
    assert 2.0 <= lengths[3] < 30.0
    assert list(rests.pulse) == [0, 1, 2, 0]
    assert [bytes(s["end_cause"]).decode() for s in rec.steps] == ["completed", "settled"]
    assert rests.summary()["length_s"]["total"] == pytest.approx(float(lengths.sum()))
    png = plot_rest_decisions(rests, tmp_path / "rests.png", planned_rest_s=5.0)
    assert png.stat().st_size > 1000


def test_analyze_shows_the_rests_the_board_chose_and_the_critical_capacity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A few pulses at 1.8 mA cm⁻² reach 3 V on the emulated NaK cell (about 100 s of device
    time), then a rest whose criterion cannot hold within its 2 s maximum: its first dV/dt
    estimate needs two 0.5 s windows, then 1.5 s of hold (with a 1 s hold it settled
    whenever the host's lag between the steps had let the cell relax completely)."""
    proto = tmp_path / "adaptive_cut.toml"
    proto.write_text(
        "[cell]\narea_m2 = 3.85e-5\n"
        "[streams]\nelec = { rate_hz = 100 }\nfbg = { enabled = false }\n"
        '[[steps]]\nkind = "adaptive_pulses"\ncurrent_a_m2 = 18.0\nt_on_s = 1.0\ncount = 40\n'
        "settle = { dvdt_v_per_s = 5e-4, hold_s = 0.5, min_s = 0.2, max_s = 20.0 }\n"
        "cutoff = { v_max_v = 3.0 }\n"
        '[[steps]]\nkind = "adaptive_rest"\n'
        "settle = { dvdt_v_per_s = 1e-5, hold_s = 1.5, max_s = 2.0 }\n"
    )
    rec, out = tmp_path / "cut.h5", tmp_path / "cut_analysis"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(rec), "--no-progress"]) == 0
    assert cli.main(["analyze", str(rec), "--out", str(out), "--formats", "png"]) == 0
    assert "adaptive rests:" in capsys.readouterr().out
    n = json.loads((out / "summary.json").read_text())["adaptive_rests"]
    pulses, last = n["series"]
    assert pulses["end_cause"] == "v_max" and 2 <= pulses["count"] < 40
    assert pulses["settled"] == pulses["count"]
    assert all(0.2 <= pulses["length_s"][k] <= 20.0 for k in ("min", "max"))
    assert last["count"] == 1 and last["at_max"] == 1
    assert last["length_s"]["max"] == pytest.approx(2.0, abs=0.02)
    assert (n["count"], n["at_max"]) == (pulses["count"] + 1, 1)
    area = 3.85e-5
    assert pulses["critical_capacity_mah_cm2"] == pytest.approx(pulses["charge_c"] / area / 36_000)
    # the scenario's film in the planner: fixed rests as long as the board's median give
    # about the capacity the board measured with its own rests. Only about: at 1.8 mA cm⁻²
    # ten pulses sit on the steep part of capacity vs rest (the planner's capacity changes
    # by ~40 % between 8 and 10 s of rest), and the board's rests vary by a window (0.5 s)
    planner = pulses["planner"]
    assert "emulated scenario's film" in planner["film"] and planner["recommended_rest_s"] > 0
    ratio = planner["capacity_at_median_rest_mah_cm2"] / pulses["critical_capacity_mah_cm2"]
    assert 0.5 < ratio < 2.0, ratio
    assert (out / "rest_decisions.png").stat().st_size > 10_000
