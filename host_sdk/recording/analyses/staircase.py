"""Staircase steps: the critical current density (seed 004).

Each level of the staircase is a current pulse (the board's edge events give its start,
end and current). Its overpotential is the voltage at the end of the pulse minus the
open-circuit voltage just before it. Two numbers: the onset of unstable stripping, the
first level from which the overpotential stays more than ONSET_EXCESS above the straight
line of the stable (first third of the) levels; and the critical current density, the
level during which the voltage cutoff ended the staircase (none when it ran out of levels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.analysis.figures.staircase import plot_staircase
from host_sdk.recording.experiment import StepRun

from .common import Context, Report, samples_in

ONSET_EXCESS = 0.2  # overpotential 20 % above the stable line: no longer linear


def _levels(ctx: Context, step: StepRun) -> dict[str, np.ndarray]:
    t, v = samples_in(ctx.ch, "voltage_v", step)
    on, off, amps, eta = [], [], [], []
    for t0, t1, a in step.pulses():
        before = np.flatnonzero(t < t0)
        during = np.flatnonzero((t > t0) & (t <= t1))
        if before.size == 0 or during.size == 0:
            continue
        on.append(t0)
        off.append(t1)
        amps.append(a)
        eta.append(v[during[-1]] - v[before[-1]])
    return {
        k: np.asarray(x, float)
        for k, x in (("t_on", on), ("t_off", off), ("amps", amps), ("eta", eta))
    }


def _onset(j: np.ndarray, eta: np.ndarray) -> tuple[tuple[float, float] | None, float | None]:
    n_fit = max(3, j.size // 3)
    if j.size < n_fit + 2:
        return None, None
    slope, icpt = np.polyfit(j[:n_fit], eta[:n_fit], 1)
    line = slope * j + icpt
    above = np.abs(eta) > (1.0 + ONSET_EXCESS) * np.abs(line)
    # the first level from which every later level stays above the line
    stays = np.flatnonzero(np.logical_and.accumulate(above[::-1])[::-1])
    onset = float(j[stays[0]]) if stays.size and stays[0] >= n_fit else None
    return (float(slope), float(icpt)), onset


def analyze(ctx: Context, report: Report) -> None:
    steps = ctx.exp.of_kind("staircase")
    for step in steps:
        if not ctx.area_m2:
            report.refuse(
                "critical current density",
                [step],
                "no electrode area ([cell] area_m2): a current density needs it",
            )
            continue
        lv = _levels(ctx, step)
        if lv["amps"].size < 3:
            report.refuse(
                "critical current density",
                [step],
                f"{lv['amps'].size} current steps recorded; at least 3 are needed",
            )
            continue
        j = lv["amps"] / ctx.area_m2 / 10.0  # mA cm⁻²
        fit, onset = _onset(j, lv["eta"])
        cut = step.end_cause in ("v_max", "v_min", "compliance")
        ccd = float(j[-1]) if cut else None
        numbers: dict[str, Any] = {
            "levels": int(j.size),
            "current_density_ma_cm2": j.tolist(),
            "overpotential_v": lv["eta"].tolist(),
            "end_cause": step.end_cause,
            "ccd_ma_cm2": ccd,
            "last_complete_level_ma_cm2": float(j[-2]) if cut and j.size > 1 else float(j[-1]),
            "onset_unstable_ma_cm2": onset,
            "stable_slope_v_per_ma_cm2": fit[0] if fit else None,
        }
        t, v = samples_in(ctx.ch, "voltage_v", step)
        fig = plot_staircase(
            t,
            v,
            j,
            lv["t_on"],
            lv["eta"],
            ctx.out,
            stable_fit=fit,
            onset_ma_cm2=onset,
            ccd_ma_cm2=ccd,
            caption=(
                f"Staircase stripping ({step.name}): (a) voltage and step current density "
                "against time; (b) overpotential at the end of each current step against "
                "its current density, the stable regime's line, the onset of unstable "
                "stripping (20 % above the line) and the critical current density (the "
                "step the voltage cutoff ended)."
            ),
            footnote=ctx.footnote,
            steps=[step.index],
            formats=ctx.options.formats,
        )
        what = (
            f"CCD {ccd:.3g} mA cm⁻² ({step.end_cause} cutoff)"
            if ccd is not None
            else f"no CCD: the staircase ended {step.end_cause} at {j[-1]:.3g} mA cm⁻²"
        )
        if onset is not None:
            what += f"; unstable stripping from {onset:.3g} mA cm⁻²"
        report.add("critical current density", [step], numbers, [fig], f"{step.name}: {what}")
    if steps:
        done = [a for a in report.analyses if a["analysis"] == "critical current density"]
        report.extra["staircase"] = [a["numbers"] | {"step": a["steps"][0]} for a in done]
