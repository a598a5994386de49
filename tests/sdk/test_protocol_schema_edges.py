"""Protocol files that used to crash or pass the checker with a wrong meaning: each is
refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from host_sdk.protocols import ProtocolError, parse_protocol


def _doc(step: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": {"name": "t"}, "cell": {"area_m2": 1e-4}, "steps": [step]}


def _errors(step: dict[str, Any]) -> str:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(_doc(step))
    return str(e.value)


def test_a_kind_that_is_not_a_string_is_refused_not_a_crash() -> None:
    assert "steps[0].kind" in _errors({"kind": ["rest"], "duration_s": 1.0})
    assert "steps[0].kind" in _errors({"kind": {"a": 1}, "duration_s": 1.0})


def test_a_boolean_mass_is_refused() -> None:
    step = {"kind": "calibration_hold", "duration_s": 1.0, "mass_kg": True}
    assert "steps[0].mass_kg" in _errors(step)


def test_a_staircase_mixing_units_is_refused() -> None:
    step = {
        "kind": "staircase",
        "start_a_m2": 1.0,
        "step_a_m2": 1.0,
        "stop_a_m2": 3.0,
        "start_a": 0.001,
        "on_s": 1.0,
        "dwell_s": 2.0,
        "cutoff": {"v_max_v": 3.0},
    }
    assert "all in A/m²" in _errors(step)
    del step["start_a"]
    assert parse_protocol(_doc(step)).steps[0].kind == "staircase"
