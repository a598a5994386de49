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
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from host_sdk.protocols.conditions import (
    MAX_EXPANDED,
    apply_until,
    check_until,
    for_each_items,
)
from host_sdk.protocols.derate_schema import DERATE_RANGES, check_derate

__all__ = [
    "CURRENT_KINDS",
    "STEP_KINDS",
    "Protocol",
    "ProtocolError",
    "Step",
    "load_protocol",
    "parse_protocol",
    "stack_area_of",
]

DAY_S = 86_400.0

# field -> (low, high, low_inclusive, unit, integer)
_RANGES: dict[str, tuple[float, float, bool, str, bool]] = {
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
}
SETTLE_FIELDS = ("dvdt_v_per_s", "hold_s", "min_s", "max_s", "window_s")
# any step may carry a pressure interlock (host_sdk/interlock.py): a stack-pressure window
# { p_min_mpa, p_max_mpa, hysteresis_mpa = 0, action = "suspend" | "end" } (needs the
# [cell] stack area)
# a current step may carry a derating by pressure rate (host_sdk/protocols/derate_schema.py)
# and any step an `until` (host_sdk/protocols/conditions.py)
_LOOPS = ("interlock", "derate", "until")
INTERLOCK_FIELDS = ("p_min_mpa", "p_max_mpa", "hysteresis_mpa", "action")
CUTOFF_FIELDS = ("v_min_v", "v_max_v", "max_charge_c", "max_duration_s")
CURRENT_KINDS = ("constant", "pulse_train", "gitt", "staircase")
_COMMON = ("kind", "label", "streams", "fresh_cell")
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
    # for settle.hold_s (settle = { dvdt_v_per_s, max_s, hold_s, min_s, window_s })
    "adaptive_rest": (("settle",), ()),
    "adaptive_pulses": (("t_on_s", "count", "settle"), ("current_a", "current_a_m2", "cutoff")),
}
STREAM_NAMES = ("load", "fbg", "elec", "temp")
G_M_S2 = 9.80665


class ProtocolError(ValueError):
    """A protocol file is invalid; `errors` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: invalid protocol:\n  " + "\n  ".join(errors))


def _range_text(name: str) -> str:
    lo, hi, lo_incl, unit, integer = _RANGES[name]
    kind = "an integer" if integer else "a number"
    left = "[" if lo_incl else "("
    return f"{kind} in {left}{lo:g}, {hi:g}] {unit}".rstrip()


@dataclass
class Step:
    """One device-level step (after `repeat` expansion)."""

    kind: str
    params: dict[str, Any]
    label: str = ""
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = ""  # where it came from in the file, e.g. steps[2].steps[0]
    # (block path, iteration) of the repeat/for_each blocks with an `until` around this
    # copy of the step (and the blocks around those), outermost first
    tags: tuple[tuple[str, int], ...] = ()

    @property
    def cutoff(self) -> dict[str, float]:
        return dict(self.params.get("cutoff", {}))

    @property
    def fresh_cell(self) -> bool:
        """The step starts on a new cell (see host_sdk.protocols.fresh_cell)."""
        return bool(self.params.get("fresh_cell", False))

    def current(self, prefix: str = "current") -> tuple[str, float]:
        """("a" or "a_m2", value) of the step's current."""
        if f"{prefix}_a" in self.params:
            return "a", float(self.params[f"{prefix}_a"])
        return "a_m2", float(self.params[f"{prefix}_a_m2"])

    def nominal_duration_s(self) -> float | None:
        """Device time the step takes without cutoffs (None: until a cutoff)."""
        p = self.params
        if self.kind in ("rest", "calibration_hold"):
            return float(p["duration_s"])
        if self.kind == "pulse_train":
            return float(p["count"]) * (float(p["t_on_s"]) + float(p["t_off_s"]))
        if self.kind == "gitt":
            return float(p["count"]) * (float(p["t_pulse_s"]) + float(p["t_rest_s"]))
        if self.kind == "staircase":
            return staircase_levels(self) * float(p["dwell_s"])
        if self.kind == "adaptive_rest":  # the longest it can take
            return float(p["settle"]["max_s"])
        if self.kind == "adaptive_pulses":
            return float(p["count"]) * (float(p["t_on_s"]) + float(p["settle"]["max_s"]))
        md = float(self.cutoff.get("max_duration_s", 0.0))
        return md or None


