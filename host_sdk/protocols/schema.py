"""Experiment protocol files (TOML): load, validate, expand.

    [protocol]
    name = "pulsed-stripping"
    [cell]
    area_m2 = 3.85e-5              # electrode area: currents in A/m² use it
    stack_diameter_m = 0.012       # or stack_area_m2: the pressed area (stack pressure)
    [fbg]
    reference_grating = "g1"       # strain-free grating for temperature compensation
    [safety]
    v_min_v = -1.0
    v_max_v = 3.0
    watchdog_s = 5.0
    [streams]
    elec = { rate_hz = 100 }
    [[steps]]
    kind = "pulse_train"
    current_a_m2 = 10.0            # or current_a (A)
    t_on_s = 1.0
    t_off_s = 0.5
    count = 100000
    cutoff = { v_max_v = 3.0 }     # v_min_v, v_max_v, max_charge_c, max_duration_s

Step kinds: rest, constant, pulse_train, staircase, gitt, calibration_hold, repeat (with
`count` and nested `steps`), for_each (nested `steps` once per value of `field`), and the
board's closed loops adaptive_rest, adaptive_pulses. A step or block may end `until` a
condition (host_sdk.protocols.conditions); a step may carry an `interlock`, a current step
a `derate` (host_sdk.protocols.derate_schema). Any step may carry `streams` (rates applied
before it), a `label`, and `fresh_cell = true`: the step starts on a new cell (an emulated
board resets its simulated cell; on a real rig the run pauses and asks the operator; see
host_sdk.protocols.fresh_cell). Every error names the field (as a path like
`steps[2].t_on_s`), the value, and the allowed range; all errors of a file are reported
together.

This module reads and checks a whole file; the rest is split by job:
schema_fields (field tables and ranges), schema_model (Protocol, Step, ProtocolError),
schema_checks (the checker's basics, streams and cutoff), schema_steps (the [[steps]]
list) and schema_loops (the settle and interlock tables). The public names stay
importable from here.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from host_sdk.protocols.schema_checks import Checker
from host_sdk.protocols.schema_fields import (
    CURRENT_KINDS,
    CUTOFF_FIELDS,
    DAY_S,
    G_M_S2,
    INTERLOCK_FIELDS,
    SETTLE_FIELDS,
    STEP_KINDS,
    STREAM_NAMES,
)
from host_sdk.protocols.schema_model import (
    Protocol,
    ProtocolError,
    Step,
    stack_area_of,
    staircase_levels,
)
from host_sdk.protocols.schema_steps import check_steps
from host_sdk.protocols.strain_schema import default_reference

__all__ = [
    "CURRENT_KINDS",
    "STEP_KINDS",
    "Protocol",
    "ProtocolError",
    "Step",
    "load_protocol",
    "parse_protocol",
    "stack_area_of",
    # the other public names the unsplit schema.py defined, still importable from here
    "CUTOFF_FIELDS",
    "DAY_S",
    "G_M_S2",
    "INTERLOCK_FIELDS",
    "SETTLE_FIELDS",
    "STREAM_NAMES",
    "staircase_levels",
]


def parse_protocol(data: Mapping[str, Any], source: str = "<protocol>") -> Protocol:
    """Validate a parsed TOML document; raise ProtocolError listing every problem."""
    c = Checker()
    c.unknown("", data, ("protocol", "cell", "safety", "streams", "steps", "fbg"))
    head = data.get("protocol", {})
    if not isinstance(head, Mapping):
        c.err("protocol", "must be a table with name and description")
        head = {}
    c.unknown("protocol", head, ("name", "description", "source", "seed"))
    name = head.get("name", Path(source).stem)
    cell = data.get("cell", {})
    if not isinstance(cell, Mapping):
        c.err("cell", "must be a table like { area_m2 = 3.85e-5 }")
        cell = {}
    cell_keys = ("area_m2", "stack_area_m2", "stack_diameter_m", "diameter_m")
    c.unknown("cell", cell, ("label", *cell_keys))
    for key in cell_keys:
        if key in cell:
            c.number(f"cell.{key}", key, cell[key])
    _check_stack_area(c, cell)
    fbg = data.get("fbg", {})
    if not isinstance(fbg, Mapping):
        c.err("fbg", 'must be a table like { reference_grating = "g1" }')
        fbg = {}
    c.unknown("fbg", fbg, ("reference_grating",))
    if "reference_grating" in fbg and not isinstance(fbg["reference_grating"], str):
        c.err("fbg.reference_grating", f"{fbg['reference_grating']!r} must be a field name")
    safety = data.get("safety", {})
    if not isinstance(safety, Mapping):
        c.err("safety", "must be a table like { v_min_v = 0.0, v_max_v = 4.2 }")
        safety = {}
    c.unknown("safety", safety, ("v_min_v", "v_max_v", "watchdog_s"))
    for key in ("v_min_v", "v_max_v", "watchdog_s"):
        if key in safety:
            c.number(f"safety.{key}", key, safety[key])
    if (
        isinstance(safety.get("v_min_v"), int | float)
        and isinstance(safety.get("v_max_v"), int | float)
        and safety["v_min_v"] >= safety["v_max_v"]
    ):
        c.err(
            "safety", f"v_min_v = {safety['v_min_v']} must be below v_max_v = {safety['v_max_v']}"
        )
    streams = c.streams("streams", data.get("streams", {}))
    steps = check_steps(c, "steps", data.get("steps"))
    if isinstance(fbg.get("reference_grating"), str):
        for s in steps:  # strain criteria compensate with it unless they say otherwise
            default_reference(s.params, fbg["reference_grating"])
    loops = [
        k
        for k in ("interlock", "derate", "press_hold")
        if any(k in s.params and s.params[k].get("signal") != "strain" for s in steps)
    ]
    if loops and stack_area_of(cell) is None:
        what = {
            "interlock": "a pressure interlock",
            "derate": "a pressure-rate derating",
            "press_hold": "a stack-pressure hold",
        }[loops[0]]
        c.err(
            "cell.stack_area_m2",
            f"missing; a step has {what}, so the stack area is needed "
            "(stack_area_m2 or stack_diameter_m)",
        )
    uses_density = any(any(k.endswith("_a_m2") for k in s.params) for s in steps)
    if uses_density and "area_m2" not in cell:
        c.err("cell.area_m2", "missing; steps give currents in A/m² so the cell area is needed")
    if c.errors:
        raise ProtocolError(source, list(dict.fromkeys(c.errors)))  # for_each repeats them
    return Protocol(
        name=str(name),
        description=str(head.get("description", "")),
        cell=dict(cell),
        safety=dict(safety),
        streams=streams,
        steps=steps,
        source=source,
        raw=dict(data),
        blocks=dict(c.blocks),
        fbg=dict(fbg),
    )


def _check_stack_area(c: Checker, cell: Mapping[str, Any]) -> None:
    """stack_area_m2 and stack_diameter_m must agree when both are given (1 %)."""
    a, d = cell.get("stack_area_m2"), cell.get("stack_diameter_m")
    if not (isinstance(a, int | float) and isinstance(d, int | float)) or a <= 0 or d <= 0:
        return
    from_d = math.pi * (float(d) / 2.0) ** 2
    if abs(from_d / float(a) - 1.0) > 0.01:
        c.err(
            "cell.stack_area_m2",
            f"{a!r} m² disagrees with stack_diameter_m = {d!r} m ({from_d:.4g} m²); "
            "give one of them",
        )


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a TOML protocol file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ProtocolError(str(p), [f"cannot read: {e}"]) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProtocolError(str(p), [f"not valid TOML: {e}"]) from e
    return parse_protocol(data, str(p))
