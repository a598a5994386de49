"""What every per-step analysis gets (the experiment, its SI channels, the options) and
what it gives back (numbers per step, figures, refusals with their reasons, lines to
print)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host_sdk.analysis.figures.style import FORMATS, Figure
from host_sdk.analysis.planner import FilmMaterial
from host_sdk.recording.experiment import Experiment, StepRun

C_M2_PER_MAH_CM2 = 36_000.0  # 1 mAh cm⁻² = 3.6 C / 1e-4 m²
SILICA_E_PA = 72e9  # Young's modulus of the silica fibre (σ = E ε on the grating)


@dataclass
class Options:
    """What the user may add to the recording: a film for the planner, GITT geometry, the
    modulus that turns FBG strain into stress, the figure formats."""

    film: FilmMaterial | None = None
    v_over_s_m: float | None = None
    geometry: str = "film"
    fbg_modulus_pa: float = SILICA_E_PA
    formats: tuple[str, ...] = FORMATS


@dataclass
class Context:
    exp: Experiment
    ch: dict[str, Any]
    area_m2: float | None
    out: Path
    options: Options

    @property
    def footnote(self) -> str:
        emu = self.exp.emulated
        if emu is None:
            return ""
        recorded = {k for k in ("pressure_pa", "force_n", "strain") if self.ch.get(k)}
        return emu.caveat_for(recorded)


@dataclass
class Report:
    """Results of the analyses of one recording, in the order they ran."""

    analyses: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        name: str,
        steps: list[StepRun],
        numbers: dict[str, Any],
        figures: list[Figure],
        line: str,
        name_steps: bool = True,
    ) -> None:
        self.analyses.append(
            {
                "analysis": name,
                "steps": [s.index for s in steps],
                "step_labels": [s.label for s in steps],
                "numbers": numbers,
                "figures": [f.name for f in figures],
            }
        )
        self.figures.extend(figures)
        files = ", ".join(Path(f.png).name for f in figures)
        where = _steps_text(steps) if name_steps and len(steps) > 1 else ""
        self.lines.append(line + where + (f"  -> {files}" if files else ""))

    def refuse(self, name: str, steps: list[StepRun], reason: str) -> None:
        self.refused.append({"analysis": name, "steps": [s.index for s in steps], "reason": reason})
        self.lines.append(f"not done: {name}{_steps_text(steps)}: {reason}")


def _steps_text(steps: list[StepRun]) -> str:
    """ " (steps 1, 3, 5 pulse_train)": the steps, grouped by kind, in one short phrase."""
    if not steps:
        return ""
    if len(steps) == 1:
        return f" ({steps[0].name})"
    kinds: dict[str, list[str]] = {}
    for s in steps:
        kinds.setdefault(s.kind, []).append(str(s.index))
    return " (" + "; ".join(f"steps {', '.join(v)} {k}" for k, v in kinds.items()) + ")"


def samples_in(ch: dict[str, Any], name: str, step: StepRun) -> tuple[np.ndarray, np.ndarray]:
    """(t, values) of channel `name` inside the step (empty arrays if not recorded)."""
    if name not in ch:
        return np.zeros(0), np.zeros(0)
    t, v = ch[name]
    t = np.asarray(t, float)
    sel = (t >= step.t_start_s) & (t <= step.t_end_s)
    return t[sel], np.asarray(v, float)[sel]


def amps_of(step: StepRun, area_m2: float | None) -> float | None:
    """The step's current in A from its parameters (current_a or current_a_m2 × area)."""
    p = step.params
    if "current_a" in p:
        return float(p["current_a"])
    if "current_a_m2" in p and area_m2:
        return float(p["current_a_m2"]) * area_m2
    amps = [a for _, a in step.edges if a != 0.0]
    return float(np.median(amps)) if amps else None


def per_area(amps: float, area_m2: float | None) -> str:
    if area_m2:
        return f"{amps / area_m2 / 10.0:.3g} mA cm⁻²"
    return f"{amps * 1e3:.3g} mA"
