"""Seed 001 Fig. 7: the stack pressure's rise against the normalized capacity, one panel per
current direction, every galvanostatic step of that direction overlaid, the fitted phases
of each drawn dashed and their rates in the legend (a legend cannot overlap itself)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from host_sdk.analysis.pressure import PressurePhases

from .style import DOUBLE_COLUMN_IN, FORMATS, SINGLE_COLUMN_IN, Figure, envelope, save, style


@dataclass
class PressureCurve:
    label: str
    q: np.ndarray
    rise_mpa: np.ndarray
    phases: PressurePhases | None
    p_start_mpa: float


def plot_pressure_vs_capacity(
    panels: Sequence[tuple[str, Sequence[PressureCurve]]],
    out_dir: str | Path,
    *,
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    n = max(1, len(panels))
    with style():
        fig, axs = plt.subplots(
            1, n, figsize=(SINGLE_COLUMN_IN if n == 1 else DOUBLE_COLUMN_IN, 2.9), squeeze=False
        )
        for ax, (title, curves) in zip(axs[0], panels, strict=True):
            colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(1, len(curves))))
            for c, col in zip(curves, colors, strict=True):
                qe, pe = envelope(c.q, c.rise_mpa, 800)
                rates = ""
                if c.phases is not None:
                    rates = " | ".join(f"{r:.2f}" for r in c.phases.rates_mpa_per_q)
                    for k in range(c.phases.n_segments):
                        ax.plot(
                            [c.phases.q_start[k], c.phases.q_end[k]],
                            np.array([c.phases.p_start_mpa[k], c.phases.p_end_mpa[k]])
                            - c.p_start_mpa,
                            "--",
                            color=col,
                            lw=0.8,
                        )
                    for b in c.phases.breaks_q:
                        ax.axvline(b, color=col, lw=0.4, ls=":", alpha=0.6)
                ax.plot(
                    qe, pe, color=col, lw=1.0, label=f"{c.label}: {rates}" if rates else c.label
                )
            ax.set_xlabel("normalized capacity q")
            ax.set_ylabel("stack pressure rise (MPa)")
            ax.set_title(title, loc="left")
            ax.set_xlim(0.0, 1.0)
            ax.legend(
                loc="best", fontsize=6, title="phase rates (MPa per unit q)", title_fontsize=6
            )
        return save(
            fig,
            out_dir,
            "pressure_vs_capacity",
            caption,
            footnote=footnote,
            steps=steps,
            formats=formats,
        )
