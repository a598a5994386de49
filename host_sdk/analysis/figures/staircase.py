"""Seed 004's staircase (Fig. 3b): the voltage under each current step against the step's
current density, the stable (linear) regime fitted, the onset of unstable stripping and
the critical current density marked; and the voltage with the staircase against time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .style import DOUBLE_COLUMN_IN, FORMATS, Figure, envelope, save, style, time_axis


def plot_staircase(
    t_s: np.ndarray,
    voltage_v: np.ndarray,
    level_ma_cm2: np.ndarray,
    level_t_on_s: np.ndarray,
    overpotential_v: np.ndarray,
    out_dir: str | Path,
    *,
    stable_fit: tuple[float, float] | None,
    onset_ma_cm2: float | None,
    ccd_ma_cm2: float | None,
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    with style():
        fig, (ax_t, ax_j) = plt.subplots(1, 2, figsize=(DOUBLE_COLUMN_IN, 2.6), width_ratios=(3, 2))
        t_plot, unit = time_axis(t_s)
        scale = float(np.ptp(t_s) / np.ptp(t_plot)) if np.ptp(t_plot) else 1.0
        te, ve = envelope(t_plot, voltage_v)
        ax_t.plot(te, ve, color="C3", lw=0.5)
        ax_t.set_xlabel(unit)
        ax_t.set_ylabel("cell voltage (V)", color="C3")
        tw = ax_t.twinx()
        tw.step(level_t_on_s / scale, level_ma_cm2, where="post", color="k", lw=0.7)
        tw.set_ylabel("step current density (mA cm$^{-2}$)")
        ax_t.set_title("(a) staircase", loc="left")
        fig.subplots_adjust(wspace=0.55)  # room for (a)'s right axis and (b)'s left one
        ax_j.plot(
            level_ma_cm2, overpotential_v, "o", color="k", ms=2.5, label="end of each current step"
        )
        if stable_fit is not None:
            x = np.linspace(0.0, float(np.max(level_ma_cm2)), 50)
            ax_j.plot(
                x,
                stable_fit[0] * x + stable_fit[1],
                "--",
                color="C0",
                lw=0.8,
                label=f"stable: {stable_fit[0] * 1e3:.3g} mV per mA cm$^{{-2}}$",
            )
        if onset_ma_cm2 is not None:
            ax_j.axvline(
                onset_ma_cm2,
                color="C1",
                ls=":",
                lw=0.8,
                label=f"unstable from {onset_ma_cm2:.3g} mA cm$^{{-2}}$",
            )
        if ccd_ma_cm2 is not None:
            ax_j.axvline(
                ccd_ma_cm2,
                color="C3",
                lw=0.8,
                label=f"CCD {ccd_ma_cm2:.3g} mA cm$^{{-2}}$ (cutoff)",
            )
        ax_j.set_xlabel("current density (mA cm$^{-2}$)")
        ax_j.set_ylabel("overpotential at the step's end (V)")
        ax_j.set_title("(b) response per step", loc="left")
        ax_j.legend(loc="upper left")
        return save(
            fig, out_dir, "staircase_ccd", caption, footnote=footnote, steps=steps, formats=formats
        )
