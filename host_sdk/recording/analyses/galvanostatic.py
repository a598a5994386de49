"""Galvanostatic (constant-current) steps: stack pressure against normalized capacity, per
current direction, with the rate of each phase (seed 001 Fig. 7).

q is the charge passed since the step began over the step's whole charge (0 → 1), from
the recorded current; the pressure is the load cell's over the stack area, less the
press's creep: a log-time creep law fitted over the longest rest of at least an hour
(seed 001 rests 24 h for it) and extrapolated over each step (without such a rest, no
correction, and the numbers say so). Phases are fitted per step. Refused: a step whose
current changes sign (charge and discharge mixed), too few pressure samples, and every
other kind of step: under pulses, a staircase, GITT or a rest the pressure follows creep
and pulses, not a galvanostatic capacity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.analysis.figures.pressure import PressureCurve, plot_pressure_vs_capacity
from host_sdk.analysis.pressure import (
    cumulative_charge_c,
    fit_log_creep_offset,
    pressure_phases,
)
from host_sdk.recording.experiment import StepRun

from .common import Context, Report, samples_in

MIN_SAMPLES = 30
CREEP_REST_S = 3600.0


def _creep(ctx: Context) -> tuple[tuple[float, float, float] | None, str]:
    """The log creep law fitted over the longest rest of ≥ 1 h, and where it came from."""
    rests = [
        s
        for s in ctx.exp.of_kind("rest", "calibration_hold")
        if s.t_end_s - s.t_start_s >= CREEP_REST_S
    ]
    if not rests:
        return None, "no rest of an hour or more to fit the press's creep: not corrected"
    rest = max(rests, key=lambda s: s.t_end_s - s.t_start_s)
    t, p = samples_in(ctx.ch, "pressure_pa", rest)
    if t.size < 100:
        return None, f"{rest.name}: too few pressure samples to fit creep: not corrected"
    return fit_log_creep_offset(t, p), f"creep fitted over {rest.name}, extrapolated"


def _curve(
    ctx: Context, step: StepRun, creep: tuple[float, float, float] | None
) -> tuple[PressureCurve | None, str]:
    ti, i = samples_in(ctx.ch, "current_a", step)
    tp, p = samples_in(ctx.ch, "pressure_pa", step)
    if creep is not None and tp.size:
        _, b, t0 = creep
        p = p - b * (np.log(tp + t0) - np.log(tp[0] + t0))  # the creep since the step began
    if ti.size < 3 or tp.size < MIN_SAMPLES:
        return None, f"{tp.size} pressure and {ti.size} current samples in the step"
    on = np.abs(i) > 0.05 * np.max(np.abs(i))
    if np.any(i[on] > 0) and np.any(i[on] < 0):
        return None, "its current changes sign: charge and discharge mixed in one step"
    q_c = cumulative_charge_c(ti, i)
    if q_c[-1] == 0:
        return None, "no charge passed"
    q = np.interp(tp, ti, q_c / q_c[-1])
    phases = pressure_phases(q, p)
    p0 = float(np.median(p[: max(3, p.size // 200)])) / 1e6
    name = f"step {step.index}"  # the panel's title has the label
    return PressureCurve(name, q, p / 1e6 - p0, phases, p0), ""


def analyze(ctx: Context, report: Report) -> None:
    constant = ctx.exp.of_kind("constant")
    others = [s for s in ctx.exp.steps if s.kind in ("pulse_train", "staircase", "gitt")]
    if "pressure_pa" not in ctx.ch:
        if constant:
            why = "no stack pressure: " + (
                "the load cell was not recorded"
                if "force_n" not in ctx.ch
                else "no stack area (give [cell] stack_diameter_m or --stack-area-m2)"
            )
            report.refuse("pressure vs normalized capacity", constant, why)
        return
    if others:
        report.refuse(
            "pressure vs normalized capacity",
            others,
            "not a galvanostatic step: the pressure there follows creep and pulses, not a capacity",
        )
    by_sign: dict[str, list[tuple[StepRun, PressureCurve]]] = {}
    creep, creep_note = _creep(ctx) if constant else (None, "")
    for step in constant:
        if "press_hold" in step.params:  # issue 14: analyses/press_hold.py draws those
            report.refuse(
                "pressure vs normalized capacity",
                [step],
                "the press held the stack pressure: see pressure held vs open loop",
            )
            continue
        curve, why = _curve(ctx, step, creep)
        if curve is None:
            report.refuse("pressure vs normalized capacity", [step], why)
            continue
        _, i = samples_in(ctx.ch, "current_a", step)
        sign = "I < 0" if float(np.median(i)) < 0 else "I > 0"
        by_sign.setdefault(sign, []).append((step, curve))
    if not by_sign:
        return
    numbers: dict[str, Any] = {"creep": creep_note}
    if creep is not None:
        numbers["creep_law"] = {
            "a_pa": creep[0],
            "b_pa": creep[1],
            "t0_s": creep[2],
            "form": "p = a + b ln(t + t0)",
        }
    panels = []
    for sign, items in sorted(by_sign.items()):
        rows = []
        for step, c in items:
            ph = c.phases
            assert ph is not None
            rows.append(
                {
                    "step": step.index,
                    "label": step.label,
                    "p_start_mpa": c.p_start_mpa,
                    "rates_mpa_per_q": ph.rates_mpa_per_q.tolist(),
                    "breaks_q": ph.breaks_q.tolist(),
                    "total_rise_mpa": ph.total_rise_mpa,
                    "net_change_mpa": ph.net_change_mpa,
                    "max_rate_mpa_per_q": ph.max_rate_mpa_per_q,
                }
            )
        numbers[sign] = rows
        panels.append((f"{items[0][0].label or 'galvanostatic'} ({sign})", [c for _, c in items]))
    steps = [s for items in by_sign.values() for s, _ in items]
    fig = plot_pressure_vs_capacity(
        panels,
        ctx.out,
        caption=(
            "Stack pressure rise against normalized capacity for each galvanostatic step, "
            f"one panel per current direction ({creep_note}); dashed: fitted phases, "
            "dotted: their breaks; legend: the rate of each phase in MPa per unit q."
        ),
        footnote=ctx.footnote,
        steps=[s.index for s in steps],
        formats=ctx.options.formats,
    )
    first = next(v for v in numbers.values() if isinstance(v, list))[0]
    report.add(
        "pressure vs normalized capacity",
        steps,
        numbers,
        [fig],
        f"{len(steps)} galvanostatic steps; step {first['step']}: rates "
        + " | ".join(f"{r:.2f}" for r in first["rates_mpa_per_q"])
        + f" MPa/q, breaks at q = {', '.join(f'{b:.2f}' for b in first['breaks_q'])}, "
        f"total rise {first['total_rise_mpa']:.3g} MPa",
    )
    report.extra["pressure_phases"] = numbers
