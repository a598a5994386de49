"""The stack-pressure hold from protocol files: the `press_hold` table is validated (field,
value, range; the stack area needed), a board without a press actuator is refused before
the run, and `stressrig run` holds the pressure on the emulated gain_solid_state board for
the steps that carry the table, then stops the hold (the actuator stays where it got to)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from host_sdk import cli
from host_sdk.protocols import ProtocolError, parse_protocol
from host_sdk.recording import load_recording
from protocol import defs

URL = "emu://gain_solid_state?load_sps=80&seed=5"


def _data(table: str, cell: str = "[cell]\nstack_diameter_m = 0.009\n") -> dict:
    return tomllib.loads(
        cell + f'[[steps]]\nkind = "rest"\nduration_s = 5.0\npress_hold = {table}\n'
    )


def test_a_press_hold_table() -> None:
    p = parse_protocol(_data("{ setpoint_mpa = 12.0, stiffness_n_per_um = 2.0 }"))
    assert p.steps[0].params["press_hold"] == {"setpoint_mpa": 12.0, "stiffness_n_per_um": 2.0}


@pytest.mark.parametrize(
    ("table", "path", "words"),
    [
        ("{ max_error_mpa = 0.2 }", "steps[0].press_hold.setpoint_mpa", "missing"),
        ("{ setpoint_mpa = 0 }", "steps[0].press_hold.setpoint_mpa", "(0, 1000] MPa"),
        ("{ setpoint_mpa = 12, runaway_s = -1 }", "steps[0].press_hold.runaway_s", "(0, 3600] s"),
        ("{ setpoint_mpa = 12, speed = 3 }", "steps[0].press_hold", "speed"),
        (
            "{ setpoint_mpa = 12, stiffness_n_per_um = 2, kp_um_per_mpa = 5 }",
            "steps[0].press_hold.stiffness_n_per_um",
            "either",
        ),
    ],
)
def test_bad_press_hold_tables_name_the_field(table: str, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(_data(table))
    assert any(err.startswith(path) and words in err for err in e.value.errors), e.value.errors


def test_press_hold_needs_the_stack_area() -> None:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(_data("{ setpoint_mpa = 12 }", cell=""))
    assert any(x.startswith("cell.stack_area_m2: missing") for x in e.value.errors)


def test_a_board_without_a_press_is_refused_before_the_run(tmp_path: Path) -> None:
    proto = tmp_path / "hold.toml"
    proto.write_text(
        "[cell]\nstack_diameter_m = 0.009\n"
        '[[steps]]\nkind = "rest"\nduration_s = 1.0\npress_hold = { setpoint_mpa = 12 }\n'
    )
    out = tmp_path / "hold.h5"
    url = "emu://nak50_pulsed?load_sps=10&fbg_hz=1"
    assert cli.main(["run", str(proto), "--port", url, "--out", str(out), "--no-progress"]) != 0


def test_cli_run_holds_the_pressure_for_its_steps_only(tmp_path: Path) -> None:
    proto = tmp_path / "hold.toml"
    proto.write_text(
        "[cell]\nstack_diameter_m = 0.009\n"
        "[streams]\nload = { rate_hz = 80 }\nelec = { rate_hz = 10 }\n"
        '[[steps]]\nkind = "rest"\nduration_s = 5.0\npress_hold = { setpoint_mpa = 12.0 }\n'
        '[[steps]]\nkind = "constant"\ncurrent_a = -2e-3\ncutoff = { max_duration_s = 150 }\n'
        "press_hold = { setpoint_mpa = 12.0, stiffness_n_per_um = 2.0 }\n"
        '[[steps]]\nkind = "constant"\ncurrent_a = -2e-3\ncutoff = { max_duration_s = 60 }\n'
    )
    out = tmp_path / "hold.h5"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    rec = load_recording(out)
    ev = rec.events
    hold = ev[ev["code"] == defs.EV_PRESS_HOLD]
    # armed for step 0, armed again for step 1 (stopping the first), stopped before step 2
    assert [int(x) for x in hold["index"]] == [1, 0, 1, 0], hold
    assert int(hold[-1]["cause"]) == defs.CAUSE_HOST_STOP
    pos = ev[ev["code"] == defs.EV_PRESS_POSITION]
    assert len(pos) > 10
    steps = rec.steps
    load = rec.streams["load"]
    f = load.physical("counts")  # the board's calibration, as the setpoint
    p = f / 6.3617e-5 * 1e-6
    t = load.t_s
    s1 = (t > float(steps[1]["t_start_s"]) + 1.0) & (t < float(steps[1]["t_end_s"]))
    s2 = (t > float(steps[2]["t_start_s"]) + 1.0) & (t < float(steps[2]["t_end_s"]))
    assert np.abs(p[s1] - 12.0).max() < 0.1
    # step 2 without a hold: the press stays put and the pressure rises with the charge
    # (q 0.061 -> 0.086 in the first phase, 3.5 MPa per unit q: 0.086 MPa)
    rise = np.polyfit(t[s2], p[s2], 1)[0] * 60.0
    assert 0.06 < rise < 0.11, rise
    # no position reports once the hold stopped: the actuator did not move
    assert (pos["t_dev_s"] <= float(hold[-1]["t_dev_s"])).all()
