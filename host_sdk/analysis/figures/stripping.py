"""Seed 004's pulsed-stripping figures: the voltage of each series with a zoom on a few
pulses (Fig. 4a, b) and the critical stripping capacity against the rest (Fig. 4c) with
the planner's prediction and the theoretical limit beside the measured points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .style import (
    DOUBLE_COLUMN_IN,
    FORMATS,
    SINGLE_COLUMN_IN,
    Figure,
    emptiest_box,
    period_envelope,
    save,
    spread_labels,
    style,
    zoom_inset,
)


@dataclass
class Series:
    """One pulse-train series: its voltage against time from its start."""

    label: str
    t_s: np.ndarray
    voltage_v: np.ndarray
    period_s: float


def capacity_unit(values_mah_cm2: Sequence[float]) -> tuple[float, str]:
    """(factor, unit) that shows capacities without a string of zeros."""
    top = max((abs(v) for v in values_mah_cm2 if np.isfinite(v)), default=1.0)
    if top < 1.0:
        return 1000.0, "µAh cm$^{-2}$"
    return 1.0, "mAh cm$^{-2}$"


def plot_capacity_vs_rest(
    rest_s: Sequence[float],
    capacity_mah_cm2: Sequence[float],
    out_dir: str | Path,
    *,
    pulse_s: float,
    current_ma_cm2: float,
    fresh: Sequence[bool] | None = None,
    predicted: tuple[Sequence[float], Sequence[float]] | None = None,
    theoretical_mah_cm2: float | None = None,
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """Fig. 4c: measured capacity per rest (filled: a fresh cell; open: a cell already
    stripped), the planner's curve and the theoretical limit."""
    rest = np.asarray(rest_s, float)
    cap = np.asarray(capacity_mah_cm2, float)
    fresh_a = np.ones(rest.size, bool) if fresh is None else np.asarray(fresh, bool)
    pool = list(cap) + (list(predicted[1]) if predicted else [])
    pool += [theoretical_mah_cm2] if theoretical_mah_cm2 else []
    k, unit = capacity_unit(pool)
    with style():
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN, 2.6))
        if predicted is not None:
            ax.plot(
                predicted[0],
                np.asarray(predicted[1]) * k,
                "-",
                color="C0",
                lw=1.0,
                label="planner (film model)",
                zorder=1,
            )
        if theoretical_mah_cm2:
            ax.axhline(
                theoretical_mah_cm2 * k,
                color="0.4",
                ls="--",
                lw=0.8,
                label=f"theoretical {theoretical_mah_cm2 * k:.3g} {unit}",
            )
        ax.plot(
            rest[fresh_a], cap[fresh_a] * k, "o", color="k", label="measured, fresh cell", zorder=3
        )
        if np.any(~fresh_a):
            ax.plot(
                rest[~fresh_a],
                cap[~fresh_a] * k,
                "o",
                mfc="white",
                color="k",
                label="measured, cell already stripped",
                zorder=3,
            )
        texts = [
            ax.annotate(
                f"{c * k:.3g}",
                (r, c * k),
                xytext=(0, 5),
                textcoords="offset points",
                fontsize=6,
                ha="center",
                va="bottom",
            )
            for r, c in zip(rest, cap, strict=True)
            if np.isfinite(c)
        ]
        ax.set_xlabel(f"rest after each {pulse_s:g} s pulse (s)")
        ax.set_ylabel(f"critical stripping capacity ({unit})")
        ax.set_title(f"pulsed stripping at {current_ma_cm2:.3g} mA cm$^{{-2}}$", loc="left")
        ax.set_xlim(-0.02 * float(np.nanmax(rest)), 1.06 * float(np.nanmax(rest)))
        ax.set_ylim(bottom=0.0)
        ax.legend(loc="lower right")
        good = np.isfinite(cap)
        spread_labels(ax, texts, points=list(zip(rest[good], cap[good] * k, strict=True)))
        return save(
            fig,
            out_dir,
            "capacity_vs_rest",
            caption,
            footnote=footnote,
            steps=steps,
            formats=formats,
        )


def plot_pulse_series(
    series: Sequence[Series],
    out_dir: str | Path,
    *,
    zoom: int = 0,
    v_cutoff: float | None = None,
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """Fig. 4a, b: every series' voltage against its own time, drawn as each pulse's peak
    and each rest's level (a train of hundreds of pulses is otherwise a solid block), and
    an inset, where it hides no data, that magnifies three pulses of series `zoom`."""
    with style():
        fig, ax = plt.subplots(figsize=(DOUBLE_COLUMN_IN * 0.8, 2.9))
        colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(1, len(series))))
        t_max = max((float(s.t_s[-1]) for s in series if s.t_s.size), default=1.0)
        unit, scale = ("h", 3600.0) if t_max > 7200 else ("s", 1.0)
        xs, ys = [], []
        for s, c in zip(series, colors, strict=True):
            # each pulse's peak (solid) and the level each rest returns to (thin): the
            # train as two lines, not a block of hundreds of pulses
            tp, hi, lo = period_envelope(s.t_s, s.voltage_v, s.period_s)
            ax.fill_between(tp / scale, lo, hi, color=c, alpha=0.12, lw=0)
            ax.plot(tp / scale, hi, color=c, lw=0.9, label=s.label)
            ax.plot(tp / scale, lo, color=c, lw=0.5)
            xs += [tp / scale, tp / scale]
            ys += [hi, lo]
        if v_cutoff is not None:
            ax.axhline(v_cutoff, color="C3", ls=":", lw=0.8, label=f"cutoff {v_cutoff:g} V")
        ax.set_xlabel(f"time from the series' first pulse ({unit})")
        ax.set_ylabel("cell voltage (V)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        z = series[zoom] if series else None
        if z is not None and z.t_s.size > 10 and z.period_s > 0:
            t0 = float(z.t_s[0]) + 0.3 * float(np.ptp(z.t_s))
            ax.time_scale_s = scale  # type: ignore[attr-defined]
            zoom_inset(
                ax,
                z.t_s,
                z.voltage_v,
                (t0, t0 + 3.0 * z.period_s),
                emptiest_box(ax, xs, ys, (0.34, 0.36)),
                colors[zoom],
                f"{z.label.split(',')[0]}, 3 pulses",
            )
        return save(
            fig, out_dir, "pulse_series", caption, footnote=footnote, steps=steps, formats=formats
        )
