"""Conditional protocol steps (host_sdk/protocols/conditions.py): a step's `until` becomes
the board's own cutoffs, an ending pressure interlock or an adaptive rest; repeat/for_each
blocks with `until` end when one of their steps ended on the condition (or their charge
reached it); refusals name the field; on the emulated board a repeat ends on capacity after
the right iteration and a pulse block ends at 3 V, the run going on after the block."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from host_sdk.client import Rig
from host_sdk.protocols import ProtocolError, load_protocol, parse_protocol, run_protocol
from host_sdk.protocols.conditions import next_step

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
URL = "emu://nak50_pulsed?load_sps=10&fbg_hz=1&seed=4"
HEAD = "[cell]\narea_m2 = 3.85e-5\nstack_diameter_m = 0.012\n"


def _p(text: str):  # type: ignore[no-untyped-def]
    return parse_protocol(tomllib.loads(HEAD + text))


def _errors(text: str) -> list[str]:
    with pytest.raises(ProtocolError) as e:
        _p(text)
    return e.value.errors


def test_a_steps_until_becomes_the_boards_cutoffs_interlock_or_adaptive_rest() -> None:
    p = _p(
        '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\n'
        "cutoff = { v_max_v = 3.2, max_duration_s = 60 }\n"
        "until = { v_max_v = 3.0, capacity_c = 0.02, p_max_mpa = 12.0, p_min_mpa = 8.0 }\n"
        '[[steps]]\nkind = "rest"\nduration_s = 30\nuntil = { dvdt_v_per_s = 1e-3 }\n'
    )
    a, b = p.steps
    assert a.params["cutoff"] == {"v_max_v": 3.0, "max_duration_s": 60, "max_charge_c": 0.02}
    assert a.params["interlock"] == {
        "p_min_mpa": 8.0,
        "p_max_mpa": 12.0,
        "hysteresis_mpa": 0.0,
        "action": "end",
    }
    assert b.kind == "adaptive_rest" and b.params["settle"]["max_s"] == 30.0
    assert b.params["settle"]["dvdt_v_per_s"] == 1e-3


def test_for_each_sets_the_field_and_until_blocks_are_tagged() -> None:
    p = _p(
        '[[steps]]\nkind = "for_each"\nfield = "t_off_s"\nvalues = [0.1, 0.5, 2.0]\n'
        "until = { v_max_v = 3.0 }\n"
        '[[steps.steps]]\nkind = "rest"\nfresh_cell = true\nduration_s = 5\n'
        '[[steps.steps]]\nkind = "pulse_train"\ncurrent_a_m2 = 10\nt_on_s = 1\nt_off_s = 0\n'
        "count = 65535\n"
        '[[steps]]\nkind = "for_each"\nfield = "current_a_m2"\n'
        "values = { start = 0.5, step = 0.1, stop = 1.0 }\n"
        '[[steps.steps]]\nkind = "constant"\ncurrent_a_m2 = 0\ncutoff = { max_duration_s = 5 }\n'
    )
    pulses = [s for s in p.steps if s.kind == "pulse_train"]
    assert [s.params["t_off_s"] for s in pulses] == [0.1, 0.5, 2.0]
    assert all(s.params["cutoff"] == {"v_max_v": 3.0} for s in pulses)
    assert [s.tags for s in pulses] == [(("steps[0]", k),) for k in range(3)]
    assert p.blocks == {"steps[0]": {"v_max_v": 3.0}}
    currents = [s.params["current_a_m2"] for s in p.steps if s.kind == "constant"]
    assert currents == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_next_step_skips_the_rest_of_the_block_when_its_condition_holds() -> None:
    p = _p(
        '[[steps]]\nkind = "repeat"\ncount = 3\nuntil = { v_max_v = 3.0 }\n'
        '[[steps.steps]]\nkind = "repeat"\ncount = 2\nuntil = { capacity_c = 0.25 }\n'
        '[[steps.steps.steps]]\nkind = "constant"\ncurrent_a = 1e-4\n'
        "cutoff = { max_duration_s = 5 }\n"
        '[[steps.steps]]\nkind = "rest"\nduration_s = 1\n'
        '[[steps]]\nkind = "rest"\nduration_s = 1\n'
    )
    kinds = [s.kind for s in p.steps]
    assert kinds == ["constant", "constant", "rest"] * 3 + ["rest"]
    acc: dict = {}
    # the inner block: 0.1 C then 0.2 C -> 0.3 C >= 0.25 C: ends after its second step
    assert next_step(p, 0, "duration", 0.1, acc) == (1, None)
    j, note = next_step(p, 1, "duration", 0.2, acc)
    assert j == 2 and note is not None and "steps[0].steps[0]" in note
    # the outer block's second iteration: a step ends on v_max -> straight to the last rest
    assert next_step(p, 2, "completed", 0.0, acc) == (3, None)
    j, note = next_step(p, 3, "v_max", 0.05, acc)
    assert j == 9 and note is not None and note.startswith("steps[0] until held (v_max")
    # a fresh inner instance counts its charge from zero
    assert next_step(p, 6, "duration", 0.2, acc) == (7, None)
    # a block's pressure condition: a step ended by its ending interlock
    q = _p(
        '[[steps]]\nkind = "repeat"\ncount = 4\nuntil = { p_max_mpa = 12.0 }\n'
        '[[steps.steps]]\nkind = "rest"\nduration_s = 1\n'
    )
    assert q.steps[0].params["interlock"]["action"] == "end"
    assert next_step(q, 0, "completed", 0.0, {}) == (1, None)
    assert next_step(q, 1, "pressure", 0.0, {})[0] == 4


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        (
            '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 5 }\n'
            "until = { dvdt_v_per_s = 1e-3 }\n",
            "steps[0].until.dvdt_v_per_s",
            "only on rests",
        ),
        (
            '[[steps]]\nkind = "rest"\nduration_s = 5\nuntil = { v_max_v = 3.0 }\n',
            "steps[0].until.v_max_v",
            "only on current steps",
        ),
        (
            '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 5 }\n'
            "until = { capacity_c = 0 }\n",
            "steps[0].until.capacity_c",
            "above 0 C",
        ),
        (
            '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 5 }\n'
            "until = { volts = 3 }\n",
            "steps[0].until.volts",
            "unknown field",
        ),
        (
            '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 5 }\n'
            "until = { p_min_mpa = 3 }\n",
            "steps[0].until.p_max_mpa",
            "missing",
        ),
        (
            '[[steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 5 }\n'
            "interlock = { p_min_mpa = 9, p_max_mpa = 11 }\nuntil = { p_max_mpa = 12 }\n",
            "steps[0].interlock",
            "conflicts with the pressure condition",
        ),
        (
            '[[steps]]\nkind = "repeat"\ncount = 2\nuntil = { dvdt_v_per_s = 1e-3 }\n'
            '[[steps.steps]]\nkind = "rest"\nduration_s = 1\n',
            "steps[0].until.dvdt_v_per_s",
            "unknown field",
        ),
        (
            '[[steps]]\nkind = "for_each"\nfield = "t_on_s"\nvalues = [1.0]\n'
            '[[steps.steps]]\nkind = "rest"\nduration_s = 1\n',
            "steps[0].field",
            "no step inside takes this field",
        ),
        (
            '[[steps]]\nkind = "for_each"\nfield = "duration_s"\n'
            "values = { start = 1, step = 0, stop = 2 }\n"
            '[[steps.steps]]\nkind = "rest"\nduration_s = 1\n',
            "steps[0].values",
            "step > 0",
        ),
        (
            '[[steps]]\nkind = "for_each"\nfield = "duration_s"\nvalues = [1.0, -2.0]\n'
            '[[steps.steps]]\nkind = "rest"\nduration_s = 1\n',
            "steps[0].steps[0].duration_s",
            "out of range",
        ),
    ],
)
def test_bad_conditions_name_the_field(text: str, path: str, words: str) -> None:
    errs = _errors(text)
    assert any(e.startswith(path + ":") and words in e for e in errs), errs


@pytest.fixture
def rig() -> Rig:
    try:
        r = Rig.open(URL)
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    yield r
    r.close()


def test_repeat_until_capacity_and_until_3v_on_the_emulated_board(rig: Rig) -> None:
    p = _p(
        "[streams]\nelec = { rate_hz = 50 }\n"
        # 1e-4 C per iteration: 3.5e-4 C is reached in the 4th of at most 10
        '[[steps]]\nkind = "repeat"\ncount = 10\nuntil = { capacity_c = 3.5e-4 }\n'
        '[[steps.steps]]\nkind = "constant"\ncurrent_a = 1e-4\ncutoff = { max_duration_s = 1 }\n'
        '[[steps.steps]]\nkind = "rest"\nduration_s = 0.2\n'
        # 1 s pulses of 1 mA/cm2, 0.1 s rests, until the cell reaches 3 V (seed 004)
        '[[steps]]\nkind = "repeat"\ncount = 500\nuntil = { v_max_v = 3.0 }\n'
        '[[steps.steps]]\nkind = "pulse_train"\ncurrent_a_m2 = 10\nt_on_s = 1\nt_off_s = 0\n'
        "count = 1\n"
        '[[steps.steps]]\nkind = "rest"\nduration_s = 0.1\n'
        '[[steps]]\nkind = "rest"\nlabel = "after"\nduration_s = 0.5\n'
    )
    res = run_protocol(rig, p)
    assert res.completed
    first = [s for s in res.steps if s.path.startswith("steps[0]")]
    assert [s.kind for s in first] == ["constant", "rest"] * 3 + ["constant"]
    second = [s for s in res.steps if s.path.startswith("steps[1]")]
    assert second[-1].end_cause == "v_max" and second[-1].kind == "pulse_train"
    assert all(s.end_cause == "completed" for s in second[:-1])
    assert 1 < len(second) < 1000
    assert res.steps[-1].label == "after" and res.steps[-1].end_cause == "completed"


def test_the_seed004_conditional_examples_load() -> None:
    strip = load_protocol(EXAMPLES / "seed004_conditional_stripping.toml")
    pulses = [s for s in strip.steps if s.kind == "pulse_train"]
    assert [s.params["t_off_s"] for s in pulses] == [0.1, 0.5, 1.0, 2.0, 5.0, 10.0]
    assert all(s.params["cutoff"]["v_max_v"] == 3.0 for s in pulses)
    rests = [s for s in strip.steps if s.kind == "rest"]
    assert len(rests) == 6 and all(s.fresh_cell for s in rests)
    ccd = load_protocol(EXAMPLES / "seed004_conditional_ccd.toml")
    on = [s for s in ccd.steps if s.kind == "constant"]
    assert len(on) == 96 and on[0].params["current_a_m2"] == 0.5
    assert on[-1].params["current_a_m2"] == pytest.approx(10.0)
    assert ccd.blocks and all(s.params["cutoff"]["v_max_v"] == 3.0 for s in on)
