"""Protocol files: the shipped examples load; invalid files name field, value and range."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from host_sdk import wire
from host_sdk.protocols import ProtocolError, check_against_board, load_protocol, parse_protocol

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))

BASE = """
[protocol]
name = "t"
[cell]
area_m2 = 3.85e-5
[streams]
elec = { rate_hz = 100 }
"""


def _parse(steps: str, base: str = BASE) -> object:
    return parse_protocol(tomllib.loads(base + steps), "t.toml")


def _errors(steps: str, base: str = BASE) -> list[str]:
    with pytest.raises(ProtocolError) as e:
        _parse(steps, base)
    return e.value.errors


def test_examples_exist_and_validate() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "seed004_pulsed_stripping.toml",
        "seed004_staircase.toml",
        "seed000_gitt.toml",
        "seed001_stack_pressure_cycling.toml",
    } <= names
    for p in EXAMPLES:
        proto = load_protocol(p)
        assert proto.steps, p


def test_seed004_examples_match_the_paper() -> None:
    pulsed = load_protocol(next(p for p in EXAMPLES if p.name == "seed004_pulsed_stripping.toml"))
    trains = [s for s in pulsed.steps if s.kind == "pulse_train"]
    assert [s.params["t_off_s"] for s in trains] == [0.1, 0.5, 1.0, 2.0, 5.0, 10.0]
    assert all(s.params["t_on_s"] == 1.0 and s.params["current_a_m2"] == 10.0 for s in trains)
    assert all(s.cutoff == {"v_max_v": 3.0} for s in trains)
    stair = load_protocol(next(p for p in EXAMPLES if p.name == "seed004_staircase.toml"))
    st = next(s for s in stair.steps if s.kind == "staircase")
    assert (st.params["start_a_m2"], st.params["step_a_m2"], st.params["stop_a_m2"]) == (
        0.5,
        0.1,
        10.0,
    )
    assert (st.params["dwell_s"], st.params["on_s"]) == (40.0, 5.0)
    assert st.nominal_duration_s() == pytest.approx(96 * 40.0)


def test_repeat_is_expanded() -> None:
    p = load_protocol(next(x for x in EXAMPLES if x.name == "seed001_stack_pressure_cycling.toml"))
    kinds = [s.kind for s in p.steps]
    assert kinds[:2] == ["calibration_hold", "rest"] and kinds.count("constant") == 6


def test_out_of_range_names_field_value_and_range() -> None:
    errs = _errors("""
[[steps]]
kind = "pulse_train"
current_a_m2 = 10.0
t_on_s = -1.0
t_off_s = 0.5
count = 10
""")
    assert errs == ["steps[0].t_on_s: -1.0 is out of range; allowed: a number in [0.001, 86400] s"]


def test_several_errors_reported_together() -> None:
    errs = _errors("""
[[steps]]
kind = "rest"
duration_s = "long"

[[steps]]
kind = "wiggle"

[[steps]]
kind = "constant"
current_a = 0.001
cutoff = { v_min_v = 3.0, v_max_v = 2.0 }

[[steps]]
kind = "gitt"
current_a = 0.001
t_pulse_s = 10
t_rest_s = 10
count = 100000
colour = "red"
""")
    text = "\n".join(errs)
    assert "steps[0].duration_s: 'long' is not a number" in text
    assert "steps[1].kind: 'wiggle' is not a step kind; allowed: rest" in text
    assert "steps[2].cutoff: v_min_v = 3 must be below v_max_v = 2" in text
    assert "steps[3].count: 100000 is out of range; allowed: an integer in [1, 65535]" in text
    assert "steps[3].colour: unknown field" in text


def test_current_needs_exactly_one_unit_and_area_for_density() -> None:
    errs = _errors("""
[[steps]]
kind = "constant"
current_a = 0.001
current_a_m2 = 10
cutoff = { max_duration_s = 10 }
""")
    assert any("exactly one of current_a" in e for e in errs)
    errs = _errors(
        """
[[steps]]
kind = "constant"
current_a_m2 = 10
cutoff = { max_duration_s = 10 }
""",
        base='[protocol]\nname = "t"\n',
    )
    assert any(e.startswith("cell.area_m2: missing") for e in errs)


def test_staircase_checks() -> None:
    errs = _errors("""
[[steps]]
kind = "staircase"
start_a_m2 = 1.0
step_a_m2 = -0.1
stop_a_m2 = 10.0
dwell_s = 40
on_s = 50
""")
    assert any(e.startswith("steps[0].step_a_m2: -0.1 does not lead") for e in errs)
    assert any(e.startswith("steps[0].on_s: 50 is longer than dwell_s") for e in errs)


def test_unknown_stream_and_bad_rate() -> None:
    errs = _errors(
        '[[steps]]\nkind = "rest"\nduration_s = 1\n',
        base="[streams]\npressure = { rate_hz = 1 }\nelec = { rate_hz = -5 }\n",
    )
    assert "streams.pressure: unknown stream; allowed: load, fbg, elec, temp" in errs
    assert any(
        e.startswith(
            "streams.elec.rate_hz: -5 is out of range; allowed: a number in (0, 100000] Hz"
        )
        for e in errs
    )


def test_board_limits_checked_before_running() -> None:
    p = load_protocol(next(x for x in EXAMPLES if x.name == "seed004_pulsed_stripping.toml"))
    hello = wire.reference_hello(limits={"max_current_a": 1e-4, "max_rate_elec_hz": 50.0})
    errs = check_against_board(p, hello)
    assert any(
        e.startswith(
            "steps[1].current_a_m2: 10.0 is 0.000385 A; allowed on board reference: up to 0.0001 A"
        )
        for e in errs
    )
    assert any(e.startswith("streams.elec.rate_hz: 100") for e in errs)


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[steps]\nkind=")
    with pytest.raises(ProtocolError, match="not valid TOML"):
        load_protocol(bad)


def test_board_reboot_during_a_step_ends_the_run() -> None:
    # a reboot drops the waveform without a waveform_end: the runner must not wait forever
    # (device time keeps advancing once the client re-applies streaming after the reboot)
    import threading
    import time

    from host_sdk.client import Rig
    from host_sdk.protocols import run_protocol
    from host_sdk.transport import Link
    from protocol import defs
    from tests.sdk.fakeboard import FakeBoard

    board = FakeBoard()
    rig = Rig(Link(opener=board.port), heartbeat_s=None, command_timeout_s=0.2).connect()  # type: ignore[arg-type]
    proto = _parse(
        """
