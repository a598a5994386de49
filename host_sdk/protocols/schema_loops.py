"""Checks of the closed-loop tables a step may carry: `settle` (the adaptive rests of
adaptive_rest/adaptive_pulses, host_sdk/loops.py) and `interlock` (a stack-pressure window,
host_sdk/interlock.py). The board runs both loops; these checks keep their numbers in what
it can time and hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host_sdk.protocols.schema_checks import Checker
from host_sdk.protocols.schema_fields import INTERLOCK_FIELDS, SETTLE_FIELDS
from host_sdk.protocols.strain_schema import check_strain_settle

__all__ = ["check_interlock", "check_settle"]


def check_settle(c: Checker, path: str, table: Any) -> dict[str, Any]:
    """The `settle` table of an adaptive rest: dvdt_v_per_s and max_s required; an optional
    `strain` table (host_sdk/protocols/strain_schema.py)."""
    if not isinstance(table, Mapping):
        c.err(path, "must be a table like { dvdt_v_per_s = 5e-4, max_s = 30 }")
        return {}
    c.unknown(path, table, (*SETTLE_FIELDS, "strain"))
    for r in ("dvdt_v_per_s", "max_s"):
        if r not in table:
            c.err(f"{path}.{r}", "missing (required in settle)")
    out: dict[str, Any] = {}
    if "strain" in table:
        out["strain"] = check_strain_settle(c, f"{path}.strain", table["strain"])
    for k in SETTLE_FIELDS:
        if k in table:
            v = c.number(f"{path}.{k}", k, table[k])
            if v is not None:
                out[k] = v
    mx = out.get("max_s")
    for k in ("min_s", "hold_s"):
        if mx is not None and k in out and out[k] > mx:
            c.err(f"{path}.{k}", f"{out[k]:g} s is longer than max_s = {mx:g} s")
    return out


def check_interlock(c: Checker, path: str, table: Any) -> dict[str, Any]:
    """A step's pressure interlock: p_min_mpa < p_max_mpa, hysteresis under half."""
    if not isinstance(table, Mapping):
        c.err(path, "must be a table like { p_min_mpa = 9, p_max_mpa = 11 }")
        return {}
    c.unknown(path, table, INTERLOCK_FIELDS)
    out: dict[str, Any] = {"hysteresis_mpa": 0.0, "action": "suspend"}
    for k in ("p_min_mpa", "p_max_mpa"):
        if k not in table:
            c.err(f"{path}.{k}", "missing (required in interlock)")
    for k in ("p_min_mpa", "p_max_mpa", "hysteresis_mpa"):
        if k in table:
            v = c.number(f"{path}.{k}", k, table[k])
            if v is not None:
                out[k] = v
    act = table.get("action", "suspend")
    if act not in ("suspend", "end"):
        c.err(f"{path}.action", f"{act!r}; allowed: suspend, end")
    out["action"] = act
    lo, hi = out.get("p_min_mpa"), out.get("p_max_mpa")
    if lo is not None and hi is not None:
        if lo >= hi:
            c.err(path, f"p_min_mpa = {lo:g} must be below p_max_mpa = {hi:g}")
        elif out["hysteresis_mpa"] * 2 >= hi - lo:
            c.err(
                f"{path}.hysteresis_mpa",
                f"{out['hysteresis_mpa']:g} MPa; allowed: below half the window "
                f"({(hi - lo) / 2:g} MPa)",
            )
    return out
