"""A protocol step that starts on a fresh cell (`fresh_cell = true`), as seed 004 ran each
rest-time series on a new cell: a series on a cell another series has already stripped
measures that cell's history, not the rest time.

- Emulated board: the plant starts again from its scenario at the current device time
  (the control channel's `fresh_cell`); the board, its clock and the recording run on.
- Real rig: the run pauses (current off, heartbeats going) and asks the operator to put
  in a new cell. Without a terminal to ask, or by choice, the policy decides: "continue"
  (go on with the cell in the rig, and say so in the recording) or "stop" (end the run
  before the step, with an outcome that says why).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Literal

from protocol import defs

__all__ = ["FRESH_CELL_POLICIES", "FreshCellPolicy", "FreshCellStop", "start_on_fresh_cell"]

FreshCellPolicy = Literal["ask", "continue", "stop"]
FRESH_CELL_POLICIES: tuple[str, ...] = ("ask", "continue", "stop")
# a control message is in effect 20 ms of device time after the board next looks; a short
# rest sent after it ends well after that
_SETTLE_REST_S = 0.1


class FreshCellStop(Exception):
    """The run ends before a step that needs a fresh cell; the message says why."""


def start_on_fresh_cell(
    rig: Any,
    index: int,
    step: Any,
    recorder: Any,
    policy: FreshCellPolicy = "ask",
    ask: Callable[[str], str] | None = None,
) -> str:
    """Put a fresh cell in before `step` (see the module text); returns what was done
    (also a marker in the recording). Raises FreshCellStop to end the run."""
    what = f"step {index}" + (f" '{step.label}'" if step.label else "")
    emu = getattr(rig, "emulator", None)
    if emu is not None:
        done = _emulated(rig, emu)
    elif policy == "continue":
        done = "fresh cell asked for; continued with the cell in the rig (--fresh-cell continue)"
    elif policy == "ask" and (ask is not None or sys.stdin.isatty()):
        done = _ask_operator(what, ask or _terminal_prompt)
    else:
        raise FreshCellStop(
            f"{what} starts on a fresh cell and nobody can be asked to put one in"
            + (" (stdin is not a terminal)" if policy == "ask" else "")
            + ": run it with --fresh-cell continue to go on with the same cell, or run "
            "each series separately"
        )
    if recorder is not None:
        recorder.add_marker(rig.device_time_s, f"fresh cell before {what}: {done}")
    return done


def _emulated(rig: Any, emu: Any) -> str:
    from host_sdk.emulator.board_process import send_control

    send_control(emu.ctrl_port, {"fresh_cell": True})
    # the datagram is waiting before the rest command goes out: the board applies it at
    # its next look at the control channel, within 20 ms of device time, well inside the
    # rest, so the step that follows starts on the new cell
    mark = rig.event_mark()
    rig.rest(_SETTLE_REST_S)
    ev = rig.wait_event(
        (defs.EV_WAVEFORM_END, defs.EV_STOP_LATCHED, defs.EV_BOOT), after=mark, timeout_s=60.0
    )
    if ev is None or ev.code != defs.EV_WAVEFORM_END:
        raise FreshCellStop("the emulated board did not finish the fresh-cell rest")
    return "emulated plant reset to a new cell"


def _terminal_prompt(text: str) -> str:
    print(text, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline()


def _ask_operator(what: str, ask: Callable[[str], str]) -> str:
    t0 = time.monotonic()
    answer = ask(
        f"\n{what} starts on a fresh cell. The current is off. Put a new cell in the rig, "
        "then press Enter ('same' to go on with this cell, 'stop' to end the run): "
    )
    word = answer.strip().lower()
    if word == "stop":
        raise FreshCellStop(f"the operator ended the run before {what} (fresh cell)")
    if word == "same":
        return "fresh cell asked for; the operator went on with the same cell"
    return f"the operator put in a new cell ({time.monotonic() - t0:.0f} s)"
