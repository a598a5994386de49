"""The `press_hold` table a step may carry (host_sdk/press_hold.py, firmware/loops/press_hold.py):

    press_hold = { setpoint_mpa = 12.0 }
    press_hold = { setpoint_mpa = 12.0, stiffness_n_per_um = 2.0 }     # gains from it
    press_hold = { setpoint_mpa = 12.0, kp_um_per_mpa = 12, ki_um_per_mpa_s = 60,
                   max_error_mpa = 0.5, max_travel_um = 300, rate_steps_per_s = 1000,
                   runaway_s = 2 }

While the step runs, the board holds the stack pressure at `setpoint_mpa` by moving the
press's actuator (a board with a press actuator only); a step without the table stops the
hold (the actuator stays where it is). Gains and limits left out are the board's own;
`stiffness_n_per_um` (the load path's, N/um) gives gains stable at 10 and 80 SPS instead.
Needs the [cell] stack area. The setpoint is in the board's load-cell calibration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

PRESS_HOLD_FIELDS = (
    "setpoint_mpa",
    "stiffness_n_per_um",
    "kp_um_per_mpa",
    "ki_um_per_mpa_s",
    "max_error_mpa",
    "max_travel_um",
    "rate_steps_per_s",
    "runaway_s",
)
# name: (lo, hi, lo inclusive, unit, integer), as schema_fields.RANGES; the board's own
# limits (HELLO: press_*) are checked when the protocol runs
PRESS_HOLD_RANGES: dict[str, tuple[float, float, bool, str, bool]] = {
    "setpoint_mpa": (0.0, 1000.0, False, "MPa", False),
    "stiffness_n_per_um": (0.0, 1e6, False, "N/um", False),
    "kp_um_per_mpa": (0.0, 1e6, True, "um/MPa", False),
    "ki_um_per_mpa_s": (0.0, 1e6, True, "um/MPa/s", False),
    "max_error_mpa": (0.0, 1000.0, False, "MPa", False),
    "max_travel_um": (0.0, 1e5, False, "um", False),
    "rate_steps_per_s": (0.0, 1e6, False, "steps/s", False),
    "runaway_s": (0.0, 3600.0, False, "s", False),
}
# the HELLO limit each field is checked against before the run
_BOARD_LIMITS = {
    "setpoint_mpa": "press_max_setpoint_mpa",
    "kp_um_per_mpa": "press_max_kp_um_per_mpa",
    "ki_um_per_mpa_s": "press_max_ki_um_per_mpa_s",
    "max_error_mpa": "press_max_error_mpa",
    "max_travel_um": "press_max_travel_um",
    "rate_steps_per_s": "press_max_rate_sps",
    "runaway_s": "press_max_runaway_s",
}


class _Checker(Protocol):
    def err(self, path: str, msg: str) -> None: ...
    def number(self, path: str, name: str, value: Any) -> float | None: ...
    def unknown(self, path: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None: ...


def check_press_hold(c: _Checker, path: str, table: Any) -> dict[str, Any]:
    """Validated press_hold parameters (errors go to the checker, naming field and range)."""
    if not isinstance(table, Mapping):
        c.err(path, "must be a table like { setpoint_mpa = 12.0 }")
        return {}
    c.unknown(path, table, PRESS_HOLD_FIELDS)
    if "setpoint_mpa" not in table:
        c.err(f"{path}.setpoint_mpa", "missing (required in press_hold)")
    out: dict[str, Any] = {}
    for k in PRESS_HOLD_FIELDS:
        if k in table:
            v = c.number(f"{path}.{k}", k, table[k])
            if v is not None:
                out[k] = v
    if "stiffness_n_per_um" in out and ("kp_um_per_mpa" in out or "ki_um_per_mpa_s" in out):
        c.err(
            f"{path}.stiffness_n_per_um",
            "give either stiffness_n_per_um (gains from it) or kp_um_per_mpa/ki_um_per_mpa_s",
        )
    return out


def press_hold_board_problems(
    path: str, table: dict[str, Any], limits: dict[str, Any]
) -> list[str]:
    """What the board (its HELLO limits) would refuse in a step's press_hold, found before
    the run starts."""
    if not limits.get("press_um_per_step"):
        return [f"{path}.press_hold: this board has no press actuator"]
    out = []
    for k, lk in _BOARD_LIMITS.items():
        if k in table and lk in limits and float(table[k]) > float(limits[lk]) * (1 + 1e-6):
            out.append(
                f"{path}.press_hold.{k}: {table[k]!r}; allowed on this board: up to "
                f"{float(limits[lk]):g} ({lk})"
            )
    return out
