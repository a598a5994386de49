"""The whole run at a glance: cell voltage and current density against time, the protocol's
steps marked, and a zoom on a few pulses when the run has pulse trains (a train of
hundreds of pulses otherwise prints as a solid block)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .style import (
    DOUBLE_COLUMN_IN,
    FORMATS,
    Figure,
    band,
    current_axis,
    emptiest_box,
    save,
    style,
    time_axis,
    zoom_inset,
)


def plot_overview(
    t_v: np.ndarray,
    voltage_v: np.ndarray,
    t_i: np.ndarray,
    current_a: np.ndarray,
    out_dir: str | Path,
    *,
    area_m2: float | None,
    step_bounds: Sequence[tuple[int, float, float]] = (),
    zoom_s: tuple[float, float] | None = None,
    pulse_period_s: float = 0.0,
    v_label: str = "cell voltage (V)",
    caption: str = "",
    footnote: str = "",
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """Voltage over current density (or current) against time; `step_bounds` are (index,
    start, end) of the steps; `zoom_s` a time window magnified in an inset;
    `pulse_period_s` the longest period of the dense pulse trains (drawn as bands)."""
    t_all = np.concatenate((t_v, t_i)) if t_i.size else t_v
    _, unit = time_axis(t_all)
    scale = {"time (s)": 1.0, "time (h)": 3600.0, "time (d)": 86400.0}[unit]
    with style():
        fig, (ax_v, ax_i) = plt.subplots(
            2, 1, sharex=True, figsize=(DOUBLE_COLUMN_IN, 3.4), height_ratios=(3, 2)
        )
        min_bin = 2.0 * pulse_period_s / scale
        band(ax_v, t_v / scale, voltage_v, "C3", min_bin=min_bin)
        ax_v.set_ylabel(v_label)
        i_plot, i_label = current_axis(current_a, area_m2)
        band(ax_i, t_i / scale, i_plot, "0.2", min_bin=min_bin)
        ax_i.set_ylabel(i_label)
        ax_i.set_xlabel(unit)
        span = float(np.ptp(t_all)) if t_all.size else 1.0
        last_label = -np.inf
        for index, t0, t1 in step_bounds:
            for ax in (ax_v, ax_i):
                ax.axvline(t0 / scale, color="0.85", lw=0.4, zorder=0)
            mid = 0.5 * (t0 + t1)
            if (mid - last_label) > 0.04 * span:  # a label only where it has room
                ax_v.text(
                    mid / scale,
                    1.01,
                    str(index),
                    transform=ax_v.get_xaxis_transform(),
                    ha="center",
                    va="bottom",
                    fontsize=5.5,
                    color="0.4",
                )
                last_label = mid
        if zoom_s is not None:
            ax_v.time_scale_s = scale  # type: ignore[attr-defined]
            box = emptiest_box(
                ax_v,
                [t_v[:: max(1, t_v.size // 4000)] / scale],
                [voltage_v[:: max(1, t_v.size // 4000)]],
                (0.3, 0.42),
            )
            zoom_inset(ax_v, t_v, voltage_v, zoom_s, box, "C3", "3 pulses")
        fig.align_ylabels((ax_v, ax_i))
        return save(fig, out_dir, "voltage_current", caption, footnote=footnote, formats=formats)


def plot_stack_pressure(
    t_s: np.ndarray,
    pressure_pa: np.ndarray,
    out_dir: str | Path,
    *,
    step_bounds: Sequence[tuple[int, float, float]] = (),
    caption: str = "",
    footnote: str = "",
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """Stack pressure against time (creep, steps and the cell's breathing)."""
    t_plot, unit = time_axis(t_s)
    scale = float(np.ptp(t_s) / np.ptp(t_plot)) if np.ptp(t_plot) else 1.0
    with style():
        fig, ax = plt.subplots(figsize=(DOUBLE_COLUMN_IN * 0.6, 2.2))
        band(ax, t_plot, pressure_pa / 1e6, "k")
        for _, t0, _ in step_bounds:
            ax.axvline(t0 / scale, color="0.85", lw=0.4, zorder=0)
        ax.set_xlabel(unit)
        ax.set_ylabel("stack pressure (MPa)")
        return save(fig, out_dir, "stack_pressure", caption, footnote=footnote, formats=formats)
