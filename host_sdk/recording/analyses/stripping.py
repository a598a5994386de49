"""Pulse-train steps: the critical stripping capacity of each series (the charge the board
counted until its voltage cutoff), against the rest between pulses (seed 004 Fig. 4c),
with the planner's prediction for the same pulses, current and rests, and the
theoretical limit.

A series that did not start on a fresh cell (no `fresh_cell` step since another series
stripped the same cell) measures that cell's history: it is drawn open and left out of
the plateau check. A series that ran out of pulses before its cutoff gives a lower bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.analysis.figures.stripping import Series, plot_capacity_vs_rest, plot_pulse_series
from host_sdk.analysis.planner import FilmMaterial, critical_capacity_map_c_m2, plan_rest
from host_sdk.recording.experiment import StepRun

from .common import C_M2_PER_MAH_CM2, Context, Report, amps_of, per_area, samples_in

LEVEL_OFF = 0.10  # the last rest adds under 10 % over the one before: levelled off


def _rest_and_pulse(step: StepRun) -> tuple[float, float]:
    p = step.params
    if "t_off_s" in p and "t_on_s" in p:
        return float(p["t_off_s"]), float(p["t_on_s"])
    pulses = step.pulses()
    if len(pulses) >= 2:
        return float(pulses[1][0] - pulses[0][1]), float(pulses[0][1] - pulses[0][0])
    return float("nan"), float(pulses[0][1] - pulses[0][0]) if pulses else float("nan")


def _rows(ctx: Context, steps: list[StepRun]) -> list[dict[str, Any]]:
    rows = []
    stripped_cells: set[int] = set()
    for s in steps:
        rest, pulse = _rest_and_pulse(s)
        amps = amps_of(s, ctx.area_m2)
        row: dict[str, Any] = {
            "step": s.index,
            "label": s.label,
            "t_start_s": s.t_start_s,
            "duration_s": s.t_end_s - s.t_start_s,
            "end_cause": s.end_cause,
            "charge_c": s.charge_c,
            "pulses": len(s.pulses()),
            "rest_s": rest,
            "t_on_s": pulse,
            "cell": s.cell,
            "on_fresh_cell": s.cell not in stripped_cells,
            "capacity_is_lower_bound": s.end_cause == "completed",
        }
        if amps is not None:
            row["current_a"] = amps
        if ctx.area_m2 and s.charge_c is not None:
            row["capacity_c_m2"] = s.charge_c / ctx.area_m2
            row["capacity_mah_cm2"] = row["capacity_c_m2"] / C_M2_PER_MAH_CM2
        stripped_cells.add(s.cell)
        rows.append(row)
    return rows


def scenario_material(ctx: Context, amps: float, v_cut: float) -> tuple[FilmMaterial, str] | None:
    """The emulated scenario's film, with the critical level where its voltage model
    reaches the cutoff at this current (the board stops on voltage, the planner on
    concentration): R_ct = R_ct0·C₀/(C_s − C_crit) diverges as C_s → C_crit."""
    emu = ctx.exp.emulated
    if emu is None or not emu.truth.get("film") or not emu.truth.get("electrical"):
        return None
    fm, el = emu.truth["film"], emu.truth["electrical"]
    c0, c_crit = float(fm["c0_mol_m3"]), float(fm.get("c_crit_mol_m3", 0.0))
    c_norm = float(fm.get("c_max_mol_m3") or c0)
    table = np.asarray(el["ocv_vs_theta"], float)
    r_ohm, r_ct0 = float(el["r_ohm"]), float(el.get("r_ct0_ohm", 0.0))
    sign = float(el.get("polarity", 1.0))
    cs = np.linspace(c_crit + 1e-6 * c0, c0, 200_001)
    volts = np.interp(cs / c_norm, table[:, 0], table[:, 1]) + sign * amps * (
        r_ohm + r_ct0 * c0 / (cs - c_crit)
    )
    above = np.flatnonzero(volts >= v_cut)
    c_eff = float(cs[above[-1]]) if above.size else c_crit
    material = FilmMaterial(
        float(fm["d_m2_s"]),
        float(fm["thickness_m"]),
        c0,
        c_eff,
        float(fm.get("contact_fraction", 1.0)),
        int(fm.get("z", 1)),
        float(fm.get("lateral_rate_per_s", 0.0)),
    )
    return material, (
        f"the emulated scenario's film ({emu.name}: D, L, contact fraction, lateral exchange), "
        f"critical level {c_eff:.0f} mol m⁻³ where its R_ct puts the cell at {v_cut:g} V"
    )


def analyze(ctx: Context, report: Report) -> None:
    steps = ctx.exp.of_kind("pulse_train")
    if not steps:
        return
    rows = _rows(ctx, steps)
    report.extra["pulsed_stripping"] = rows
    if not ctx.area_m2:
        report.refuse(
            "critical stripping capacity",
            steps,
            "no electrode area in the recording ([cell] area_m2): charge only",
        )
        return
    ok = [r for r in rows if np.isfinite(r["rest_s"])]
    pulse_s = float(np.median([r["t_on_s"] for r in ok])) if ok else 1.0
    amps = float(np.median([r.get("current_a", np.nan) for r in ok]))
    v_cut = float(steps[0].params.get("cutoff", {}).get("v_max_v", np.nan))
    numbers: dict[str, Any] = {
        "series": rows,
        "pulse_s": pulse_s,
        "current_density_a_m2": amps / ctx.area_m2,
    }
    fresh = [r for r in ok if r["on_fresh_cell"]]
    if len(fresh) >= 3:
        rest_f = np.array([r["rest_s"] for r in fresh])
        cap_f = np.array([r["capacity_mah_cm2"] for r in fresh])
        o = np.argsort(rest_f)
        gain = (cap_f[o][-1] - cap_f[o][-2]) / max(cap_f[o][-1], 1e-300)
        numbers["levels_off"] = bool(gain < LEVEL_OFF and cap_f[o][-1] > 2 * cap_f[o][0])
        numbers["last_rest_gain"] = float(gain)
    else:
        report.refuse(
            "plateau of capacity vs rest",
            steps,
            f"{len(fresh)} series on fresh cells; at least 3 are needed",
        )
    src = ctx.options.film and (ctx.options.film, "the film given (--film)")
    src = src or (scenario_material(ctx, amps, v_cut) if np.isfinite(v_cut) else None)
    predicted: tuple[Any, Any] | None = None
    theoretical = None
    if src is None:
        report.refuse(
            "planner prediction",
            steps,
            "no film parameters: give --film FILE.json (D, L, C0, C_crit, contact "
            "fraction, lateral rate)",
        )
    else:
        material, where = src
        rests = np.array(sorted({r["rest_s"] for r in ok}))
        grid = np.unique(np.concatenate((rests, np.linspace(0.0, rests.max(), 41))))
        i_a_m2 = amps / ctx.area_m2
        pred = critical_capacity_map_c_m2(material, i_a_m2, [pulse_s], grid)[0]
        plan = plan_rest(material, i_a_m2, pulse_s, tuple(rests))
        theoretical = material.theoretical_capacity_c_m2 / C_M2_PER_MAH_CM2
        predicted = (grid, pred / C_M2_PER_MAH_CM2)
        numbers["planner"] = {
            "film": where,
            "rest_s": list(map(float, rests)),
            "capacity_mah_cm2": list(map(float, plan.capacity_mah_cm2)),
            "plateau_mah_cm2": plan.plateau_c_m2 / C_M2_PER_MAH_CM2,
            "plateau_reached": plan.plateau_reached,
            "recommended_rest_s": plan.recommended_rest_s,
            "fraction_text": f"{plan.fraction:.0%} of the plateau from a "
            f"{plan.recommended_rest_s:.3g} s rest",
            "theoretical_mah_cm2": theoretical,
        }
    fig = plot_capacity_vs_rest(
        [r["rest_s"] for r in ok],
        [r["capacity_mah_cm2"] for r in ok],
        ctx.out,
        pulse_s=pulse_s,
        current_ma_cm2=amps / ctx.area_m2 / 10.0,
        fresh=[r["on_fresh_cell"] for r in ok],
        predicted=predicted,
        theoretical_mah_cm2=theoretical,
        caption=(
            f"Critical stripping capacity against the rest after each {pulse_s:g} s pulse "
            f"at {amps / ctx.area_m2 / 10:.3g} mA cm⁻², each point the charge to the "
            f"{v_cut:g} V cutoff (steps {', '.join(str(r['step']) for r in ok)})"
            + (
                "; line: the planner's film model; dashed: the theoretical limit."
                if predicted is not None
                else "."
            )
        ),
        footnote=ctx.footnote,
        steps=[r["step"] for r in ok],
        formats=ctx.options.formats,
    )
    figs = [fig, _series_figure(ctx, steps, rows, v_cut)]
    text = ", ".join(f"{r['rest_s']:g} s: {r['capacity_mah_cm2'] * 1e3:.3g}" for r in ok)
    levels = numbers.get("levels_off")
    report.add(
        "critical stripping capacity vs rest",
        steps,
        numbers,
        figs,
        f"critical stripping capacity at {per_area(amps, ctx.area_m2)} (µAh cm⁻² by "
        f"rest): {text}"
        + ("" if levels is None else f"; {'rises and levels off' if levels else 'no plateau'}")
        + _planner_text(numbers.get("planner")),
    )


def _planner_text(planner: dict[str, Any] | None) -> str:
    if not planner:
        return ""
    caps = ", ".join(f"{c * 1e3:.3g}" for c in planner["capacity_mah_cm2"])
    return (
        f"; planner: {caps}, plateau {planner['plateau_mah_cm2'] * 1e3:.3g}, theoretical "
        f"{planner['theoretical_mah_cm2'] * 1e3:.3g} µAh cm⁻², {planner['fraction_text']}"
    )


def _series_figure(
    ctx: Context, steps: list[StepRun], rows: list[dict[str, Any]], v_cut: float
) -> Any:
    series = []
    for s, r in zip(steps, rows, strict=True):
        t, v = samples_in(ctx.ch, "voltage_v", s)
        t0 = s.pulses()[0][0] if s.pulses() else s.t_start_s
        cap = f", {r['capacity_mah_cm2'] * 1e3:.3g} µAh cm⁻²" if "capacity_mah_cm2" in r else ""
        series.append(Series(f"rest {r['rest_s']:g} s{cap}", t - t0, v, r["rest_s"] + r["t_on_s"]))
    rests = [r["rest_s"] for r in rows]
    zoom = int(np.argmin([abs(x - 1.0) if np.isfinite(x) else np.inf for x in rests]))
    return plot_pulse_series(
        series,
        ctx.out,
        zoom=zoom,
        v_cutoff=v_cut if np.isfinite(v_cut) else None,
        caption="Cell voltage of each pulsed-stripping series from its first pulse; inset: "
        "three pulses magnified.",
        footnote=ctx.footnote,
        steps=[s.index for s in steps],
        formats=ctx.options.formats,
    )
