"""Conditional protocol steps (issue 14, item 5): `until` on a step or a repeat, and
`for_each` over a list of values.

A step's `until` ends it on the board, on its own clock, by the board's own cutoffs:

    until = { v_max_v = 3.0 }            # the voltage cutoff (the tighter of until/cutoff)
    until = { capacity_c = 0.5 }         # the charge cutoff (max_charge_c)
    until = { p_max_mpa = 12.0 }         # a pressure interlock that ends the step
                                         # (window [p_min_mpa (default -p_max), p_max])
    until = { dvdt_v_per_s = 5e-4 }      # rests only: |dV/dt| at or below it (an adaptive
                                         # rest; duration_s is the maximum)

A `repeat` (at most `count` times) or a `for_each` may carry `until` too: the voltage and
pressure conditions are put on every step inside (so the board ends the step that reaches
them), and the block ends when one of its steps ended that way; `capacity_c` is the charge
of all the block's steps together, checked by the host after each step. `for_each` runs its
steps once per value, with `field` set to it in every inner step that takes that field:

    [[steps]]
    kind = "for_each"
    field = "t_off_s"
    values = [0.1, 0.5, 1.0]         # or { start = 0.5, step = 0.1, stop = 10.0 }
    until = { v_max_v = 3.0 }        # optional, as for repeat
    [[steps.steps]]
    ...
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from host_sdk.protocols.schema import Protocol, Step

UNTIL_FIELDS = ("v_max_v", "v_min_v", "capacity_c", "p_max_mpa", "p_min_mpa", "dvdt_v_per_s")
BLOCK_UNTIL_FIELDS = ("v_max_v", "v_min_v", "capacity_c", "p_max_mpa", "p_min_mpa")
_CURRENT = ("constant", "pulse_train", "gitt", "staircase", "adaptive_pulses")
# the step kinds a block's voltage condition is put on (those that pass current)
MAX_EXPANDED = 200_000  # steps after unrolling: a file cannot ask for unbounded memory
FOR_EACH_MAX_VALUES = 10_000


def check_until(c: Any, path: str, table: Any, block: bool) -> dict[str, float]:
    """Validated `until` conditions (errors name the field and the range)."""
    allowed = BLOCK_UNTIL_FIELDS if block else UNTIL_FIELDS
    if not isinstance(table, Mapping) or not table:
        c.err(path, "must be a table like { v_max_v = 3.0 } (" + ", ".join(allowed) + ")")
        return {}
    c.unknown(path, table, allowed)
    out: dict[str, float] = {}
    for k in allowed:
        if k in table:
            name = "max_charge_c" if k == "capacity_c" else k
            v = c.number(f"{path}.{k}", name, table[k])
            if v is not None:
                out[k] = v
    if "capacity_c" in out and out["capacity_c"] <= 0:
        c.err(f"{path}.capacity_c", f"{out['capacity_c']:g} C; allowed: above 0 C")
    lo, hi = out.get("v_min_v"), out.get("v_max_v")
    if lo is not None and hi is not None and lo >= hi:
        c.err(path, f"v_min_v = {lo:g} must be below v_max_v = {hi:g}")
    if "p_min_mpa" in out and "p_max_mpa" not in out:
        c.err(f"{path}.p_max_mpa", "missing; a pressure condition needs p_max_mpa")
    plo, phi = out.get("p_min_mpa"), out.get("p_max_mpa")
    if phi is not None:
        plo = -abs(phi) if plo is None else plo
        if plo >= phi:
            c.err(path, f"p_min_mpa = {plo:g} must be below p_max_mpa = {phi:g}")
        out["p_min_mpa"] = plo
    return out


def apply_until(c: Any, path: str, step: Step, until: Mapping[str, float], block: bool) -> Step:
    """A copy of `step` carrying the conditions the board acts on (cutoffs, an ending
    interlock, an adaptive rest). A block's conditions skip what a step cannot carry."""
    params = dict(step.params)
    kind = step.kind
    cut = dict(params.get("cutoff", {}))
    if "v_max_v" in until or "v_min_v" in until:
        if kind in _CURRENT:
            if "v_max_v" in until:
                cut["v_max_v"] = min(cut.get("v_max_v", math.inf), until["v_max_v"])
            if "v_min_v" in until:
                cut["v_min_v"] = max(cut.get("v_min_v", -math.inf), until["v_min_v"])
        elif not block:
            c.err(f"{path}.v_max_v", f"only on current steps ({', '.join(_CURRENT)})")
    if "capacity_c" in until and not block:
        if kind in _CURRENT:
            cut["max_charge_c"] = min(cut.get("max_charge_c", math.inf), until["capacity_c"])
        else:
            c.err(f"{path}.capacity_c", f"only on current steps ({', '.join(_CURRENT)})")
    if cut:
        params["cutoff"] = cut
    if "p_max_mpa" in until:
        if "interlock" in params:
            c.err(
                f"{step.path}.interlock",
                f"conflicts with the pressure condition of {path} (one window per step)",
            )
        params["interlock"] = {
            "p_min_mpa": until["p_min_mpa"],
            "p_max_mpa": until["p_max_mpa"],
            "hysteresis_mpa": 0.0,
            "action": "end",
        }
    if "dvdt_v_per_s" in until:
        if kind != "rest":
            c.err(f"{path}.dvdt_v_per_s", "only on rests (the board's adaptive rest)")
        else:
            kind = "adaptive_rest"
            settle = {
                "dvdt_v_per_s": until["dvdt_v_per_s"],
                "max_s": float(params.pop("duration_s")),
            }
            if settle["max_s"] > 86_400.0:
                c.err(f"{step.path}.duration_s", "at most 86400 s with until dV/dt")
            settle["hold_s"] = min(0.5, settle["max_s"])
            settle["window_s"] = min(0.5, settle["max_s"])
            params["settle"] = settle
    return replace(step, kind=kind, params=params)


