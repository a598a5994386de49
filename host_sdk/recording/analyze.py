"""`stressrig analyze`: a recording in, per-step analyses, paper figures and summary.json out.

The recording says what ran (its protocol's steps, the board's events, the outcome), so
each step gets the analyses that apply to it (host_sdk.recording.analyses):

- pulse trains: critical stripping capacity vs rest (seed 004 Fig. 4c), the planner's
  prediction and the theoretical limit beside it, and every series' voltage;
- adaptive rests and pulses: the length of each rest the board chose (settled or at its
  maximum) against the planner's recommended fixed rest, and the critical capacity of a
  series its cutoff ended;
- a staircase: the critical current density;
- GITT: D per pulse against the state of charge;
- galvanostatic (constant-current) steps: stack pressure vs normalized capacity per
  direction, with the rate of each phase (seed 001 Fig. 7);
- FBG: Δλ, strain, stress and temperature against time with the voltage (seed 000 Fig. 6);

and says, with a reason, what it did not do. Every figure is a PNG, a PDF and an SVG with
a caption (and the emulated scenario's caveats when the data are emulated); the numbers go
to summary.json and `summary["report"]` (what the CLI prints), naming the steps behind them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from host_sdk.analysis.figures.style import FORMATS
from host_sdk.analysis.planner import FilmMaterial
from host_sdk.calibration import Calibration, si_channels
from host_sdk.recording.analyses import ANALYSES
from host_sdk.recording.analyses.common import SILICA_E_PA, Context, Options, Report
from host_sdk.recording.analyses.overview import overview
from host_sdk.recording.experiment import experiment_of
from host_sdk.recording.reader import Recording, load_recording

__all__ = ["analyze_recording", "electrode_area", "stripping_capacities"]


def electrode_area(rec: Recording, calibration: Calibration | None = None) -> float | None:
    """The electrode area (m²) capacities per area refer to: the recording's cell, the
    protocol's [cell] area_m2, or the calibration's electrode_area_m2."""
    if rec.cell.get("electrode_area_m2"):
        return float(rec.cell["electrode_area_m2"])
    if rec.protocol and isinstance(rec.protocol.get("file"), dict):
        a = (rec.protocol["file"].get("cell") or {}).get("area_m2")
        if a:
            return float(a)
    cal = calibration or Calibration.from_dict(rec.calibration)
    return cal.electrode_area_m2


def stripping_capacities(rec: Recording, area_m2: float | None) -> list[dict[str, Any]]:
    """Per pulse-train step: rest, pulses, charge to the cutoff, capacity per area."""
    from host_sdk.recording.analyses.stripping import _rows

    exp = experiment_of(rec)
    ctx = Context(exp, {}, area_m2, Path("."), Options())
    return _rows(ctx, exp.of_kind("pulse_train"))


def _stats(v: np.ndarray) -> dict[str, float]:
    if v.size == 0:
        return {}
    return {
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "mean": float(np.mean(v)),
        "last": float(v[-1]),
    }


def _channels_summary(rec: Recording, ch: dict[str, Any], cal: Calibration | None) -> dict:
    out: dict[str, Any] = {"channels": {}}
    for name in ("voltage_v", "current_a", "force_n", "pressure_pa", "temperature_c"):
        if name in ch:
            out["channels"][name] = _stats(np.asarray(ch[name][1]))
    if "pressure_pa" in ch and len(ch["pressure_pa"][1]):
        p_mpa = np.asarray(ch["pressure_pa"][1]) / 1e6
        stored = Calibration.from_dict(rec.calibration)
        out["stack_pressure"] = {
            "stack_area_m2": ch["stack_area_m2"],
            "stack_area_source": ch["stack_area_source"],
            "mean_mpa": float(np.mean(p_mpa)),
            "first_mpa": float(p_mpa[0]),
            "last_mpa": float(p_mpa[-1]),
            "calibration": "host" if (cal or stored).load_cell is not None else "board nominal",
        }
    if "current_a" in ch and len(ch["current_a"][0]) > 1:
        t, i = ch["current_a"]
        out["charge_passed_c"] = float(np.trapezoid(i, t))
    return out


def analyze_recording(
    path: str | Path,
    out_dir: str | Path,
    *,
    calibration: Calibration | None = None,
    v_over_s_m: float | None = None,
    geometry: str = "film",
    film: FilmMaterial | None = None,
    fbg_modulus_pa: float = SILICA_E_PA,
    formats: tuple[str, ...] = FORMATS,
) -> dict[str, Any]:
    """Analyse a recording step by step into `out_dir` (figures + summary.json); returns
    the summary. `film` feeds the planner's prediction (an emulated board's scenario is
    used otherwise), `v_over_s_m`/`geometry` the GITT analysis (an emulated film's
    thickness otherwise), `fbg_modulus_pa` turns FBG strain into stress."""
    rec = load_recording(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ch = si_channels(rec, calibration)
    exp = experiment_of(rec)
    ctx = Context(
        exp,
        ch,
        electrode_area(rec, calibration),
        out,
        Options(film, v_over_s_m, geometry, fbg_modulus_pa, tuple(formats)),
    )
    report = Report()
    summary: dict[str, Any] = {
        "recording": rec.summary(),
        "experiment": {
            "protocol": exp.protocol_name,
            "steps_from": "the protocol's steps" if exp.from_protocol else "the board's events",
            "emulated": None
            if exp.emulated is None
            else {"scenario": exp.emulated.name, "caveat": exp.emulated.caveat},
            "steps": [
                {
                    "index": s.index,
                    "kind": s.kind,
                    "label": s.label,
                    "t_start_s": s.t_start_s,
                    "t_end_s": s.t_end_s,
                    "end_cause": s.end_cause,
                    "cell": s.cell,
                    "fresh_cell": s.fresh_cell,
                }
                for s in exp.steps
            ],
        },
        "warnings": [],
        "analysis_errors": [],
    }
    line = rec.outcome_line()
    if line:
        summary["warnings"].append(line)
    summary["warnings"].extend(ch.get("notes", []))
    summary.update(_channels_summary(rec, ch, calibration))
    summary["waveforms"] = [
        {
            "step": s.index,
            "kind": s.kind,
            "t_start_s": s.t_start_s,
            "t_end_s": s.t_end_s,
            "cause": s.end_cause,
            "charge_c": s.charge_c,
            "edges": len(s.edges),
        }
        for s in exp.steps
        if s.kind != "rest"
    ]
    for name, run in [("overview", overview), *ANALYSES]:
        try:
            run(ctx, report)
        except Exception as e:  # noqa: BLE001 - report it, keep the other analyses
            summary["analysis_errors"].append(f"{name}: {type(e).__name__}: {e}")
            report.lines.append(f"failed: {name}: {type(e).__name__}: {e}")
    summary.update(report.extra)
    summary["analyses"] = report.analyses
    summary["refused"] = report.refused
    summary["figures"] = [f.to_dict() for f in report.figures]
    summary["plots"] = [f.png for f in report.figures]
    summary["report"] = report.lines
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json) + "\n")
    return summary


def _json(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
