"""Stack-pressure hold, from the host (issue 14; firmware/loops/press_hold.py).

On a board with a press actuator (a stepper on the press screw; the HELLO's limits carry
`press_um_per_step` and the hold's limits), the board holds the stack pressure at a
setpoint with a PI loop on the load cell: as the cell grows with the charge passed (seed
001), the press backs off. The gains are in um of actuator travel per MPa of error; the loop
gain is the gain times the load path's stiffness (MPa per um), so

    kp ~ 0.4 / stiffness,   ki ~ 0.2 * min(load rate) / stiffness   (stiffness in MPa/um)

keep it stable at 10 and 80 SPS (`gains_for_stiffness`). The board refuses what its limits
do not allow (field and range) and latches a stop (current off, actuator held) on runaway,
travel exhausted or a load-cell fault.

    from host_sdk.press_hold import set_press_hold
    set_press_hold(rig, setpoint_mpa=12.0, stack_area_m2=6.362e-5)

Recorded as events: `press_hold` (index 1 started, value the setpoint in MPa of the board's
calibration; 0 stopped, value the position in steps; 2 runaway, then the latched stop) and
`press_position` (the actuator's position in steps; `travel_um()` turns them into um).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from host_sdk.calibration import LoadCellCalibration
from host_sdk.client import Rig
from protocol import defs

__all__ = [
    "PressHoldChange",
    "clear_press_hold",
    "gains_for_stiffness",
    "press_hold_changes",
    "press_positions",
    "set_press_hold",
    "um_per_step",
]


def um_per_step(hello: Any) -> float:
    """The press actuator's um per step from the board's HELLO (0.0: no actuator)."""
    limits = dict(getattr(hello, "limits", None) or {})
    return float(limits.get("press_um_per_step", 0.0))


def gains_for_stiffness(
    stiffness_n_per_um: float, stack_area_m2: float, min_rate_hz: float = 10.0
) -> tuple[float, float]:
    """(kp um/MPa, ki um/MPa/s) for a load path of `stiffness_n_per_um` on `stack_area_m2`:
    a proportional loop gain of 0.4 and an integral gain of 0.2 per reading at
    `min_rate_hz` (the slowest load rate it will run at; faster rates are then more damped)."""
    if not stiffness_n_per_um > 0 or not stack_area_m2 > 0:
        raise ValueError("stiffness_n_per_um and stack_area_m2 must be > 0")
    k_mpa_per_um = stiffness_n_per_um / stack_area_m2 * 1e-6
    return 0.4 / k_mpa_per_um, 0.2 * min_rate_hz / k_mpa_per_um


def _board_scale(rig: Rig, cal: LoadCellCalibration | None) -> tuple[float, float]:
    """(board N per true N, board N at true 0 N): the board's own calibration vs `cal`."""
    if cal is None:
        return 1.0, 0.0
    info = rig.streams.get("load")
    field = next((f for f in info.fields if f.name == "counts"), None) if info else None
    if field is None or field.unit != "N":
        raise ValueError("the board announces no load-cell calibration (load counts in N)")
    # true F = (c - tare) span; board F = c scale + offset
    ratio = field.scale / cal.span_n_per_count
    return ratio, cal.tare_counts * field.scale + field.offset


def set_press_hold(
    rig: Rig,
    *,
    setpoint_mpa: float,
    stack_area_m2: float,
    kp_um_per_mpa: float = 0.0,
    ki_um_per_mpa_s: float = 0.0,
    max_error_mpa: float = 0.0,
    max_travel_um: float = 0.0,
    rate_steps_per_s: float = 0.0,
    runaway_s: float = 0.0,
    calibration: LoadCellCalibration | None = None,
) -> Any:
    """Hold `setpoint_mpa` on `stack_area_m2` (0 for a gain or limit: the board's own). With
    a `calibration` the setpoint and the error limit are in its (true) MPa, else in the
    board's calibration."""
    if not stack_area_m2 > 0:
        raise ValueError(f"stack_area_m2 = {stack_area_m2!r}: must be > 0")
    ratio, off_n = _board_scale(rig, calibration)
    p_board = (setpoint_mpa * 1e6 * stack_area_m2 * ratio + off_n) / stack_area_m2 * 1e-6
    return rig.command(
        defs.CMD_SET_PRESS_HOLD,
        action=1,
        setpoint_mpa=float(p_board),
        stack_area_m2=float(stack_area_m2),
        kp_um_per_mpa=float(kp_um_per_mpa),
        ki_um_per_mpa_s=float(ki_um_per_mpa_s),
        max_error_mpa=float(max_error_mpa) * abs(ratio),
        max_travel_um=float(max_travel_um),
        rate_steps_per_s=float(rate_steps_per_s),
        runaway_s=float(runaway_s),
    )


def clear_press_hold(rig: Rig) -> Any:
    """Stop holding: the actuator stays where it is (its motor keeps its holding torque)."""
    return rig.command(
        defs.CMD_SET_PRESS_HOLD,
        action=0,
        setpoint_mpa=0.0,
        stack_area_m2=0.0,
        kp_um_per_mpa=0.0,
        ki_um_per_mpa_s=0.0,
        max_error_mpa=0.0,
        max_travel_um=0.0,
        rate_steps_per_s=0.0,
        runaway_s=0.0,
    )


@dataclass(frozen=True)
class PressHoldChange:
    """A press_hold event as the board reported it."""

    t_s: float
    what: str  # started, stopped, runaway
    cause: str
    value: float  # started: setpoint MPa (board calibration); stopped: steps; runaway: counts


_WHAT = {0: "stopped", 1: "started", 2: "runaway"}


def press_hold_changes(rig: Rig, after: int = 0) -> list[PressHoldChange]:
    """The press_hold events received since event mark `after` (see Rig.event_mark)."""
    return [
        PressHoldChange(float(e.t_s), _WHAT.get(e.index, str(e.index)), e.cause_name, e.value)
        for e in rig.events[after:]
        if e.code == defs.EV_PRESS_HOLD
    ]


def press_positions(rig: Rig, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(device time s, actuator position um) from the press_position events since `after`."""
    upm = um_per_step(rig.hello)
    ev = [e for e in rig.events[after:] if e.code == defs.EV_PRESS_POSITION]
    t = np.array([e.t_s for e in ev], dtype=np.float64)
    return t, np.array([e.value for e in ev], dtype=np.float64) * upm


def apply_step_press_hold(
    rig: Rig, table: dict[str, Any] | None, stack_area_m2: float | None, armed: bool
) -> bool:
    """A protocol step's `press_hold` table on the board (press_hold_schema.py), or the
    previous step's hold stopped when this one has none; True while a hold is armed."""
    if table is None:
        if armed:
            clear_press_hold(rig)
        return False
    t = {k: float(v) for k, v in table.items()}
    kp, ki = t.get("kp_um_per_mpa", 0.0), t.get("ki_um_per_mpa_s", 0.0)
    if "stiffness_n_per_um" in t and "kp_um_per_mpa" not in t:
        kp, ki = gains_for_stiffness(t["stiffness_n_per_um"], float(stack_area_m2 or 0.0))
    set_press_hold(
        rig,
        setpoint_mpa=t["setpoint_mpa"],
        stack_area_m2=float(stack_area_m2 or 0.0),
        kp_um_per_mpa=kp,
        ki_um_per_mpa_s=ki,
        max_error_mpa=t.get("max_error_mpa", 0.0),
        max_travel_um=t.get("max_travel_um", 0.0),
        rate_steps_per_s=t.get("rate_steps_per_s", 0.0),
        runaway_s=t.get("runaway_s", 0.0),
    )
    return True
