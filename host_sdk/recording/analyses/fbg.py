"""FBG: each grating's Bragg shift Δλ, the sensing grating's strain (compensated with the
strain-free reference grating when the recording names one), the stress σ = E ε, and the
temperature from the reference grating and the thermistor, against time with the voltage
(seed 000 Fig. 6). Sweeps that lost a grating never get here (si_channels leaves them
out). The modulus is the user's (--fbg-modulus-pa; default the silica fibre's 72 GPa:
the stress on the grating)."""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.analysis.figures.fbg import plot_fbg

from .common import Context, Report


def analyze(ctx: Context, report: Report) -> None:
    waves = ctx.ch.get("wavelength_m") or {}
    strains = ctx.ch.get("strain") or {}
    if not waves:
        return
    if not strains:
        report.refuse(
            "FBG strain and stress", [], "no sensing grating: every grating is the reference"
        )
        return
    shifts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    numbers: dict[str, Any] = {"gratings": {}}
    for g, (t, w) in waves.items():
        lam0 = float(np.median(w[:20]))
        d_pm = (w - lam0) * 1e12
        shifts[g] = (t, d_pm)
        numbers["gratings"][g] = {
            "lambda0_nm": lam0 * 1e9,
            "shift_min_pm": float(d_pm.min()),
            "shift_max_pm": float(d_pm.max()),
        }
    g, (t_eps, eps) = next(iter(strains.items()))
    compensated = "fbg_delta_t_k" in ctx.ch
    e_pa = ctx.options.fbg_modulus_pa
    sigma = eps * e_pa
    temps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if compensated:
        temps["FBG reference"] = ctx.ch["fbg_delta_t_k"]
    if "temperature_c" in ctx.ch:
        t_th, th = ctx.ch["temperature_c"]
        if len(th):
            temps["thermistor"] = (t_th, th - th[0])
    numbers.update(
        {
            "sensing_grating": g,
            "temperature_compensated": compensated,
            "strain_min": float(eps.min()),
            "strain_max": float(eps.max()),
            "modulus_pa": e_pa,
            "stress_min_mpa": float(sigma.min() / 1e6),
            "stress_max_mpa": float(sigma.max() / 1e6),
        }
    )
    for name, (_, dt) in temps.items():
        numbers[f"delta_t_{name.split()[0].lower()}_k"] = [float(np.min(dt)), float(np.max(dt))]
    t_v, v = ctx.ch.get("voltage_v", (np.zeros(0), np.zeros(0)))
    steps = [s for s in ctx.exp.steps if s.kind != "rest"] or ctx.exp.steps
    label = "strain"
    fig = plot_fbg(
        np.asarray(t_v),
        np.asarray(v),
        shifts,
        t_eps,
        eps,
        e_pa,
        temps,
        ctx.out,
        strain_label=label,
        caption=(
            f"FBG: cell voltage; Bragg shift of each grating; grating {g}'s strain"
            + (
                " compensated with the reference grating"
                if compensated
                else " (no reference grating: temperature not removed)"
            )
            + f", and the stress σ = Eε (E = {e_pa / 1e9:.3g} GPa); temperature change "
            "from the reference grating and the thermistor."
        ),
        footnote=ctx.footnote,
        steps=[s.index for s in steps],
        formats=ctx.options.formats,
    )
    report.add(
        "FBG strain and stress",
        steps,
        numbers,
        [fig],
        f"FBG {g}: strain {eps.min() * 1e6:.3g} … {eps.max() * 1e6:.3g} µε, stress "
        f"{sigma.min() / 1e6:.3g} … {sigma.max() / 1e6:.3g} MPa (E = {e_pa / 1e9:.3g} "
        "GPa)" + ("" if compensated else ", not temperature-compensated"),
    )
    report.extra["fbg"] = numbers
