"""Adaptive-rest steps (issue 14): the rests the board chose. Each `adaptive_rest` step and
each rest of an `adaptive_pulses` series ends with a `rest_end` event (its length, and
whether |dV/dt| settled or the maximum came first). Numbers: how many rests, how many
settled, their shortest, median, longest and total length, per series and over all; for
a series of pulses the planner's recommended fixed rest for the same pulses and current
(seed 004's question, when a film is known: --film or the emulated scenario's), and the
series' critical capacity when its voltage cutoff ended it (otherwise the charge it passed
only bounds the capacity from below, and none is given).

Without rest_end events (a board before issue 14, or events lost) the rests' lengths are
unknown: refused with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.analysis.figures.rests import RestSeries, SingleRest, plot_rest_lengths
from host_sdk.analysis.planner import plan_rest
from host_sdk.analysis.rests import RestDecisions, rest_decisions
from host_sdk.recording.experiment import StepRun

from .common import C_M2_PER_MAH_CM2, Context, Report, amps_of, per_area
from .stripping import scenario_material

NAME = "adaptive rests"
CUTOFF_CAUSES = ("v_max", "v_min")  # the series ended on its voltage cutoff
PLANNER_RESTS = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)  # plan_rest's default grid
EDGE_S = 1e-6  # a rest_end at the step's last instant belongs to it


def _pick(rests: RestDecisions, sel: np.ndarray) -> RestDecisions:
    return RestDecisions(rests.t_s[sel], rests.pulse[sel], rests.length_s[sel], rests.settled[sel])


def _in_step(rests: RestDecisions, step: StepRun) -> RestDecisions:
    sel = (rests.t_s >= step.t_start_s - EDGE_S) & (rests.t_s <= step.t_end_s + EDGE_S)
    return _pick(rests, sel)


def _row(ctx: Context, step: StepRun, mine: RestDecisions) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": step.index,
        "kind": step.kind,
        "label": step.label,
        "t_start_s": step.t_start_s,
        "duration_s": step.t_end_s - step.t_start_s,
        "end_cause": step.end_cause,
        "settle": dict(step.params.get("settle", {})),
        **mine.summary(),
    }
    if step.kind != "adaptive_pulses":
        return row
    row["t_on_s"] = float(step.params["t_on_s"]) if "t_on_s" in step.params else None
    amps = amps_of(step, ctx.area_m2)
    if amps is not None:
        row["current_a"] = amps
    row["charge_c"] = step.charge_c
    if step.end_cause in CUTOFF_CAUSES and step.charge_c is not None:
        row["critical_charge_c"] = step.charge_c
        if ctx.area_m2:
            row["critical_capacity_mah_cm2"] = step.charge_c / ctx.area_m2 / C_M2_PER_MAH_CM2
        else:
            row["capacity_note"] = "no electrode area ([cell] area_m2): charge only"
    else:
        row["capacity_note"] = (
            f"ended on '{step.end_cause}', not its voltage cutoff: the charge passed is a "
            "lower bound, no critical capacity"
        )
    return row


def _planner(ctx: Context, step: StepRun, row: dict[str, Any]) -> dict[str, Any] | str:
    """The planner's fixed rest for this series' pulses, or why there is none."""
    if not ctx.area_m2:
        return "no electrode area ([cell] area_m2): the planner needs a current density"
    amps, t_on = row.get("current_a"), row.get("t_on_s")
    if amps is None or not t_on:
        return "the step's current or pulse length is not in the recording's protocol"
    v_cut = float(step.params.get("cutoff", {}).get("v_max_v", np.nan))
    src = ctx.options.film and (ctx.options.film, "the film given (--film)")
    if not src and np.isfinite(v_cut):
        src = scenario_material(ctx, amps, v_cut)
    if not src:
        return (
            "no film parameters: give --film FILE.json (D, L, C0, C_crit, contact fraction, "
            "lateral rate)"
        )
    material, where = src
    i_a_m2 = amps / ctx.area_m2
    median = row.get("length_s", {}).get("median")
    grid = PLANNER_RESTS + ((float(median),) if median is not None else ())
    plan = plan_rest(material, i_a_m2, float(t_on), grid)
    out: dict[str, Any] = {
        "film": where,
        "recommended_rest_s": plan.recommended_rest_s,
        "fraction_of_plateau": plan.fraction,
        "plateau_mah_cm2": plan.plateau_c_m2 / C_M2_PER_MAH_CM2,
        "theoretical_mah_cm2": plan.theoretical_capacity_c_m2 / C_M2_PER_MAH_CM2,
        "rest_s": list(map(float, plan.rest_s)),
        "capacity_mah_cm2": list(map(float, plan.capacity_c_m2 / C_M2_PER_MAH_CM2)),
    }
    if median is not None:
        # a fixed rest as long as the board's median one: what the film model expects
        out["capacity_at_median_rest_mah_cm2"] = float(plan.capacity_c_m2[-1] / C_M2_PER_MAH_CM2)
        out["fixed_rests_total_s"] = row["count"] * plan.recommended_rest_s
    return out


def analyze(ctx: Context, report: Report) -> None:
    steps = ctx.exp.of_kind("adaptive_rest", "adaptive_pulses")
    if not steps:
        return
    rests = rest_decisions(ctx.exp.rec)
    if not len(rests):
        report.refuse(
            NAME,
            steps,
            "no rest_end events in the recording (a board without adaptive rests, or its "
            "events were lost): the length of each rest the board chose is unknown",
        )
        return
    rows: list[dict[str, Any]] = []
    series: list[RestSeries] = []
    single: list[SingleRest] = []
    planned: dict[float, list[int]] = {}  # the planner's rest: the steps it is for
    in_pulses = np.zeros(len(rests), bool)
    for step in steps:
        mine = _in_step(rests, step)
        row = _row(ctx, step, mine)
        max_s = row["settle"].get("max_s")
        if step.kind == "adaptive_rest":
            for k in range(len(mine)):
                single.append(
                    SingleRest(f"step {step.index}", float(mine.length_s[k]), bool(mine.settled[k]))
                )
        else:
            in_pulses |= (rests.t_s >= step.t_start_s - EDGE_S) & (
                rests.t_s <= step.t_end_s + EDGE_S
            )
            series.append(
                RestSeries(
                    f"step {step.index}" + (f" '{step.label}'" if step.label else ""),
                    mine.pulse.astype(float) + 1.0,
                    mine.length_s,
                    mine.settled,
                    float(max_s) if max_s is not None else None,
                )
            )
            plan = _planner(ctx, step, row)
            if isinstance(plan, str):
                report.refuse("planner's recommended rest", [step], plan)
            else:
                row["planner"] = plan
                planned.setdefault(float(plan["recommended_rest_s"]), []).append(step.index)
        rows.append(row)
    numbers: dict[str, Any] = {
        **rests.summary(),
        "after_pulses": _pick(rests, in_pulses).summary(),
        "single_rests": _pick(rests, ~in_pulses).summary(),
        "series": rows,
    }
    plans = [r["planner"]["recommended_rest_s"] for r in rows if "planner" in r]
    numbers["planner_rest_s"] = plans[0] if len(set(plans)) == 1 else (plans or None)
    report.extra["adaptive_rests"] = numbers
    fig = plot_rest_lengths(
        series,
        ctx.out,
        single=single,
        planned=[
            (
                f"planner's fixed rest {rest:.2g} s"
                + ("" if len(series) == 1 else f" (step {', '.join(map(str, ix))})"),
                rest,
            )
            for rest, ix in planned.items()
        ],
        title=_title(ctx, rows),
        caption=_caption(rows, numbers),
        footnote=ctx.footnote,
        steps=[s.index for s in steps],
        formats=ctx.options.formats,
    )
    report.add(NAME, steps, numbers, [fig], _line(ctx, numbers))


def _title(ctx: Context, rows: list[dict[str, Any]]) -> str:
    pulsed = [r for r in rows if r["kind"] == "adaptive_pulses"]
    if not pulsed or not pulsed[0].get("t_on_s") or "current_a" not in pulsed[0]:
        return "adaptive rests"
    if len({(r.get("t_on_s"), r.get("current_a")) for r in pulsed}) > 1:
        return "rests after pulses"  # series of different pulses: the legend names them
    r = pulsed[0]
    return f"rests after {r['t_on_s']:g} s pulses at {per_area(r['current_a'], ctx.area_m2)}"


def _caption(rows: list[dict[str, Any]], numbers: dict[str, Any]) -> str:
    parts = ["Length of each rest the board chose"]
    crit = []
    for r in rows:
        s = r["settle"]
        if s.get("dvdt_v_per_s") is not None:
            crit.append(
                f"step {r['step']}: |dV/dt| ≤ {s['dvdt_v_per_s'] * 1e3:g} mV s⁻¹ for "
                f"{s.get('hold_s', 0.5):g} s, {s.get('min_s', 0.0):g}–{s.get('max_s', 0):g} s"
            )
            e = s.get("strain")
            if e and e.get("dedt_ue_per_s") is not None:  # the FBG strain criterion too
                crit[-1] += (
                    f" ({e.get('combine', 'both')}: |dε/dt| ≤ {e['dedt_ue_per_s']:g} µε s⁻¹)"
                )
    if crit:
        parts.append(" (" + "; ".join(crit) + ")")
    parts.append(
        ": dots, the cell settled; crosses, the maximum came first"
        + ("; dotted, the maximum" if numbers.get("at_max") else "")
    )
    if numbers["after_pulses"]["count"]:
        parts.append(
            "; thin line, the board's median rest (the board decides at the end of each "
            "window_s block of its dV/dt estimate, so lengths fall on that grid)"
        )
    if any("planner" in r for r in rows):
        parts.append(
            "; dashed, the planner's recommended fixed rest for the same pulses (the "
            "shortest giving 90 % of the plateau capacity in its film model)"
        )
    if numbers["single_rests"]["count"] and numbers["after_pulses"]["count"]:
        parts.append("; (b) the single adaptive rests")
    return "".join(parts) + "."


def _line(ctx: Context, n: dict[str, Any]) -> str:
    x = n["length_s"]
    text = (
        f"adaptive rests: {n['count']} ({n['settled']} settled, {n['at_max']} at the "
        f"maximum), {x['min']:.3g}/{x['median']:.3g}/{x['max']:.3g} s min/median/max, "
        f"{x['total']:.4g} s in all"
    )
    p = n["after_pulses"]
    if p["count"] and p["count"] != n["count"]:
        y = p["length_s"]
        text += f"; after pulses: {p['count']}, median {y['median']:.3g} s"
    for r in n["series"]:
        if "critical_capacity_mah_cm2" in r:
            text += (
                f"; step {r['step']} critical capacity "
                f"{r['critical_capacity_mah_cm2'] * 1e3:.3g} µAh cm⁻² ({r['end_cause']})"
            )
        if "planner" in r:
            pl = r["planner"]
            text += f"; planner's fixed rest {pl['recommended_rest_s']:.3g} s"
            if "capacity_at_median_rest_mah_cm2" in pl:
                text += (
                    f" (capacity {pl['capacity_at_median_rest_mah_cm2'] * 1e3:.3g} µAh cm⁻² "
                    "with fixed rests of the board's median)"
                )
    return text
