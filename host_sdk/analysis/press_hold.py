"""Stack-pressure holds in a recording (issue 14; firmware/loops/press_hold.py): when the
board held the pressure, at what setpoint, and where its press actuator stood.

    holds = press_hold_record(rec)       # the press_hold / press_position events, in SI

While a hold runs the pressure stays at the setpoint and the cell's growth goes into the
actuator's travel instead: with the load path's stiffness k (N/um) on the stack area A,
the pressure the cell would have had with the press fixed (open loop) is

    p_open(t) = p_held(t) - k x(t) / A          (x: travel towards the stack, um)

`open_loop_mpa` computes it; `stressrig analyze` draws both
(host_sdk.recording.analyses.press_hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from protocol import defs

__all__ = ["HoldSpan", "PressHoldRecord", "open_loop_mpa", "press_hold_record", "travel_at"]


@dataclass(frozen=True)
class HoldSpan:
    """One hold: from its start event to its stop (or the recording's end)."""

    t_start_s: float
    t_end_s: float
    setpoint_board_mpa: float  # in the board's load-cell calibration
    end_cause: str  # host_stop, a latched stop's cause, or "" (still holding at the end)
    runaway: bool  # ended by the loop's own latched stop (runaway, travel, sensor)


@dataclass(frozen=True)
class PressHoldRecord:
    holds: list[HoldSpan]
    t_s: NDArray[np.float64]  # actuator position reports (device time)
    travel_um: NDArray[np.float64]  # position from power-on, um (towards the stack: +)
    um_per_step: float


def press_hold_record(rec: Any) -> PressHoldRecord:
    """The holds and actuator positions of a Recording (host_sdk.recording.load_recording)."""
    ev = rec.events
    code = np.asarray(ev["code"]).astype(int)
    t = np.asarray(ev["t_dev_s"], float)
    idx = np.asarray(ev["index"]).astype(int)
    cause = np.asarray(ev["cause"]).astype(int)
    val = np.asarray(ev["value"], float)
    limits = dict((getattr(rec, "hello", None) or {}).get("limits", {}) or {})
    upm = float(limits.get("press_um_per_step", 0.0))
    holds: list[HoldSpan] = []
    open_: tuple[float, float] | None = None
    runaway = False
    t_last = float(t.max()) if t.size else 0.0
    for k in np.flatnonzero(code == defs.EV_PRESS_HOLD):
        if idx[k] == 1:
            if open_ is not None:
                holds.append(HoldSpan(open_[0], float(t[k]), open_[1], "host_stop", False))
            open_ = (float(t[k]), float(val[k]))
            runaway = False
        elif idx[k] == 2:
            runaway = True
        elif idx[k] == 0 and open_ is not None:
            name = defs.CAUSE_NAMES.get(int(cause[k]), str(cause[k]))
            holds.append(HoldSpan(open_[0], float(t[k]), open_[1], name, runaway))
            open_ = None
    if open_ is not None:
        holds.append(HoldSpan(open_[0], t_last, open_[1], "", False))
    # where the actuator stood: its reports while holding, and where each hold left it
    pos = (code == defs.EV_PRESS_POSITION) | ((code == defs.EV_PRESS_HOLD) & (idx == 0))
    return PressHoldRecord(holds, t[pos], val[pos] * upm, upm)


def travel_at(rec: PressHoldRecord, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """The actuator's position (um from power-on) at times `t_s`: reports interpolated (the
    board reports a move of a step within 0.25 s, or of 16 steps); 0 before the first."""
    if not rec.t_s.size:
        return np.zeros(np.shape(t_s))
    return np.interp(t_s, np.r_[rec.t_s[0] - 1e-9, rec.t_s], np.r_[0.0, rec.travel_um])


def open_loop_mpa(
    p_held_mpa: NDArray[np.float64],
    travel_um: NDArray[np.float64],
    stiffness_n_per_um: float,
    stack_area_m2: float,
) -> NDArray[np.float64]:
    """The pressure with the press fixed where the hold started (travel measured from there)."""
    return p_held_mpa - stiffness_n_per_um * travel_um / stack_area_m2 * 1e-6