[[steps]]
kind = "constant"
current_a = 0.01
cutoff = { v_max_v = 4.0 }
"""
    )
    out: list[object] = []
    t = threading.Thread(
        target=lambda: out.append(run_protocol(rig, proto, stall_timeout_s=3.0)),  # type: ignore[arg-type]
        daemon=True,
    )
    try:
        t.start()
        deadline = time.monotonic() + 3.0
        while board.state != defs.STATE_RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        board.reboot()
        t.join(timeout=8.0)
        assert not t.is_alive(), "run_protocol still waiting after the board rebooted"
        (res,) = out
        assert res.completed is False and res.stopped_by == "boot"  # type: ignore[attr-defined]
    finally:
        rig.close(leave_current_off=False)
        t.join(timeout=10.0)


def test_safety_window_latch_ends_the_run_as_a_latch_not_a_cutoff() -> None:
    # the board's safety window ends the waveform with cause v_max and then latches: the
    # runner must report the latch, not take it for the step's own cutoff and go on
    import threading
    import time

    from host_sdk.client import Rig
    from host_sdk.protocols import run_protocol
    from host_sdk.transport import Link
    from protocol import defs
    from tests.sdk.fakeboard import FakeBoard

    board = FakeBoard()
    rig = Rig(Link(opener=board.port), heartbeat_s=None, command_timeout_s=0.2).connect()  # type: ignore[arg-type]
    proto = _parse(
        """
[[steps]]
kind = "constant"
current_a = 0.01
cutoff = { v_max_v = 4.0 }

[[steps]]
kind = "rest"
duration_s = 1.0
"""
    )
    out: list[object] = []
    t = threading.Thread(
        target=lambda: out.append(run_protocol(rig, proto, stall_timeout_s=3.0)),  # type: ignore[arg-type]
        daemon=True,
    )
    try:
        t.start()
        deadline = time.monotonic() + 3.0
        while board.state != defs.STATE_RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        with board.lock:
            board._event(defs.EV_WAVEFORM_END, defs.CAUSE_V_MAX)
            board._event(defs.EV_STOP_LATCHED, defs.CAUSE_V_MAX)
        t.join(timeout=8.0)
        assert not t.is_alive()
        (res,) = out
        assert res.completed is False and res.stopped_by == "v_max"  # type: ignore[attr-defined]
        assert len(res.steps) == 1  # type: ignore[attr-defined]
    finally:
        rig.close(leave_current_off=False)
        t.join(timeout=10.0)


# ---- the stack area is its own quantity ------------------------------------------------------
def _cell(**cell: object) -> dict[str, object]:
    return {"cell": cell, "steps": [{"kind": "rest", "duration_s": 1.0}]}


def test_stack_area_from_a_die_diameter() -> None:
    from host_sdk.protocols import parse_protocol

    p = parse_protocol(_cell(area_m2=3.85e-5, stack_diameter_m=0.009))
    assert p.area_m2 == 3.85e-5
    assert p.stack_area_m2 == pytest.approx(6.362e-5, rel=1e-3)  # DOMAIN.md: 9 mm die
    assert parse_protocol(_cell(stack_area_m2=1.131e-4)).stack_area_m2 == 1.131e-4
    assert parse_protocol(_cell(area_m2=3.85e-5)).stack_area_m2 is None


def test_stack_area_and_diameter_must_agree() -> None:
    from host_sdk.protocols import ProtocolError, parse_protocol

    with pytest.raises(ProtocolError, match="cell.stack_area_m2: 0.001 m² disagrees"):
        parse_protocol(_cell(stack_area_m2=1e-3, stack_diameter_m=0.009))


def test_examples_name_their_stack_area() -> None:
    from host_sdk.protocols import load_protocol

    root = Path(__file__).resolve().parents[2] / "examples"
    areas = {p.name: load_protocol(p).stack_area_m2 for p in root.glob("*.toml")}
    assert areas["seed001_stack_pressure_cycling.toml"] == pytest.approx(6.362e-5, rel=1e-3)
    assert areas["seed004_pulsed_stripping.toml"] == pytest.approx(1.131e-4, rel=1e-3)


def test_command_line_streams_win_and_say_so() -> None:
    from host_sdk.protocols import parse_protocol

    p = parse_protocol(
        {
            "streams": {"elec": {"rate_hz": 100}, "load": {"rate_hz": 10}},
            "steps": [{"kind": "rest", "duration_s": 1.0, "streams": {"elec": {"rate_hz": 1000}}}],
        }
    )
    q, notes = p.with_streams({"elec": {"rate_hz": 20.0}})
    assert q.streams["elec"] == {"rate_hz": 20.0}
    assert q.streams["load"] == {"enabled": False}
    assert q.steps[0].streams == {}
    assert any("replaced by elec:20" in n for n in notes)
    assert any("steps[0].streams" in n for n in notes)
