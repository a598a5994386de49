"""Seed 000 Fig. 6: the cell voltage, each grating's Bragg shift Δλ, the sensing grating's
temperature-compensated strain with the stress it means (σ = E ε, right axis), and the
temperature, against time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .style import DOUBLE_COLUMN_IN, FORMATS, Figure, envelope, save, style, time_axis


def plot_fbg(
    t_v: np.ndarray,
    voltage_v: np.ndarray,
    shifts_pm: Mapping[str, tuple[np.ndarray, np.ndarray]],
    t_eps: np.ndarray,
    strain: np.ndarray,
    modulus_pa: float,
    temperatures_k: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out_dir: str | Path,
    *,
    strain_label: str = "strain",
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    everything = np.concatenate([t_v, t_eps] + [t for t, _ in shifts_pm.values()])
    _, unit = time_axis(everything)
    scale = {"time (s)": 1.0, "time (h)": 3600.0, "time (d)": 86400.0}[unit]
    with style():
        fig, axs = plt.subplots(4, 1, sharex=True, figsize=(DOUBLE_COLUMN_IN * 0.75, 5.2))
        te, ve = envelope(t_v / scale, voltage_v)
        axs[0].plot(te, ve, color="C3", lw=0.7)
        axs[0].set_ylabel("voltage (V)")
        for k, (name, (t, d)) in enumerate(shifts_pm.items()):
            te, de = envelope(t / scale, d)
            axs[1].plot(te, de, color=f"C{k}", lw=0.7, label=name)
        axs[1].set_ylabel("Δλ (pm)")
        axs[1].legend(loc="upper left", ncol=len(shifts_pm))
        te, ee = envelope(t_eps / scale, strain * 1e6)
        axs[2].plot(te, ee, color="k", lw=0.7)
        axs[2].set_ylabel(f"{strain_label} (µε)")  # what it is: the caption
        twin = axs[2].twinx()
        lo, hi = axs[2].get_ylim()
        twin.set_ylim(lo * 1e-6 * modulus_pa / 1e6, hi * 1e-6 * modulus_pa / 1e6)
        twin.set_ylabel("stress σ = Eε (MPa)")
        for k, (name, (t, dt)) in enumerate(temperatures_k.items()):
            te, de = envelope(t / scale, dt)
            axs[3].plot(te, de, color=f"C{k + 1}", lw=0.7, label=name)
        axs[3].set_ylabel("ΔT (K)")
        if temperatures_k:
            axs[3].legend(loc="upper left", ncol=len(temperatures_k))
        axs[-1].set_xlabel(unit)
        fig.align_ylabels(axs)
        return save(
            fig,
            out_dir,
            "fbg_strain_stress",
            caption,
            footnote=footnote,
            steps=steps,
            formats=formats,
        )
