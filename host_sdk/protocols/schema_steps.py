"""Checks of the [[steps]] list: each step's kind, its required and allowed fields, their
ranges, and the rules between fields (one current, a cutoff on constant current, a
staircase that reaches its stop); `repeat` steps are unrolled here into device-level
Steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from host_sdk.protocols.conditions import MAX_EXPANDED, apply_until, check_until, for_each_items
from host_sdk.protocols.derate_schema import check_derate
from host_sdk.protocols.press_hold_schema import check_press_hold
from host_sdk.protocols.schema_checks import Checker
from host_sdk.protocols.schema_fields import COMMON, G_M_S2, LOOPS, RANGES, STEP_KINDS
from host_sdk.protocols.schema_loops import check_interlock, check_settle
from host_sdk.protocols.schema_model import Step

__all__ = ["check_steps"]


def check_steps(c: Checker, path: str, items: Any, depth: int = 0) -> list[Step]:
    """The device-level steps of list `items` (repeats unrolled); errors go to `c`."""
    out: list[Step] = []
    if not isinstance(items, list) or not items:
        c.err(path, "needs at least one step ([[steps]] tables)")
        return out
    for k, item in enumerate(items):
        p = f"{path}[{k}]"
        if not isinstance(item, Mapping):
            c.err(p, "must be a table")
            continue
        kind = item.get("kind")
        if not isinstance(kind, str) or kind not in STEP_KINDS:
            c.err(f"{p}.kind", f"{kind!r} is not a step kind; allowed: {', '.join(STEP_KINDS)}")
            continue
        required, optional = STEP_KINDS[kind]
        c.unknown(p, item, COMMON + LOOPS + required + optional)
        for r in required:
            if r not in item:
                c.err(f"{p}.{r}", f"missing (required for {kind})")
        if kind in ("repeat", "for_each"):
            if depth > 3:
                c.err(p, "repeats nested more than 4 deep")
                continue
            out.extend(_block(c, p, kind, item, depth))
            continue
        params: dict[str, Any] = {}
        for key, value in item.items():
            if key in RANGES:
                c.number(f"{p}.{key}", key, value)
                params[key] = value
            elif key == "mass_kg":
                # a TOML true is not a mass (bool is an int in Python)
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not 0 <= value <= 1e4
                ):
                    c.err(
                        f"{p}.mass_kg",
                        f"{value!r} out of range; allowed: a number in [0, 10000] kg",
                    )
                else:
                    params["load_n"] = float(value) * G_M_S2
                    params["mass_kg"] = value
            elif key == "cutoff":
                c.cutoff(f"{p}.cutoff", value)
                params["cutoff"] = dict(value) if isinstance(value, Mapping) else {}
            elif key == "fresh_cell":
                if not isinstance(value, bool):
                    c.err(f"{p}.fresh_cell", f"{value!r} must be true or false")
                elif value:
                    params["fresh_cell"] = True
            elif key in ("start_a", "step_a", "stop_a"):
                c.number(f"{p}.{key}", "current_a", value)
                params[key] = value
            elif key in ("start_a_m2", "step_a_m2", "stop_a_m2"):
                c.number(f"{p}.{key}", "current_a_m2", value)
                params[key] = value
        if "settle" in item:
            params["settle"] = check_settle(c, f"{p}.settle", item["settle"])
        if "interlock" in item:
            params["interlock"] = check_interlock(c, f"{p}.interlock", item["interlock"])
        if "derate" in item:
            params["derate"] = check_derate(c, f"{p}.derate", item["derate"], kind)
        if "press_hold" in item:
            params["press_hold"] = check_press_hold(c, f"{p}.press_hold", item["press_hold"])
        if kind in ("constant", "pulse_train", "gitt", "adaptive_pulses"):
            has = [c for c in ("current_a", "current_a_m2") if c in item]
            if len(has) != 1:
                c.err(
                    p,
                    f"{kind} needs exactly one of current_a (A) or current_a_m2 "
                    f"(A/m²); got {has or 'none'}",
                )
            if kind == "constant" and not (item.get("cutoff") or {}):
                c.err(
                    f"{p}.cutoff",
                    "a constant-current step needs a cutoff "
                    "(v_min_v, v_max_v, max_charge_c or max_duration_s)",
                )
        if kind == "staircase":
            _check_staircase(c, p, item)
        label = item.get("label", "")
        if not isinstance(label, str):
            c.err(f"{p}.label", f"{label!r} must be a string")
            label = ""
        streams = c.streams(f"{p}.streams", item["streams"]) if "streams" in item else {}
        step = Step(kind, params, label, streams, p)
        if "until" in item:
            until = check_until(c, f"{p}.until", item["until"], False)
            step = apply_until(c, f"{p}.until", step, until, False)
        out.append(step)
    return out


def _block(c: Checker, p: str, kind: str, item: Mapping[str, Any], depth: int) -> list[Step]:
    """A repeat (count times) or for_each (once per value), with its `until`."""
    until = check_until(c, f"{p}.until", item["until"], True) if "until" in item else None
    if kind == "repeat":
        n = c.number(f"{p}.count", "count", item.get("count", 1))
        inner = check_steps(c, f"{p}.steps", item.get("steps"), depth + 1)
        if until:
            inner = [apply_until(c, f"{p}.until", s, until, True) for s in inner]
        iterations = [inner] * int(n or 1)
    else:
        sets = for_each_items(c, p, item, STEP_KINDS)
        if sets is None:
            return []
        iterations = [check_steps(c, f"{p}.steps", s, depth + 1) for s in sets]
        if until:
            iterations = [
                [apply_until(c, f"{p}.until", s, until, True) for s in it] for it in iterations
            ]
    if until is not None:
        c.blocks[p] = until
    if until is None and not any(s.tags for it in iterations for s in it):
        return [s for it in iterations for s in it]
    if sum(len(it) for it in iterations) > MAX_EXPANDED:
        c.err(p, f"more than {MAX_EXPANDED} steps once unrolled; lower count")
        return []
    return [replace(s, tags=((p, k),) + s.tags) for k, it in enumerate(iterations) for s in it]


def _check_staircase(c: Checker, p: str, item: Mapping[str, Any]) -> None:
    in_a = [k in item for k in ("start_a", "step_a", "stop_a")]
    in_am2 = [k in item for k in ("start_a_m2", "step_a_m2", "stop_a_m2")]
    # one unit, complete and alone: a stray field of the other unit would be sent instead
    a = all(in_a) and not any(in_am2)
    am2 = all(in_am2) and not any(in_a)
    if a == am2:
        c.err(
            p,
            "staircase needs start/step/stop all in A (start_a, step_a, stop_a) "
            "or all in A/m² (start_a_m2, step_a_m2, stop_a_m2)",
        )
        return
    sfx = "_a" if a else "_a_m2"
    start, inc, stop = (item["start" + sfx], item["step" + sfx], item["stop" + sfx])
    if (
        isinstance(inc, int | float)
        and isinstance(start, int | float)
        and isinstance(stop, int | float)
    ):
        if inc == 0 or (stop - start) / inc < 0:
            c.err(
                f"{p}.step{sfx}",
                f"{inc!r} does not lead from start {start!r} to "
                f"stop {stop!r}; allowed: nonzero, with the sign of stop - start",
            )
        elif (stop - start) / inc > 100_000:
            c.err(f"{p}.step{sfx}", f"{inc!r} gives more than 100000 levels")
    on, dwell = item.get("on_s"), item.get("dwell_s")
    if isinstance(on, int | float) and isinstance(dwell, int | float) and on > dwell:
        c.err(f"{p}.on_s", f"{on!r} is longer than dwell_s = {dwell!r}; allowed: (0, dwell_s]")
