"""GITT steps: D of every pulse (Weppner-Huggins, pulses timed by the board's edge events)
against the state of charge the pulse reached, with each pulse's validity checks.

The state of charge is the charge passed since the GITT step began, over the step's
whole charge (0 → 1), at the middle of each pulse. V/S is the user's (--gitt-v-over-s-m,
--gitt-geometry) or, on an emulated board, the scenario's film thickness; without one the
analysis is refused: D scales with (V/S)².
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from host_sdk.analysis.figures.gitt import plot_gitt
from host_sdk.analysis.gitt import analyze_gitt

from .common import Context, Report, samples_in


def _v_over_s(ctx: Context) -> tuple[float, str, str] | None:
    if ctx.options.v_over_s_m:
        return ctx.options.v_over_s_m, ctx.options.geometry, "given (--gitt-v-over-s-m)"
    emu = ctx.exp.emulated
    film = (emu.truth.get("film") or {}) if emu is not None else {}
    if film.get("thickness_m"):
        return float(film["thickness_m"]), "film", f"the emulated scenario's film ({emu.name})"  # type: ignore[union-attr]
    return None


def analyze(ctx: Context, report: Report) -> None:
    steps = ctx.exp.of_kind("gitt")
    for step in steps:
        geo = _v_over_s(ctx)
        if geo is None:
            report.refuse(
                "GITT diffusion coefficient",
                [step],
                "no V/S: give --gitt-v-over-s-m (film thickness, or R/3 with "
                "--gitt-geometry sphere)",
            )
            continue
        v_over_s, geometry, source = geo
        t, v = samples_in(ctx.ch, "voltage_v", step)
        ti, i = samples_in(ctx.ch, "current_a", step)
        pulses = step.pulses()
        if len(pulses) < 1 or t.size < 10:
            report.refuse("GITT diffusion coefficient", [step], "no pulse was recorded")
            continue
        i_on_v = np.interp(t, ti, i) if ti.size else np.zeros_like(t)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = analyze_gitt(
                t,
                i_on_v,
                v,
                v_over_s,
                geometry=geometry,  # type: ignore[arg-type]
                edges_s=[(a, b) for a, b, _ in pulses],
            )
        if not res:
            report.refuse(
                "GITT diffusion coefficient",
                [step],
                "no pulse had a rest on both sides in the recording",
            )
            continue
        charge = np.cumsum([abs(a) * (b - t0) for t0, b, a in pulses])
        total = float(charge[-1])
        starts = {round(p[0], 6): k for k, p in enumerate(pulses)}
        soc = []
        for r in res:
            k = starts.get(round(r.t_start_s, 6), 0)
            before = charge[k - 1] if k else 0.0
            soc.append((before + 0.5 * abs(r.current_a) * r.tau_s) / total)
        d = np.array([r.d_m2_s for r in res])
        ok = np.array([r.assumptions_ok for r in res])
        numbers: dict[str, Any] = {
            "v_over_s_m": v_over_s,
            "geometry": geometry,
            "v_over_s_source": source,
            "pulses": [
                {
                    "t_start_s": r.t_start_s,
                    "tau_s": r.tau_s,
                    "soc": float(s),
                    "d_m2_s": r.d_m2_s,
                    "d_corrected_m2_s": r.d_corrected_m2_s,
                    "tau_d_over_l2": r.tau_d_over_l2,
                    "unrelaxed_fraction": r.unrelaxed_fraction,
                    "assumptions_ok": r.assumptions_ok,
                    "problems": list(r.problems),
                }
                for r, s in zip(res, soc, strict=True)
            ],
            "d_median_m2_s": float(np.median(d)),
            "warnings": sorted({str(w.message).split(": ", 1)[-1] for w in caught}),
        }
        why = {
            "≪ L²/D": "τ not ≪ L²/D",
            "geometry biases": "geometry bias",
            "short of relaxed": "rest too short",
        }
        reasons = sorted(
            {short for r in res for p in r.problems for key, short in why.items() if key in p}
        )
        first = pulses[min(1, len(pulses) - 1)]
        nxt = pulses[min(2, len(pulses) - 1)][0] if len(pulses) > 2 else step.t_end_s
        fig = plot_gitt(
            t,
            v,
            np.asarray(soc),
            d,
            ok,
            ctx.out,
            zoom_s=(first[0] - 0.05 * (nxt - first[0]), nxt),
            soc_label="state of charge (charge passed / step total)",
            flagged_label="flagged: " + ", ".join(reasons) if reasons else "flagged",
            d_corrected_m2_s=np.array([r.d_corrected_m2_s for r in res]),
            caption=(
                f"GITT ({step.name}): (a) cell voltage against time, one pulse and its "
                f"rest magnified; (b) Weppner-Huggins D of each pulse (V/S = "
                f"{v_over_s * 1e6:.3g} µm, {geometry}; {source}) against the state of "
                "charge at the middle of the pulse; open: assumptions failed; crosses: D with the "
                "geometry's bias removed (exact constant-flux series)."
            ),
            footnote=ctx.footnote,
            steps=[step.index],
            formats=ctx.options.formats,
        )
        flagged = int(np.count_nonzero(~ok))
        report.add(
            "GITT diffusion coefficient",
            [step],
            numbers,
            [fig],
            f"{step.name}: D = {np.min(d):.3g} … {np.max(d):.3g} m² s⁻¹ over "
            f"{len(res)} pulses (median {np.median(d):.3g})"
            + (f"; {flagged} flagged" if flagged else ""),
        )
        report.extra["gitt"] = numbers
