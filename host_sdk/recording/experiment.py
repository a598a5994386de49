"""A recording seen as the experiment that made it: the protocol's steps as they ran (from
/steps, with their parameters from the stored protocol), the waveform each step drove and
its edges (the board's events), which cell each step ran on (a `fresh_cell` step starts a
new one), and what the emulated board's scenario says about its data.

Recordings without /steps (`stressrig record` without a protocol, format 1) get one
pseudo-step per waveform the board ran, named after its command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

from host_sdk.recording.reader import Recording
from protocol import defs

__all__ = ["EmulatedScenario", "Experiment", "StepRun", "experiment_of"]

_KIND_OF_COMMAND = {
    defs.CMD_REST: "rest",
    defs.CMD_CONSTANT: "constant",
    defs.CMD_PULSE_TRAIN: "pulse_train",
    defs.CMD_STAIRCASE: "staircase",
    defs.CMD_GITT: "gitt",
    defs.CMD_ADAPTIVE_REST: "adaptive_rest",
    defs.CMD_ADAPTIVE_PULSES: "adaptive_pulses",
}


@dataclass
class StepRun:
    """One protocol step as it ran. Times are device seconds; `edges` are the board's edge
    events in the step's waveform: (time, amps applied from then on, 0 = off)."""

    index: int
    kind: str
    label: str
    t_start_s: float
    t_end_s: float
    end_cause: str
    params: dict[str, Any] = field(default_factory=dict)
    cell: int = 0  # which cell it ran on: 0, then +1 at every fresh_cell step
    fresh_cell: bool = False
    charge_c: float | None = None  # the board's count at waveform_end
    edges: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"step {self.index} {self.kind}" + (f" '{self.label}'" if self.label else "")

    def pulses(self) -> list[tuple[float, float, float]]:
        """(t_on, t_off, amps) of each current pulse, from the edges (a pulse still on at
        the waveform's end ends there)."""
        out = []
        on: tuple[float, float] | None = None
        for t, amps in self.edges:
            if on is not None:
                out.append((on[0], t, on[1]))
                on = None
            if amps != 0.0:
                on = (t, amps)
        if on is not None:
            out.append((on[0], self.t_end_s, on[1]))
        return out


@dataclass
class EmulatedScenario:
    """The emulated board's scenario behind a recording (its hidden truth) and what a
    reader of its figures must be told about it."""

    name: str
    truth: dict[str, Any]

    @property
    def caveat(self) -> str:
        return self.caveat_for({"pressure_pa", "strain"})

    def caveat_for(self, recorded: set[str]) -> str:
        """The caveats that concern what was recorded (`pressure_pa`, `strain`)."""
        film = self.truth.get("film") or {}
        desc = str(self.truth.get("description", "")).strip()
        parts = [f"Emulated board (scenario {self.name}), not a measured cell."]
        # the scenario's own words on how it departs from the paper's cell
        for sentence in desc.replace("i.d.", "i.d").split(". "):
            if any(w in sentence for w in ("effective", "scaled", "paper-scale")):
                parts.append(sentence.rstrip(".") + ".")
        if film.get("thickness_m"):
            parts.append(
                f"Simulated film {film['thickness_m'] * 1e6:.3g} µm, "
                f"D = {film.get('d_m2_s', float('nan')):.2g} m² s⁻¹"
                + (
                    f", contact fraction {film['contact_fraction']:g}"
                    if film.get("contact_fraction", 1.0) < 1.0
                    else ""
                )
                + "."
            )
        phases = (self.truth.get("pressure") or {}).get("phases") or []
        if phases and recorded & {"pressure_pa", "force_n"}:
            rates = ", ".join(f"{float(p['rate_mpa']):g}" for p in phases)
            parts.append(
                f"Its stack pressure follows prescribed phases ({rates} MPa per unit "
                "normalized capacity) over a creeping preload."
            )
        fbg = self.truth.get("fbg") or {}
        if "strain" in recorded and (fbg.get("strain_per_c") or fbg.get("strain_per_gradient")):
            parts.append(
                "Its FBG strain is modelled (charge passed plus a concentration-gradient "
                "term), with ambient and joule-heating temperature."
            )
        return " ".join(parts)


