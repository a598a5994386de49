"""Fresh cells in protocols (issue 13): `fresh_cell = true` on a step; on a real rig the
run pauses and asks, or follows the non-interactive policy. A loopback board stands in
for the rig (no emulator: no plant to reset)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from host_sdk.protocols import ProtocolError, load_protocol, parse_protocol, run_protocol

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROTOCOL = """
[protocol]
name = "fresh"
[[steps]]
kind = "rest"
label = "first cell"
duration_s = 0.05
[[steps]]
kind = "rest"
label = "second cell"
fresh_cell = true
duration_s = 0.05
"""


class Markers:
    def __init__(self) -> None:
        self.text: list[str] = []

    def add_marker(self, t: float, text: str) -> None:
        self.text.append(text)


@pytest.fixture
def rig() -> Any:
    from host_sdk.client import Rig
    from host_sdk.transport import Link
    from tests.sdk.fakeboard import FakeBoard

    r = Rig(Link(opener=FakeBoard().port), heartbeat_s=None, command_timeout_s=0.5).connect()  # type: ignore[arg-type]
    yield r
    r.close(leave_current_off=False)


def test_fresh_cell_is_a_checked_step_flag() -> None:
    proto = parse_protocol(tomllib.loads(PROTOCOL))
    assert [s.fresh_cell for s in proto.steps] == [False, True]
    with pytest.raises(ProtocolError, match=r"steps\[0\].fresh_cell: 'yes' must be true or"):
        parse_protocol(
            tomllib.loads(PROTOCOL.replace('label = "first cell"', 'fresh_cell = "yes"'))
        )


def test_every_seed004_series_starts_on_a_fresh_cell() -> None:
    steps = load_protocol(EXAMPLES / "seed004_pulsed_stripping.toml").steps
    for k, s in enumerate(steps):
        if s.kind == "pulse_train":
            assert steps[k - 1].fresh_cell, f"series {s.label} on a used cell"


def test_continue_goes_on_with_the_same_cell_and_says_so(rig: Any) -> None:
    rec = Markers()
    res = run_protocol(
        rig, parse_protocol(tomllib.loads(PROTOCOL)), recorder=rec, fresh_cell="continue"
    )
    assert res.completed
    assert any("continued with the cell in the rig" in m for m in rec.text)


def test_stop_ends_the_run_before_the_step(rig: Any) -> None:
    res = run_protocol(rig, parse_protocol(tomllib.loads(PROTOCOL)), fresh_cell="stop")
    assert not res.completed and res.stopped_by == "fresh_cell"
    assert res.outcome is not None and res.outcome.step_index == 1
    assert "--fresh-cell continue" in res.outcome.cause
    assert [s.label for s in res.steps] == ["first cell"]


def test_ask_pauses_for_the_operator(rig: Any) -> None:
    asked: list[str] = []

    def operator(prompt: str) -> str:
        asked.append(prompt)
        return "\n"

    rec = Markers()
    res = run_protocol(
        rig, parse_protocol(tomllib.loads(PROTOCOL)), recorder=rec, fresh_cell="ask", ask=operator
    )
    assert res.completed and len(asked) == 1 and "Put a new cell" in asked[0]
    assert any("the operator put in a new cell" in m for m in rec.text)
    res = run_protocol(
        rig, parse_protocol(tomllib.loads(PROTOCOL)), fresh_cell="ask", ask=lambda _: "stop"
    )
    assert res.stopped_by == "fresh_cell" and "operator ended the run" in res.outcome.cause  # type: ignore[union-attr]


def test_ask_without_a_terminal_stops_and_names_the_option(rig: Any) -> None:
    # pytest's stdin is not a terminal: nobody can be asked
    res = run_protocol(rig, parse_protocol(tomllib.loads(PROTOCOL)))
    assert res.stopped_by == "fresh_cell"
    assert "stdin is not a terminal" in res.outcome.cause  # type: ignore[union-attr]
