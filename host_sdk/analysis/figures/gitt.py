"""GITT (seed 000 Fig. S18): the voltage transient with one pulse magnified, and the
diffusion coefficient of each pulse against the state of charge (open markers: pulses
whose Weppner-Huggins assumptions failed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import ScalarFormatter

from .style import (
    DOUBLE_COLUMN_IN,
    FORMATS,
    Figure,
    emptiest_box,
    envelope,
    save,
    style,
    time_axis,
    zoom_inset,
)


def plot_gitt(
    t_s: np.ndarray,
    voltage_v: np.ndarray,
    soc: np.ndarray,
    d_m2_s: np.ndarray,
    ok: np.ndarray,
    out_dir: str | Path,
    *,
    zoom_s: tuple[float, float] | None = None,
    soc_label: str = "state of charge",
    flagged_label: str = "flagged (see summary)",
    d_corrected_m2_s: np.ndarray | None = None,
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    with style():
        fig, (ax_v, ax_d) = plt.subplots(1, 2, figsize=(DOUBLE_COLUMN_IN, 2.6), width_ratios=(3, 2))
        t_plot, unit = time_axis(t_s)
        scale = float(np.ptp(t_s) / np.ptp(t_plot)) if np.ptp(t_plot) else 1.0
        te, ve = envelope(t_plot, voltage_v)
        ax_v.plot(te, ve, color="C3", lw=0.6)
        ax_v.set_xlabel(unit)
        ax_v.set_ylabel("cell voltage (V)")
        ax_v.set_title("(a) GITT transient", loc="left")
        if zoom_s is not None:
            ax_v.time_scale_s = scale  # type: ignore[attr-defined]
            box = emptiest_box(ax_v, [te], [ve], (0.36, 0.36))
            zoom_inset(ax_v, t_s, voltage_v, zoom_s, box, "C3", "a pulse and its rest")
        fig.subplots_adjust(wspace=0.4)
        good = np.asarray(ok, bool)
        if np.any(good):
            ax_d.plot(
                soc[good], d_m2_s[good], "o-", color="k", ms=3, lw=0.7, label="assumptions hold"
            )
        if np.any(~good):
            ax_d.plot(
                soc[~good], d_m2_s[~good], "o", mfc="white", color="k", ms=3, label=flagged_label
            )
        if d_corrected_m2_s is not None and np.any(np.abs(d_corrected_m2_s / d_m2_s - 1.0) > 0.005):
            ax_d.plot(
                soc,
                d_corrected_m2_s,
                "x",
                color="C0",
                ms=3.5,
                label="geometry bias removed (exact series)",
            )
        if np.nanmax(d_m2_s) > 5.0 * np.nanmin(d_m2_s):
            ax_d.set_yscale("log")
        else:  # a narrow range: plain numbers with one power of ten on the axis
            fmt = ScalarFormatter(useMathText=True)
            fmt.set_powerlimits((0, 0))
            ax_d.yaxis.set_major_formatter(fmt)
        ax_d.set_xlabel(soc_label)
        ax_d.set_ylabel("D (m$^2$ s$^{-1}$)")
        ax_d.set_title("(b) D per pulse", loc="left")
        # under the axes: inside, a legend hides points wherever D happens to dip
        ax_d.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=6)
        return save(
            fig, out_dir, "gitt_diffusion", caption, footnote=footnote, steps=steps, formats=formats
        )