def for_each_items(c: Any, path: str, item: Mapping[str, Any], kinds: Mapping[str, Any]) -> Any:
    """The inner step tables once per value (field set where a step takes it), or None."""
    fld = item.get("field")
    inner = item.get("steps")
    if not isinstance(fld, str):
        c.err(f"{path}.field", f"{fld!r}: the name of a step field (e.g. t_off_s)")
        return None
    if not isinstance(inner, list) or not inner:
        c.err(f"{path}.steps", "needs at least one step ([[steps.steps]] tables)")
        return None
    vals = item.get("values")
    if isinstance(vals, Mapping):
        c.unknown(f"{path}.values", vals, ("start", "step", "stop"))
        try:
            a, d, b = (float(vals[k]) for k in ("start", "step", "stop"))
        except (KeyError, TypeError, ValueError):
            c.err(f"{path}.values", "needs numbers start, step (> 0) and stop (>= start)")
            return None
        if not d > 0 or b < a or (b - a) / d + 1 > FOR_EACH_MAX_VALUES:
            c.err(
                f"{path}.values",
                f"start {a:g}, step {d:g}, stop {b:g}: step > 0, stop >= start, at most "
                f"{FOR_EACH_MAX_VALUES} values",
            )
            return None
        n = int(math.floor((b - a) / d + 1e-9)) + 1
        vals = [round(a + j * d, 12) for j in range(n)]
    if not isinstance(vals, list) or not vals or len(vals) > FOR_EACH_MAX_VALUES:
        c.err(f"{path}.values", f"a list of 1..{FOR_EACH_MAX_VALUES} values, or a range table")
        return None
    takers = [
        k
        for k, s in enumerate(inner)
        if isinstance(s, Mapping)
        and s.get("kind") in kinds
        and fld in kinds[s["kind"]][0] + kinds[s["kind"]][1]
    ]
    if not takers:
        c.err(f"{path}.field", f"{fld!r}: no step inside takes this field")
        return None
    out = []
    for v in vals:
        its = copy.deepcopy(inner)
        for k in takers:
            its[k][fld] = v
            label = its[k].get("label", "")
            if isinstance(label, str):
                its[k]["label"] = (label + " " if label else "") + f"{fld}={v:g}"
        out.append(its)
    return out


def holds(until: Mapping[str, float], cause: str, charge_c: float) -> bool:
    """A block's condition after one of its steps ended with `cause`; `charge_c` is the
    charge of the block's steps so far."""
    return (
        ("v_max_v" in until and cause == "v_max")
        or ("v_min_v" in until and cause == "v_min")
        or ("p_max_mpa" in until and cause == "pressure")
        or ("capacity_c" in until and charge_c >= until["capacity_c"])
    )


def next_step(
    protocol: Protocol, i: int, cause: str, charge_c: float, acc: dict[Any, float]
) -> tuple[int, str | None]:
    """The index of the step to run after step i ended (`cause`, `charge_c` its charge),
    and a note when a block's `until` held (its remaining steps are skipped)."""
    steps = protocol.steps
    s = steps[i]
    for k, (gpath, it) in enumerate(s.tags):  # the outermost block whose condition holds
        until = protocol.blocks.get(gpath)
        if not until:
            continue
        key = (s.tags[:k], gpath)
        acc[key] = acc.get(key, 0.0) + abs(charge_c)
        if not holds(until, cause, acc[key]):
            continue
        j = i + 1
        while j < len(steps):
            t = steps[j].tags
            if len(t) <= k or t[:k] != s.tags[:k] or t[k][0] != gpath:
                break
            j += 1
        q = acc.pop(key)
        return j, f"{gpath} until held ({cause}, {q:.6g} C) after iteration {it + 1}"
    return i + 1, None
