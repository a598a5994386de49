"""The board's pressure interlock, from the host (issue 14; firmware/loops/interlock.py).

A stack-pressure window with hysteresis around the waveforms that follow: outside it the
board suspends the current (its timing paused) and resumes inside the band, or ends the
step, within one load-cell reading and whatever the host does. A load reading the board
cannot trust (glitch, missing chip, saturated ADC) counts as outside. Every change is an
`interlock` event (index 1 out, 0 back in; value the load counts).

    from host_sdk.interlock import set_pressure_interlock
    set_pressure_interlock(rig, p_min_mpa=9.0, p_max_mpa=11.0, hysteresis_mpa=0.2,
                           stack_area_m2=1.131e-4, action="suspend")

The board compares load-cell counts; the window goes to it in newtons of its own (nominal)
calibration. With a host calibration (`stressrig calibrate load`) the pressures are turned
into counts with it first, so the window is where the calibrated force says it is.
"""

from __future__ import annotations

from typing import Any

from host_sdk.calibration import LoadCellCalibration
from host_sdk.client import Rig
from protocol import defs

__all__ = ["ACTIONS", "clear_interlock", "set_interlock", "set_pressure_interlock"]

ACTIONS = {"off": 0, "suspend": 1, "end": 2}


def set_interlock(
    rig: Rig, *, f_min_n: float, f_max_n: float, hysteresis_n: float, action: str = "suspend"
) -> Any:
    """Force window in N of the board's own calibration (see the module doc)."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: allowed {', '.join(ACTIONS)}")
    return rig.command(
        defs.CMD_SET_INTERLOCK,
        action=ACTIONS[action],
        f_min_n=float(f_min_n),
        f_max_n=float(f_max_n),
        hysteresis_n=float(hysteresis_n),
    )


def clear_interlock(rig: Rig) -> Any:
    return rig.command(defs.CMD_SET_INTERLOCK, action=0, f_min_n=0.0, f_max_n=0.0, hysteresis_n=0.0)


def _board_n(rig: Rig, force_n: float, cal: LoadCellCalibration | None) -> float:
    """A true force (N) as the board's nominal calibration would read it."""
    if cal is None:
        return force_n
    info = rig.streams.get("load")
    field = next((f for f in info.fields if f.name == "counts"), None) if info else None
    if field is None or field.unit != "N":
        raise ValueError("the board announces no load-cell calibration (load counts in N)")
    counts = force_n / cal.span_n_per_count + cal.tare_counts
    return counts * field.scale + field.offset


def set_pressure_interlock(
    rig: Rig,
    *,
    p_min_mpa: float,
    p_max_mpa: float,
    hysteresis_mpa: float,
    stack_area_m2: float,
    action: str = "suspend",
    calibration: LoadCellCalibration | None = None,
) -> Any:
    """Stack-pressure window (MPa) on the pressed area `stack_area_m2`."""
    if not stack_area_m2 > 0:
        raise ValueError(f"stack_area_m2 = {stack_area_m2!r}: must be > 0")
    lo = _board_n(rig, p_min_mpa * 1e6 * stack_area_m2, calibration)
    hi = _board_n(rig, p_max_mpa * 1e6 * stack_area_m2, calibration)
    scale = (hi - lo) / ((p_max_mpa - p_min_mpa) * 1e6 * stack_area_m2) if hi != lo else 1.0
    h = abs(hysteresis_mpa * 1e6 * stack_area_m2 * scale)
    return set_interlock(
        rig,
        f_min_n=min(lo, hi),
        f_max_n=max(lo, hi),
        hysteresis_n=h,
        action=action,
    )