def staircase_levels(step: Step) -> int:
    sfx = "_a" if "start_a" in step.params else "_a_m2"
    start = float(step.params["start" + sfx])
    inc = float(step.params["step" + sfx])
    stop = float(step.params["stop" + sfx])
    return int(math.floor((stop - start) / inc + 1e-9)) + 1


@dataclass
class Protocol:
    name: str
    description: str
    cell: dict[str, Any]
    safety: dict[str, Any]
    streams: dict[str, dict[str, Any]]
    steps: list[Step]  # expanded: repeats unrolled
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> its until

    fbg: dict[str, Any] = field(default_factory=dict)

    @property
    def area_m2(self) -> float | None:
        """Electrode area (m²): what currents in A/m² are per."""
        a = self.cell.get("area_m2")
        return float(a) if a is not None else None

    @property
    def stack_area_m2(self) -> float | None:
        """Pressed (stack) area (m²) the load cell's force acts on: stack_area_m2, or the
        die's stack_diameter_m. None when the file gives neither."""
        return stack_area_of(self.cell)

    @property
    def reference_grating(self) -> str | None:
        g = self.fbg.get("reference_grating")
        return str(g) if g else None

    def nominal_duration_s(self) -> float | None:
        total = 0.0
        for s in self.steps:
            d = s.nominal_duration_s()
            if d is None:
                return None
            total += d
        return total

    def with_streams(self, streams: dict[str, dict[str, Any]]) -> tuple[Protocol, list[str]]:
        """This protocol with `streams` (e.g. from `--streams`) instead of its own [streams]:
        streams not named are disabled, and steps no longer change the named ones. Returns
        the new protocol and notes saying what was overridden."""
        notes: list[str] = []
        mine = {k: v for k, v in self.streams.items() if v.get("enabled", True)}
        if mine and mine != streams:
            notes.append(
                f"the protocol's [streams] ({_streams_text(mine)}) replaced by "
                f"{_streams_text(streams)}"
            )
        table = dict(streams)
        for name in STREAM_NAMES:
            table.setdefault(name, {"enabled": False})
        steps = []
        for st in self.steps:
            dropped = sorted(set(st.streams) & set(streams))
            if dropped:
                notes.append(f"{st.path}.streams: {', '.join(dropped)} kept as given")
            kept = {k: v for k, v in st.streams.items() if k not in streams}
            steps.append(Step(st.kind, st.params, st.label, kept, st.path))
        return replace(self, streams=table, steps=steps), notes

    def to_dict(self) -> dict[str, Any]:
        """What goes into a recording's metadata: the file as written, plus its source."""
        return {"source": self.source, "name": self.name, "file": self.raw}


def _streams_text(streams: Mapping[str, Mapping[str, Any]]) -> str:
    return ",".join(
        f"{k}:{float(v['rate_hz']):g}" if "rate_hz" in v else k for k, v in streams.items()
    )