@dataclass
class Experiment:
    rec: Recording
    steps: list[StepRun]
    protocol_name: str
    emulated: EmulatedScenario | None
    from_protocol: bool  # steps from /steps and the stored protocol (else from events)

    def of_kind(self, *kinds: str) -> list[StepRun]:
        return [s for s in self.steps if s.kind in kinds]

    @property
    def footnote(self) -> str:
        return self.emulated.caveat if self.emulated is not None else ""


def _emulated(rec: Recording) -> EmulatedScenario | None:
    url = str((rec.meta or {}).get("url", ""))
    if not url.startswith("emu://"):
        return None
    from host_sdk.emulator.scenarios import deep_merge, load_scenario

    u = urlparse(url)
    name = (u.netloc + u.path).strip("/") or "nak50_pulsed"
    try:
        truth = load_scenario(name)
    except (OSError, ValueError):
        return EmulatedScenario(name, {})
    try:
        from host_sdk.emulator.options import emulator_options_from_url

        truth = deep_merge(truth, emulator_options_from_url(url)[1].get("overrides", {}))
    except ValueError:
        pass
    return EmulatedScenario(name, truth)


def _waveforms(rec: Recording) -> list[dict[str, Any]]:
    """Each waveform the board ran: command, start, end, cause, charge and edges."""
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for ev in rec.events:
        code, t = int(ev["code"]), float(ev["t_dev_s"])
        if code == defs.EV_WAVEFORM_START:
            cur = {"cmd_id": int(ev["index"]), "t_start_s": t, "edges": []}
        elif cur is not None and code == defs.EV_EDGE:
            cur["edges"].append((t, float(ev["value"])))
        elif cur is not None and code == defs.EV_WAVEFORM_END:
            cur.update(
                t_end_s=t,
                cause=defs.CAUSE_NAMES.get(int(ev["cause"]), str(int(ev["cause"]))),
                charge_c=abs(float(ev["value"])),
            )
            out.append(cur)
            cur = None
    return out


def _protocol_steps(rec: Recording) -> tuple[str, list[Any]]:
    from host_sdk.protocols import ProtocolError, parse_protocol

    proto = rec.protocol or {}
    if not isinstance(proto.get("file"), dict):
        return "", []
    try:
        p = parse_protocol(proto["file"], str(proto.get("source", "")))
    except ProtocolError:
        return str(proto.get("name", "")), []
    return p.name, p.steps


def experiment_of(rec: Recording) -> Experiment:
    """The experiment view of a loaded recording (see the module text)."""
    name, proto_steps = _protocol_steps(rec)
    waves = _waveforms(rec)
    steps: list[StepRun] = []
    if len(rec.steps):
        cell = 0
        for row in rec.steps:
            i = int(row["index"])
            p = proto_steps[i] if 0 <= i < len(proto_steps) else None
            fresh = bool(p is not None and p.fresh_cell)
            if fresh and steps:
                cell += 1
            s = StepRun(
                index=i,
                kind=row["kind"].decode(errors="replace"),
                label=row["label"].decode(errors="replace"),
                t_start_s=float(row["t_start_s"]),
                t_end_s=float(row["t_end_s"]),
                end_cause=row["end_cause"].decode(errors="replace"),
                params=dict(p.params) if p is not None else {},
                cell=cell,
                fresh_cell=fresh,
            )
            # the waveform that ended when the step did (the runner's step ends at it)
            mine = [w for w in waves if s.t_start_s - 1e-6 <= w["t_end_s"] <= s.t_end_s + 1e-6]
            if mine:
                w = mine[-1]
                s.charge_c, s.edges = w["charge_c"], w["edges"]
            steps.append(s)
        return Experiment(rec, steps, name, _emulated(rec), True)
    for k, w in enumerate(waves):
        steps.append(
            StepRun(
                index=k,
                kind=_KIND_OF_COMMAND.get(w["cmd_id"], f"command_{w['cmd_id']}"),
                label="",
                t_start_s=w["t_start_s"],
                t_end_s=w["t_end_s"],
                end_cause=w["cause"],
                charge_c=w["charge_c"],
                edges=w["edges"],
            )
        )
    return Experiment(rec, steps, name, _emulated(rec), False)


def in_step(t_s: np.ndarray, step: StepRun) -> np.ndarray:
    """Mask of the samples inside a step."""
    return np.asarray((t_s >= step.t_start_s) & (t_s <= step.t_end_s), dtype=bool)
