"""The protocol file's vocabulary: which fields each table and step kind takes, and the
allowed range of every number (the checkers quote these ranges in their messages)."""

from __future__ import annotations

from host_sdk.protocols.derate_schema import DERATE_RANGES
from host_sdk.protocols.press_hold_schema import PRESS_HOLD_RANGES
from host_sdk.protocols.strain_schema import STRAIN_RANGES

__all__ = [
    "COMMON",
    "CURRENT_KINDS",
    "CUTOFF_FIELDS",
    "DAY_S",
    "G_M_S2",
    "INTERLOCK_FIELDS",
    "LOOPS",
    "RANGES",
    "SETTLE_FIELDS",
    "STEP_KINDS",
    "STREAM_NAMES",
    "range_text",
]

DAY_S = 86_400.0

# field -> (low, high, low_inclusive, unit, integer)
RANGES: dict[str, tuple[float, float, bool, str, bool]] = {
    "duration_s": (0.0, 30 * DAY_S, False, "s", False),
    "t_on_s": (1e-3, DAY_S, True, "s", False),
    "t_off_s": (0.0, DAY_S, True, "s", False),
    "t_pulse_s": (1e-3, DAY_S, True, "s", False),
    "t_rest_s": (0.0, 7 * DAY_S, True, "s", False),
    "dwell_s": (1e-3, DAY_S, True, "s", False),
    "on_s": (1e-3, DAY_S, True, "s", False),
    "count": (1, 65_535, True, "", True),  # the firmware counts pulses in 16 bits
    "current_a": (-10.0, 10.0, True, "A", False),
    "current_a_m2": (-1e4, 1e4, True, "A/m²", False),
    "rate_hz": (0.0, 100_000.0, False, "Hz", False),
    "area_m2": (0.0, 1.0, False, "m²", False),
    "stack_area_m2": (0.0, 1.0, False, "m²", False),
    "stack_diameter_m": (0.0, 1.0, False, "m", False),
    "diameter_m": (0.0, 1.0, False, "m", False),
    "v_min_v": (-10.0, 10.0, True, "V", False),
    "v_max_v": (-10.0, 10.0, True, "V", False),
    "max_charge_c": (0.0, 1e7, True, "C", False),
    "max_duration_s": (0.0, 30 * DAY_S, True, "s", False),
    "watchdog_s": (0.1, 600.0, True, "s", False),  # the watchdog cannot be switched off
    "load_n": (-1e5, 1e5, True, "N", False),
    # adaptive rests (host_sdk/loops.py): the `settle` table of adaptive_rest/adaptive_pulses
    "dvdt_v_per_s": (0.0, 10.0, False, "V/s", False),
    "hold_s": (0.0, 268.0, True, "s", False),  # the board times min/hold in 2**28 us
    "min_s": (0.0, 268.0, True, "s", False),
    "max_s": (1e-3, DAY_S, True, "s", False),
    "window_s": (1e-3, 60.0, True, "s", False),
    "p_min_mpa": (-1000.0, 1000.0, True, "MPa", False),
    "p_max_mpa": (-1000.0, 1000.0, True, "MPa", False),
    "hysteresis_mpa": (0.0, 1000.0, True, "MPa", False),
    **DERATE_RANGES,
    **STRAIN_RANGES,
    **PRESS_HOLD_RANGES,
}
SETTLE_FIELDS = ("dvdt_v_per_s", "hold_s", "min_s", "max_s", "window_s")
# any step may carry a pressure interlock (host_sdk/interlock.py): a stack-pressure window
# { p_min_mpa, p_max_mpa, hysteresis_mpa = 0, action = "suspend" | "end" } (needs the
# [cell] stack area)
# a current step may carry a derating by pressure rate (host_sdk/protocols/derate_schema.py)
# and any step an `until` (host_sdk/protocols/conditions.py) and a stack-pressure hold
# (host_sdk/protocols/press_hold_schema.py)
LOOPS = ("interlock", "derate", "until", "press_hold")
INTERLOCK_FIELDS = ("p_min_mpa", "p_max_mpa", "hysteresis_mpa", "action")
CUTOFF_FIELDS = ("v_min_v", "v_max_v", "max_charge_c", "max_duration_s")
CURRENT_KINDS = ("constant", "pulse_train", "gitt", "staircase")
COMMON = ("kind", "label", "streams", "fresh_cell")  # fields every step kind may carry
STEP_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required, optional)
    "rest": (("duration_s",), ()),
    "calibration_hold": (("duration_s",), ("load_n", "mass_kg")),
    "constant": ((), ("current_a", "current_a_m2", "cutoff")),
    "pulse_train": (("t_on_s", "t_off_s", "count"), ("current_a", "current_a_m2", "cutoff")),
    "gitt": (("t_pulse_s", "t_rest_s", "count"), ("current_a", "current_a_m2", "cutoff")),
    "staircase": (
        ("dwell_s", "on_s"),
        ("start_a", "step_a", "stop_a", "start_a_m2", "step_a_m2", "stop_a_m2", "cutoff"),
    ),
    "repeat": (("count", "steps"), ()),
    # conditional blocks (host_sdk/protocols/conditions.py): `until` on repeat/for_each ends
    # the block; for_each runs its steps once per value of `field`
    "for_each": (("field", "values", "steps"), ()),
    # closed loops on the board: rests that end when |dV/dt| stayed below settle.dvdt_v_per_s
    # for settle.hold_s (settle = { dvdt_v_per_s, max_s, hold_s, min_s, window_s, strain })
    "adaptive_rest": (("settle",), ()),
    "adaptive_pulses": (("t_on_s", "count", "settle"), ("current_a", "current_a_m2", "cutoff")),
}
STREAM_NAMES = ("load", "fbg", "elec", "temp")
G_M_S2 = 9.80665


def range_text(name: str) -> str:
    """The allowed range of field `name` as error messages quote it."""
    lo, hi, lo_incl, unit, integer = RANGES[name]
    kind = "an integer" if integer else "a number"
    left = "[" if lo_incl else "("
    return f"{kind} in {left}{lo:g}, {hi:g}] {unit}".rstrip()
