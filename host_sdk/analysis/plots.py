"""Single figures from arrays (matplotlib, Agg): labelled axes with units, 300 dpi PNG.

Every function takes arrays or analysis results and an output path and returns the path.
The per-step figures `stressrig analyze` writes (PNG + PDF + SVG, captions, the emulated
scenario's caveats) live in host_sdk.analysis.figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from .planner import C_M2_PER_MAH_CM2, RestPlan  # noqa: E402
from .pressure import PressurePhases  # noqa: E402

STYLE: Any = {  # typed Any: rc_context wants a dict of literal keys
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.2,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
}
DPI = 300


def _save(fig: plt.Figure, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=DPI)
    plt.close(fig)
    return p


def plot_pressure_vs_capacity(
    normalized_capacity: ArrayLike,
    pressure_pa: ArrayLike,
    voltage_v: ArrayLike,
    phases: PressurePhases | None,
    path: str | Path,
) -> Path:
    """Stack pressure and cell voltage against normalized capacity, rate phases marked."""
    q = np.asarray(normalized_capacity, float)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.5, 2.8))
        ax.plot(q, np.asarray(pressure_pa, float) / 1e6, color="k", label="pressure")
        ax.set_xlabel("normalized capacity")
        ax.set_ylabel("stack pressure (MPa)")
        if phases is not None:
            for k in range(phases.n_segments):
                qq = np.array([phases.q_start[k], phases.q_end[k]])
                pp = np.array([phases.p_start_mpa[k], phases.p_end_mpa[k]])
                ax.plot(qq, pp, "--", color=f"C{k % 10}", lw=1.0)
                ax.annotate(
                    f"{phases.rates_mpa_per_q[k]:.2f} MPa/q",
                    (qq.mean(), pp.mean()),
                    fontsize=7,
                    color=f"C{k % 10}",
                    xytext=(0, 6),
                    textcoords="offset points",
                    ha="center",
                )
            for b in phases.breaks_q:
                ax.axvline(b, color="0.6", lw=0.6, ls=":")
        ax2 = ax.twinx()
        ax2.plot(q, np.asarray(voltage_v, float), color="C3", lw=0.8)
        ax2.set_ylabel("voltage (V)", color="C3")
        return _save(fig, path)


def plot_fbg_time_series(
    t_s: ArrayLike,
    strain: ArrayLike,
    delta_t_k: ArrayLike,
    voltage_v: ArrayLike,
    path: str | Path,
    stress_pa: ArrayLike | None = None,
) -> Path:
    """FBG micro-strain (and stress), temperature change and voltage against time."""
    t = np.asarray(t_s, float) / 3600.0
    n = 3 if stress_pa is None else 4
    with plt.rc_context(STYLE):
        fig, axs = plt.subplots(n, 1, sharex=True, figsize=(3.5, 1.4 * n))
        axs[0].plot(t, np.asarray(voltage_v, float), color="C3")
        axs[0].set_ylabel("voltage (V)")
        axs[1].plot(t, np.asarray(strain, float) * 1e6, color="k")
        axs[1].set_ylabel("strain (µε)")
        k = 2
        if stress_pa is not None:
            axs[2].plot(t, np.asarray(stress_pa, float) / 1e6, color="C0")
            axs[2].set_ylabel("stress (MPa)")
            k = 3
        axs[k].plot(t, np.asarray(delta_t_k, float), color="C1")
        axs[k].set_ylabel("ΔT (K)")
        axs[-1].set_xlabel("time (h)")
        fig.align_ylabels(axs)
        return _save(fig, path)


def plot_concentration_profiles(
    x_m: ArrayLike,
    profiles_mol_m3: Sequence[ArrayLike],
    times_s: Sequence[float],
    path: str | Path,
) -> Path:
    """Concentration profiles across the film at several times of a pulse train."""
    x = np.asarray(x_m, float) * 1e6
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.5, 2.6))
        cmap = plt.get_cmap("viridis")
        n = max(1, len(times_s) - 1)
        for k, (c, tt) in enumerate(zip(profiles_mol_m3, times_s, strict=True)):
            ax.plot(x, np.asarray(c, float), color=cmap(k / n), label=f"{tt:g} s")
        ax.set_xlabel("distance from interface (µm)")
        ax.set_ylabel("concentration (mol m⁻³)")
        ax.legend(ncol=2)
        return _save(fig, path)


def plot_capacity_vs_rest(plan: RestPlan, path: str | Path) -> Path:
    """Critical stripping capacity vs rest time with plateau and recommended rest."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.5, 2.6))
        ax.plot(plan.rest_s, plan.capacity_mah_cm2, "o-", color="k", ms=3)
        ax.axhline(plan.plateau_c_m2 / C_M2_PER_MAH_CM2, color="0.6", ls=":", lw=0.8)
        ax.axvline(
            plan.recommended_rest_s,
            color="C3",
            ls="--",
            lw=0.8,
            label=f"{plan.fraction:.0%} of plateau: {plan.recommended_rest_s:.2g} s",
        )
        ax.set_xlabel(f"rest after each {plan.pulse_s:g} s pulse (s)")
        ax.set_ylabel("critical capacity (mAh cm⁻²)")
        ax.legend(loc="lower right")
        return _save(fig, path)
