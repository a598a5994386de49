"""`stressrig analyze`: a recording in, PNG plots and summary.json out.

What it computes depends on what the recording holds: voltage/current and charge always;
the critical stripping capacity of every pulse train (seed 004) from the board's
waveform_end events (which carry the charge passed); pressure phases vs normalized capacity
(seed 001) when the load cell and a current were recorded; FBG strain/temperature (seed 000)
when the interrogator was; GITT diffusion coefficients when asked for (V/S needed).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from host_sdk.calibration import Calibration, si_channels  # noqa: E402
from host_sdk.recording.reader import Recording, load_recording  # noqa: E402
from protocol import defs  # noqa: E402

__all__ = ["analyze_recording", "electrode_area", "stripping_capacities"]

C_M2_PER_MAH_CM2 = 36_000.0  # 1 mAh cm⁻² = 3.6 C / 1e-4 m²


def _protocol_steps(rec: Recording) -> list[Any]:
    from host_sdk.protocols import parse_protocol

    if not rec.protocol or not isinstance(rec.protocol.get("file"), dict):
        return []
    try:
        return parse_protocol(rec.protocol["file"], rec.protocol.get("source", "")).steps
    except ValueError:
        return []


def _waveforms(rec: Recording) -> list[dict[str, Any]]:
    """Pair waveform_start / waveform_end events: command id, times, cause, charge."""
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for ev in rec.events:
        code = int(ev["code"])
        if code == defs.EV_WAVEFORM_START:
            cur = {"cmd_id": int(ev["index"]), "t_start_s": float(ev["t_dev_s"])}
        elif code == defs.EV_WAVEFORM_END and cur is not None:
            cur.update(
                t_end_s=float(ev["t_dev_s"]),
                cause=defs.CAUSE_NAMES.get(int(ev["cause"]), str(int(ev["cause"]))),
                charge_c=float(ev["value"]),
                edges=int(ev["index"]),
            )
            out.append(cur)
            cur = None
    return out


def stripping_capacities(rec: Recording, area_m2: float | None) -> list[dict[str, Any]]:
    """Per pulse train: rest time, charge to the cutoff, capacity in C/m² and mAh/cm²."""
    trains = [w for w in _waveforms(rec) if w["cmd_id"] == defs.CMD_PULSE_TRAIN]
    steps = [s for s in _protocol_steps(rec) if s.kind == "pulse_train"]
    rows = []
    for k, w in enumerate(trains):
        step = steps[k] if k < len(steps) else None
        row: dict[str, Any] = {
            "t_start_s": w["t_start_s"],
            "duration_s": w["t_end_s"] - w["t_start_s"],
            "end_cause": w["cause"],
            "charge_c": abs(w["charge_c"]),
            "pulses": w["edges"] // 2,
        }
        if step is not None:
            row["t_on_s"] = float(step.params["t_on_s"])
            row["rest_s"] = float(step.params["t_off_s"])
        if area_m2:
            cap = abs(w["charge_c"]) / area_m2
            row["capacity_c_m2"] = cap
            row["capacity_mah_cm2"] = cap / C_M2_PER_MAH_CM2
        rows.append(row)
    return rows


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


def _has_load_calibration(rec: Recording, calibration: Calibration | None) -> bool:
    cal = calibration or Calibration.from_dict(rec.calibration)
    return cal.load_cell is not None


def _stats(v: np.ndarray) -> dict[str, float]:
    if v.size == 0:
        return {}
    return {
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "mean": float(np.mean(v)),
        "last": float(v[-1]),
    }


def _plot_electrical(ch: dict[str, Any], waves: list[dict[str, Any]], path: Path) -> Path:
    fig, axs = plt.subplots(2, 1, sharex=True, figsize=(7, 4.5))
    if "voltage_v" in ch:
        t, v = ch["voltage_v"]
        axs[0].plot(t, v, lw=0.7, color="C3")
    axs[0].set_ylabel("voltage (V)")
    if "current_a" in ch:
        t, i = ch["current_a"]
        axs[1].plot(t, np.asarray(i) * 1e3, lw=0.7, color="k")
    axs[1].set_ylabel("current (mA)")
    axs[1].set_xlabel("device time (s)")
    for w in waves:
        for ax in axs:
            ax.axvline(w["t_end_s"], color="0.7", lw=0.6, ls=":")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _plot_capacity(rows: list[dict[str, Any]], path: Path) -> Path | None:
    pts = [
        (r["rest_s"], r["capacity_mah_cm2"])
        for r in rows
        if "rest_s" in r and "capacity_mah_cm2" in r
    ]
    if not pts:
        return None
    rest, cap = np.array(pts).T
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(rest, cap, "o-", color="k")
    ax.set_xscale("log" if np.all(rest > 0) and rest.max() / rest.min() > 20 else "linear")
    ax.set_xlabel("rest between 1 s pulses (s)")
    ax.set_ylabel("critical stripping capacity (mAh cm⁻²)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _plot_pressure_time(ch: dict[str, Any], path: Path) -> Path:
    t, p = ch["pressure_pa"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.asarray(t) / 3600.0, np.asarray(p) / 1e6, lw=0.8, color="k")
    ax.set_xlabel("device time (h)")
    ax.set_ylabel("stack pressure (MPa)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def analyze_recording(
    path: str | Path,
    out_dir: str | Path,
    *,
    calibration: Calibration | None = None,
    v_over_s_m: float | None = None,
) -> dict[str, Any]:
    """Write plots and summary.json for a recording into `out_dir`; return the summary."""
    from host_sdk import analysis as an
    from host_sdk.analysis import plots as an_plots

    rec = load_recording(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ch = si_channels(rec, calibration)
    area = electrode_area(rec, calibration)
    summary: dict[str, Any] = {
        "recording": rec.summary(),
        "plots": [],
        "channels": {},
        "warnings": [],
        "analysis_errors": [],
    }
    line = rec.outcome_line()
    if line:
        summary["warnings"].append(line)
    summary["warnings"].extend(ch.get("notes", []))
    for name in ("voltage_v", "current_a", "force_n", "pressure_pa", "temperature_c"):
        if name in ch:
            summary["channels"][name] = _stats(np.asarray(ch[name][1]))
    if "pressure_pa" in ch:
        p_mpa = np.asarray(ch["pressure_pa"][1]) / 1e6
        summary["stack_pressure"] = {
            "stack_area_m2": ch["stack_area_m2"],
            "stack_area_source": ch["stack_area_source"],
            "mean_mpa": float(np.mean(p_mpa)),
            "first_mpa": float(p_mpa[0]),
            "last_mpa": float(p_mpa[-1]),
            "calibration": "host" if _has_load_calibration(rec, calibration) else "board nominal",
        }
    waves = _waveforms(rec)
    summary["waveforms"] = waves
    if "current_a" in ch:
        t, i = ch["current_a"]
        if len(t) > 1:
            summary["charge_passed_c"] = float(np.trapezoid(i, t))
    summary["plots"].append(str(_plot_electrical(ch, waves, out / "voltage_current.png")))

    rows = stripping_capacities(rec, float(area) if area else None)
    if rows:
        summary["pulsed_stripping"] = rows
        p = _plot_capacity(rows, out / "capacity_vs_rest.png")
        if p is not None:
            summary["plots"].append(str(p))

    if "pressure_pa" in ch:
        summary["plots"].append(str(_plot_pressure_time(ch, out / "pressure_time.png")))
        if "current_a" in ch and "voltage_v" in ch:
            try:
                t_e, i_e = ch["current_a"]
                q_c = np.concatenate(([0.0], np.cumsum(np.diff(t_e) * 0.5 * (i_e[1:] + i_e[:-1]))))
                if abs(q_c[-1]) > 0 and np.ptp(q_c) > 0:
                    q = np.abs(q_c) / np.max(np.abs(q_c))
                    t_p, p_pa = ch["pressure_pa"]
                    p_on_e = np.interp(t_e, t_p, p_pa)
                    phases = an.pressure_phases(q, p_on_e)
                    summary["pressure_phases"] = {
                        "rates_mpa_per_q": [float(x) for x in phases.rates_mpa_per_q],
                        "breaks_q": [float(x) for x in phases.breaks_q],
                        "total_rise_mpa": float(getattr(phases, "total_rise_mpa", math.nan)),
                    }
                    summary["plots"].append(
                        str(
                            an_plots.plot_pressure_vs_capacity(
                                q,
                                p_on_e,
                                ch["voltage_v"][1],
                                phases,
                                out / "pressure_vs_capacity.png",
                            )
                        )
                    )
            except Exception as e:  # noqa: BLE001 - report, keep the other analyses
                summary["analysis_errors"].append(f"pressure phases: {e}")

    strains = ch.get("strain") or {}
    if strains:
        g, (t_f, eps) = next(iter(strains.items()))
        summary["fbg"] = {
            "grating": g,
            "strain_max": float(np.max(eps)),
            "strain_min": float(np.min(eps)),
        }
        try:
            v_on_f = np.interp(t_f, *ch["voltage_v"]) if "voltage_v" in ch else np.zeros_like(t_f)
            dt_k = ch["fbg_delta_t_k"][1] if "fbg_delta_t_k" in ch else np.zeros_like(t_f)
            summary["plots"].append(
                str(an_plots.plot_fbg_time_series(t_f, eps, dt_k, v_on_f, out / "fbg_strain.png"))
            )
        except Exception as e:  # noqa: BLE001
            summary["analysis_errors"].append(f"fbg plot: {e}")

    if v_over_s_m and "current_a" in ch and "voltage_v" in ch:
        try:
            t_e, i_e = ch["current_a"]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pulses = an.analyze_gitt(t_e, i_e, ch["voltage_v"][1], v_over_s_m)
            summary["gitt"] = {
                "d_m2_s": [float(p.d_m2_s) for p in pulses],
                "assumptions_ok": [bool(p.assumptions_ok) for p in pulses],
                "warnings": [str(w.message) for w in caught],
            }
        except Exception as e:  # noqa: BLE001
            summary["analysis_errors"].append(f"gitt: {e}")

    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary
