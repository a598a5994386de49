"""Current derating by pressure rate from protocol files: the `derate` table is validated
(field, value, range; current steps only; the stack area needed), and `stressrig run` arms
it on the emulated board for its step only. The plant's stack pressure creeps down at
creep / (tau + t) = 0.15 MPa / (600 s + t) (boards/emulated/scenarios/nak50_pulsed.json),
about 2.4e-4 MPa/s in the first minute: over a limit of 1.5e-4 MPa/s, so the board derates
the step's current on the plant's own creep, and the next step (no table) runs at full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host_sdk import cli
from host_sdk.protocols import ProtocolError, parse_protocol
from host_sdk.recording import load_recording
from protocol import defs

URL = "emu://nak50_pulsed?load_sps=10&fbg_hz=1&seed=3"


def _data(derate: str, kind: str = "constant") -> dict:
    import tomllib

    return tomllib.loads(
        "[cell]\nstack_diameter_m = 0.012\n"
        f'[[steps]]\nkind = "{kind}"\ncurrent_a = 1e-4\ncutoff = {{ max_duration_s = 5 }}\n'
        f"derate = {derate}\n"
    )


def test_a_derate_table_with_its_defaults() -> None:
    p = parse_protocol(_data("{ limit_mpa_per_s = 0.2 }"))
    assert p.steps[0].params["derate"] == {
        "limit_mpa_per_s": 0.2,
        "resume_mpa_per_s": 0.1,
        "scale": 0.5,
        "window_n": 16,
    }


@pytest.mark.parametrize(
    ("table", "path", "words"),
    [
        ("{ scale = 0.5 }", "steps[0].derate.limit_mpa_per_s", "missing"),
        ("{ limit_mpa_per_s = 0 }", "steps[0].derate.limit_mpa_per_s", "(0, 1000] MPa/s"),
        (
            "{ limit_mpa_per_s = 0.2, resume_mpa_per_s = 0.3 }",
            "steps[0].derate.resume_mpa_per_s",
            "below limit_mpa_per_s = 0.2",
        ),
        ("{ limit_mpa_per_s = 0.2, scale = 1.0 }", "steps[0].derate.scale", "scale < 1"),
        ("{ limit_mpa_per_s = 0.2, window_n = 2 }", "steps[0].derate.window_n", "[3, 64]"),
        ("{ limit_mpa_per_s = 0.2, window_n = 8.5 }", "steps[0].derate.window_n", "integer"),
        ("{ limit_mpa_per_s = 0.2, rate = 1 }", "steps[0].derate.rate", "unknown field"),
    ],
)
def test_bad_derate_tables_name_the_field(table: str, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(_data(table))
    assert any(err.startswith(path + ":") and words in err for err in e.value.errors), (
        e.value.errors
    )


def test_derate_only_on_current_steps_and_with_the_stack_area() -> None:
    import tomllib

    data = tomllib.loads(
        '[[steps]]\nkind = "rest"\nduration_s = 1.0\nderate = { limit_mpa_per_s = 0.2 }\n'
        '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 5 }\n'
        "derate = { limit_mpa_per_s = 0.2 }\n"
    )
    with pytest.raises(ProtocolError) as e:
        parse_protocol(data)
    errs = e.value.errors
    assert any(x.startswith("steps[0].derate: only on current steps") for x in errs), errs
    assert any(x.startswith("cell.stack_area_m2: missing") for x in errs), errs


def test_cli_run_derates_on_the_plants_creep_for_its_step_only(tmp_path: Path) -> None:
    proto = tmp_path / "derate.toml"
    proto.write_text(
        "[cell]\nstack_diameter_m = 0.012\n"
        "[streams]\nload = { rate_hz = 10 }\nelec = { rate_hz = 50 }\n"
        '[[steps]]\nkind = "constant"\ncurrent_a = 2e-4\ncutoff = { max_duration_s = 6 }\n'
        "derate = { limit_mpa_per_s = 1.5e-4, scale = 0.25, window_n = 16 }\n"
        '[[steps]]\nkind = "constant"\ncurrent_a = 2e-4\ncutoff = { max_duration_s = 3 }\n'
    )
    out = tmp_path / "derate.h5"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    rec = load_recording(out)
    ev = rec.events
    der = ev[ev["code"] == defs.EV_DERATE]
    # derated once the window of 16 readings (1.6 s at 10 SPS; armed just before the step)
    # is full; the runner clears
    # it after the step (no event: clearing restores the scale silently)
    assert len(der) == 1 and der[0]["index"] == 1 and der[0]["cause"] == defs.CAUSE_PRESSURE_RATE
    steps = rec.steps
    t_der = float(der[0]["t_dev_s"])
    # armed before the step's waveform: with a slow host the window can fill (and the
    # board derate) before the waveform starts; never later than a window into the step
    assert t_der < float(steps[0]["t_start_s"]) + 2.0
    # the board's estimate is the creep's rate (counts/s; the load span is 0.2 mN a count)
    rate_mpa = abs(float(der[0]["value"])) * 0.0002037 / 1.131e-4 / 1e6
    assert 1.5e-4 < rate_mpa < 3.5e-4, rate_mpa
    elec = rec.streams["elec"]
    t_e = elec.t_s
    i_e = elec.physical("current")
    st = elec.records["state"]
    s0 = (t_e > float(steps[0]["t_start_s"]) + 2.5) & (t_e < float(steps[0]["t_end_s"]) - 0.1)
    s1 = (t_e > float(steps[1]["t_start_s"]) + 0.1) & (t_e < float(steps[1]["t_end_s"]) - 0.1)
    assert s0.sum() > 50 and s1.sum() > 50
    assert abs(np.median(i_e[s0]) / 2e-4 - 0.25) < 0.02
    assert abs(np.median(i_e[s1]) / 2e-4 - 1.0) < 0.02
    assert (st[s0] & defs.ELEC_DERATED).all() and not (st[s1] & defs.ELEC_DERATED).any()
