"""Adaptive rests (issue 14): the length of each rest the board chose, rest by rest, for
each series of pulses (settled on the |dV/dt| criterion: filled dots; maximum reached
first: crosses), against the planner's recommended fixed rest; single adaptive rests
(open circuit until relaxed) in a narrow panel beside them, since they are minutes where
the rests between pulses are seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .style import DOUBLE_COLUMN_IN, FORMATS, SINGLE_COLUMN_IN, Figure, save, style


@dataclass
class RestSeries:
    """The rests of one series: where each sits on the x axis (its pulse number), its
    length and whether the cell settled before the maximum."""

    label: str
    x: np.ndarray
    length_s: np.ndarray
    settled: np.ndarray
    max_s: float | None = None


@dataclass
class SingleRest:
    """One adaptive rest on its own (an `adaptive_rest` step)."""

    label: str
    length_s: float
    settled: bool


def plot_rest_lengths(
    series: Sequence[RestSeries],
    out_dir: str | Path,
    *,
    single: Sequence[SingleRest] = (),
    planned: Sequence[tuple[str, float]] = (),
    xlabel: str = "pulse number",
    title: str = "",
    name: str = "rest_decisions",
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """Rest length per rest of each series, with `planned` (label, rest) lines (the
    planner's recommended fixed rest) and each series' maximum when a rest reached it;
    `single` rests in their own panel when there are any."""
    with style():
        if single and series:
            fig, (ax, ax1) = plt.subplots(
                1, 2, figsize=(DOUBLE_COLUMN_IN * 0.8, 2.6), width_ratios=(4, 1)
            )
            fig.subplots_adjust(wspace=0.45)
        elif single:
            fig, ax1 = plt.subplots(figsize=(SINGLE_COLUMN_IN * 0.6, 2.6))
            ax = None
        else:
            fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN, 2.6))
            ax1 = None
        if ax is not None:
            _series_panel(ax, series, planned, xlabel, title, bool(single))
        if ax1 is not None:
            _single_panel(ax1, single, bool(series))
        return save(fig, out_dir, name, caption, footnote=footnote, steps=steps, formats=formats)


def _series_panel(
    ax: Any,
    series: Sequence[RestSeries],
    planned: Sequence[tuple[str, float]],
    xlabel: str,
    title: str,
    lettered: bool,
) -> None:
    colors = (
        ["k"]
        if len(series) == 1
        else list(plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(series))))
    )
    one = len(series) == 1
    shown_max: set[float] = set()
    top = 0.0
    any_max = False
    for s, c in zip(series, colors, strict=True):
        ok = np.asarray(s.settled, bool)
        x, y = np.asarray(s.x, float), np.asarray(s.length_s, float)
        many = x.size > 60  # hundreds of pulses: small marks, no overdrawn block
        # one series: the legend tells settled from maximum; several: a colour per series,
        # and one shared entry for the crosses and for the median lines
        ax.plot(
            x[ok], y[ok], "o", color=c, ms=1.5 if many else 3.0, label="settled" if one else s.label
        )
        if (~ok).any():
            any_max = True
            ax.plot(x[~ok], y[~ok], "x", color=c, ms=3.5, label="maximum reached" if one else None)
            if s.max_s is not None and s.max_s not in shown_max:
                ax.axhline(s.max_s, color="0.5", ls=":", lw=0.7)
                shown_max.add(s.max_s)
        if y.size:
            med = float(np.median(y))
            label = f"board's median {med:.2g} s" if one else None
            ax.axhline(med, color=c, ls="-", lw=0.5, alpha=0.6, label=label)
            top = max(top, float(np.max(y)))
    if not one:
        if any_max:
            ax.plot([], [], "x", color="k", ms=3.5, label="maximum reached")
        ax.plot([], [], "-", color="0.3", lw=0.5, label="each series' median")
    styles = ["--", "-.", (0, (5, 1, 1, 1))]
    for k, (label, rest) in enumerate(planned):
        ax.axhline(rest, color="C3", ls=styles[k % len(styles)], lw=0.9, label=label)
        top = max(top, rest)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rest length (s)")
    ax.set_ylim(0.0, 1.3 * top if top > 0 else 1.0)
    if title or lettered:
        ax.set_title(("(a) " if lettered else "") + title, loc="left")
    if one and len(planned) <= 1:
        ax.legend(loc="best")
    else:  # many entries: under the axes, where they hide no rest
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2)


def _single_panel(ax: Any, single: Sequence[SingleRest], lettered: bool) -> None:
    x = np.arange(len(single))
    y = np.array([r.length_s for r in single], float)
    ok = np.array([r.settled for r in single], bool)
    ax.plot(x[ok], y[ok], "o", color="k", label="settled")
    if (~ok).any():
        ax.plot(x[~ok], y[~ok], "x", color="k", ms=4, label="maximum reached")
    for xi, yi in zip(x, y, strict=True):
        ax.annotate(
            f"{yi:.3g} s",
            (xi, yi),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6,
        )
    ax.set_xticks(x, [r.label for r in single], rotation=30, ha="right")
    ax.set_xlim(-0.6, len(single) - 0.4)
    ax.set_ylim(0.0, 1.3 * float(y.max()) if y.size and y.max() > 0 else 1.0)
    ax.set_ylabel("rest length (s)")
    ax.set_title(("(b) " if lettered else "") + "single rests", loc="left")
