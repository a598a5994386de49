"""What a validated protocol file becomes: a Protocol of device-level Steps (repeats
unrolled), and the ProtocolError an invalid file raises."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from host_sdk.protocols.schema_fields import STREAM_NAMES

__all__ = ["Protocol", "ProtocolError", "Step", "stack_area_of", "staircase_levels"]


class ProtocolError(ValueError):
    """A protocol file is invalid; `errors` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: invalid protocol:\n  " + "\n  ".join(errors))


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
    """How many levels a staircase step runs (start to stop in `step` increments)."""
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