def stack_area_of(cell: Mapping[str, Any]) -> float | None:
    """The stack area of a [cell] table: stack_area_m2, or π (d/2)² of stack_diameter_m."""
    if cell.get("stack_area_m2") is not None:
        return float(cell["stack_area_m2"])
    if cell.get("stack_diameter_m") is not None:
        return math.pi * (float(cell["stack_diameter_m"]) / 2.0) ** 2
    return None


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.blocks: dict[str, dict[str, float]] = {}

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def number(self, path: str, name: str, value: Any) -> float | None:
        lo, hi, lo_incl, _unit, integer = _RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.err(path, f"{value!r} is not a number; allowed: {_range_text(name)}")
            return None
        if integer and not (isinstance(value, int) or float(value).is_integer()):
            self.err(path, f"{value!r} is not an integer; allowed: {_range_text(name)}")
            return None
        v = float(value)
        ok = (v >= lo if lo_incl else v > lo) and v <= hi and math.isfinite(v)
        if not ok:
            self.err(path, f"{value!r} is out of range; allowed: {_range_text(name)}")
            return None
        return v

    def unknown(self, path: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                self.err(
                    f"{path}.{key}" if path else key,
                    f"unknown field; allowed here: {', '.join(allowed)}",
                )

    def streams(self, path: str, table: Any) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if not isinstance(table, Mapping):
            self.err(path, f"{table!r} must be a table of streams ({', '.join(STREAM_NAMES)})")
            return out
        for name, cfg in table.items():
            p = f"{path}.{name}"
            if name not in STREAM_NAMES:
                self.err(p, f"unknown stream; allowed: {', '.join(STREAM_NAMES)}")
                continue
            if not isinstance(cfg, Mapping):
                self.err(p, "must be a table like { rate_hz = 100, enabled = true }")
                continue
            self.unknown(p, cfg, ("rate_hz", "enabled"))
            if "rate_hz" in cfg:
                self.number(f"{p}.rate_hz", "rate_hz", cfg["rate_hz"])
            if "enabled" in cfg and not isinstance(cfg["enabled"], bool):
                self.err(f"{p}.enabled", f"{cfg['enabled']!r} must be true or false")
            out[name] = dict(cfg)
        return out

    def cutoff(self, path: str, table: Any) -> None:
        if not isinstance(table, Mapping):
            self.err(path, "must be a table like { v_max_v = 3.0 }")
            return
        self.unknown(path, table, CUTOFF_FIELDS)
        vals = {k: self.number(f"{path}.{k}", k, v) for k, v in table.items() if k in _RANGES}
        lo, hi = vals.get("v_min_v"), vals.get("v_max_v")
        if lo is not None and hi is not None and lo >= hi:
            self.err(path, f"v_min_v = {lo:g} must be below v_max_v = {hi:g}")

    def steps(self, path: str, items: Any, depth: int = 0) -> list[Step]:
        out: list[Step] = []
        if not isinstance(items, list) or not items:
            self.err(path, "needs at least one step ([[steps]] tables)")
            return out
        for k, item in enumerate(items):
            p = f"{path}[{k}]"
            if not isinstance(item, Mapping):
                self.err(p, "must be a table")
                continue
            kind = item.get("kind")
            if kind not in STEP_KINDS:
                self.err(
                    f"{p}.kind", f"{kind!r} is not a step kind; allowed: {', '.join(STEP_KINDS)}"
                )
                continue
            required, optional = STEP_KINDS[kind]
            self.unknown(p, item, _COMMON + _LOOPS + required + optional)
            for r in required:
                if r not in item:
                    self.err(f"{p}.{r}", f"missing (required for {kind})")
            if kind in ("repeat", "for_each"):
                if depth > 3:
                    self.err(p, "repeats nested more than 4 deep")
                    continue
                out.extend(self._block(p, kind, item, depth))
                continue
            params: dict[str, Any] = {}
            for key, value in item.items():
                if key in _RANGES:
                    self.number(f"{p}.{key}", key, value)
                    params[key] = value
                elif key == "mass_kg":
                    if not isinstance(value, int | float) or not 0 <= value <= 1e4:
                        self.err(
                            f"{p}.mass_kg",
                            f"{value!r} out of range; allowed: a number in [0, 10000] kg",
                        )
                    else:
                        params["load_n"] = float(value) * G_M_S2
                        params["mass_kg"] = value
                elif key == "cutoff":
                    self.cutoff(f"{p}.cutoff", value)
                    params["cutoff"] = dict(value) if isinstance(value, Mapping) else {}
                elif key == "fresh_cell":
                    if not isinstance(value, bool):
                        self.err(f"{p}.fresh_cell", f"{value!r} must be true or false")
                    elif value:
                        params["fresh_cell"] = True
                elif key in ("start_a", "step_a", "stop_a"):
                    self.number(f"{p}.{key}", "current_a", value)
                    params[key] = value
                elif key in ("start_a_m2", "step_a_m2", "stop_a_m2"):
                    self.number(f"{p}.{key}", "current_a_m2", value)
                    params[key] = value
            if "settle" in item:
                params["settle"] = self.settle(f"{p}.settle", item["settle"])
            if "interlock" in item:
                params["interlock"] = self.interlock(f"{p}.interlock", item["interlock"])
            if "derate" in item:
                params["derate"] = check_derate(self, f"{p}.derate", item["derate"], kind)
            if kind in ("constant", "pulse_train", "gitt", "adaptive_pulses"):
                has = [c for c in ("current_a", "current_a_m2") if c in item]
                if len(has) != 1:
                    self.err(
                        p,
                        f"{kind} needs exactly one of current_a (A) or current_a_m2 "
                        f"(A/m²); got {has or 'none'}",
                    )
                if kind == "constant" and not (item.get("cutoff") or {}):
                    self.err(
                        f"{p}.cutoff",
                        "a constant-current step needs a cutoff "
                        "(v_min_v, v_max_v, max_charge_c or max_duration_s)",
                    )
            if kind == "staircase":
                self._staircase(p, item)
            if kind in ("pulse_train", "gitt") and "t_on_s" in item and "t_off_s" in item:
                pass
            label = item.get("label", "")
            if not isinstance(label, str):
                self.err(f"{p}.label", f"{label!r} must be a string")
                label = ""
            streams = self.streams(f"{p}.streams", item["streams"]) if "streams" in item else {}
            step = Step(kind, params, label, streams, p)
            if "until" in item:
                until = check_until(self, f"{p}.until", item["until"], False)
                step = apply_until(self, f"{p}.until", step, until, False)
            out.append(step)
        return out

    def _block(self, p: str, kind: str, item: Mapping[str, Any], depth: int) -> list[Step]:
        """A repeat (count times) or for_each (once per value), with its `until`."""
        until = check_until(self, f"{p}.until", item["until"], True) if "until" in item else None
        if kind == "repeat":
            n = self.number(f"{p}.count", "count", item.get("count", 1))
            inner = self.steps(f"{p}.steps", item.get("steps"), depth + 1)
            if until:
                inner = [apply_until(self, f"{p}.until", s, until, True) for s in inner]
            iterations = [inner] * int(n or 1)
        else:
            sets = for_each_items(self, p, item, STEP_KINDS)
            if sets is None:
                return []
            iterations = [self.steps(f"{p}.steps", s, depth + 1) for s in sets]
            if until:
                iterations = [
                    [apply_until(self, f"{p}.until", s, until, True) for s in it]
                    for it in iterations
                ]
        if until is not None:
            self.blocks[p] = until
        if until is None and not any(s.tags for it in iterations for s in it):
            return [s for it in iterations for s in it]
        if sum(len(it) for it in iterations) > MAX_EXPANDED:
            self.err(p, f"more than {MAX_EXPANDED} steps once unrolled; lower count")
            return []
        return [replace(s, tags=((p, k),) + s.tags) for k, it in enumerate(iterations) for s in it]

    def settle(self, path: str, table: Any) -> dict[str, float]:
        """The `settle` table of an adaptive rest: dvdt_v_per_s and max_s required."""
        if not isinstance(table, Mapping):
            self.err(path, "must be a table like { dvdt_v_per_s = 5e-4, max_s = 30 }")
            return {}
        self.unknown(path, table, SETTLE_FIELDS)
        for r in ("dvdt_v_per_s", "max_s"):
            if r not in table:
                self.err(f"{path}.{r}", "missing (required in settle)")
        out: dict[str, float] = {}
        for k in SETTLE_FIELDS:
            if k in table:
                v = self.number(f"{path}.{k}", k, table[k])
                if v is not None:
                    out[k] = v
        mx = out.get("max_s")
        for k in ("min_s", "hold_s"):
            if mx is not None and k in out and out[k] > mx:
                self.err(f"{path}.{k}", f"{out[k]:g} s is longer than max_s = {mx:g} s")
        return out

    def interlock(self, path: str, table: Any) -> dict[str, Any]:
        """A step's pressure interlock: p_min_mpa < p_max_mpa, hysteresis under half."""
        if not isinstance(table, Mapping):
            self.err(path, "must be a table like { p_min_mpa = 9, p_max_mpa = 11 }")
            return {}
        self.unknown(path, table, INTERLOCK_FIELDS)
        out: dict[str, Any] = {"hysteresis_mpa": 0.0, "action": "suspend"}
        for k in ("p_min_mpa", "p_max_mpa"):
            if k not in table:
                self.err(f"{path}.{k}", "missing (required in interlock)")
        for k in ("p_min_mpa", "p_max_mpa", "hysteresis_mpa"):
            if k in table:
                v = self.number(f"{path}.{k}", k, table[k])
                if v is not None:
                    out[k] = v
        act = table.get("action", "suspend")
        if act not in ("suspend", "end"):
            self.err(f"{path}.action", f"{act!r}; allowed: suspend, end")
        out["action"] = act
        lo, hi = out.get("p_min_mpa"), out.get("p_max_mpa")
        if lo is not None and hi is not None:
            if lo >= hi:
                self.err(path, f"p_min_mpa = {lo:g} must be below p_max_mpa = {hi:g}")
            elif out["hysteresis_mpa"] * 2 >= hi - lo:
                self.err(
                    f"{path}.hysteresis_mpa",
                    f"{out['hysteresis_mpa']:g} MPa; allowed: below half the window "
                    f"({(hi - lo) / 2:g} MPa)",
                )
        return out

    def _staircase(self, p: str, item: Mapping[str, Any]) -> None:
        a = all(k in item for k in ("start_a", "step_a", "stop_a"))
        am2 = all(k in item for k in ("start_a_m2", "step_a_m2", "stop_a_m2"))
        if a == am2:
            self.err(
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
                self.err(
                    f"{p}.step{sfx}",
                    f"{inc!r} does not lead from start {start!r} to "
                    f"stop {stop!r}; allowed: nonzero, with the sign of stop - start",
                )
            elif (stop - start) / inc > 100_000:
                self.err(f"{p}.step{sfx}", f"{inc!r} gives more than 100000 levels")
        on, dwell = item.get("on_s"), item.get("dwell_s")
        if isinstance(on, int | float) and isinstance(dwell, int | float) and on > dwell:
            self.err(
                f"{p}.on_s", f"{on!r} is longer than dwell_s = {dwell!r}; allowed: (0, dwell_s]"
            )


def parse_protocol(data: Mapping[str, Any], source: str = "<protocol>") -> Protocol:
    """Validate a parsed TOML document; raise ProtocolError listing every problem."""
    c = _Checker()
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
    steps = c.steps("steps", data.get("steps"))
    loops = [k for k in ("interlock", "derate") if any(k in s.params for s in steps)]
    if loops and stack_area_of(cell) is None:
        what = "a pressure interlock" if loops[0] == "interlock" else "a pressure-rate derating"
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
        blocks=dict(c.blocks),
        source=source,
        raw=dict(data),
        fbg=dict(fbg),
    )


def _check_stack_area(c: _Checker, cell: Mapping[str, Any]) -> None:
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
