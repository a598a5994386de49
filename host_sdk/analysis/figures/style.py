"""House style of the paper figures: one font and line set, every figure saved as a vector
PDF and SVG beside a PNG at one resolution, a caption kept with it, a footnote when the
data are emulated, time in seconds or hours, current density in mA cm⁻², labels that do
not overlap."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike, NDArray  # noqa: E402

FloatArray = NDArray[np.float64]
DPI = 300  # every raster output; PDF and SVG are vector
FORMATS = ("png", "pdf", "svg")
SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.0
STYLE: Any = {  # typed Any: rc_context wants a dict of literal keys
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "axes.linewidth": 0.7,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": False,
    "savefig.dpi": DPI,
    "svg.fonttype": "none",  # text stays text in the SVG (editable in a paper)
    "pdf.fonttype": 42,
}


@dataclass
class Figure:
    """A written figure: its files (PNG, PDF, SVG), caption and what it shows."""

    name: str
    paths: list[str]
    caption: str
    steps: list[int] = field(default_factory=list)

    @property
    def png(self) -> str:
        return next((p for p in self.paths if p.endswith(".png")), self.paths[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "files": self.paths,
            "caption": self.caption,
            "steps": self.steps,
        }


def style() -> Any:
    return plt.rc_context(STYLE)


def save(
    fig: Any,
    out_dir: str | Path,
    name: str,
    caption: str,
    *,
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """Write `fig` as out_dir/name.{png,pdf,svg} (PNG at DPI), with `footnote` (e.g. the
    emulated board's caveats) printed under the axes, and close it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if footnote:
        # under everything drawn (tick labels, axis labels), not over the lowest of them
        renderer = fig.canvas.get_renderer()
        bottom_in = fig.get_tightbbox(renderer).y0
        width_chars = int(fig.get_figwidth() * 17)
        fig.text(
            0.01,
            (bottom_in - 0.04) / fig.get_figheight(),
            textwrap.fill(footnote, width_chars),
            fontsize=5.5,
            color="0.35",
            ha="left",
            va="top",
            transform=fig.transFigure,
        )
    paths = []
    for ext in formats:
        p = out / f"{name}.{ext}"
        fig.savefig(p, dpi=DPI, bbox_inches="tight", pad_inches=0.03)
        paths.append(str(p))
    plt.close(fig)
    return Figure(name, paths, caption + (f" {footnote}" if footnote else ""), list(steps))


def time_axis(t_s: ArrayLike) -> tuple[FloatArray, str]:
    """Times in the unit a reader wants: s up to 2 h, h up to 4 days, then days."""
    t = np.asarray(t_s, float)
    span = float(np.ptp(t)) if t.size else 0.0
    if span <= 7200.0:
        return t, "time (s)"
    if span <= 4 * 86400.0:
        return t / 3600.0, "time (h)"
    return t / 86400.0, "time (d)"


def current_axis(current_a: ArrayLike, area_m2: float | None) -> tuple[FloatArray, str]:
    """Current as a density in mA cm⁻² when the electrode area is known, else in mA."""
    i = np.asarray(current_a, float)
    if area_m2:
        return i / area_m2 / 10.0, "current density (mA cm$^{-2}$)"
    return i * 1e3, "current (mA)"


def spread_labels(
    ax: Any,
    texts: Sequence[Any],
    step_pt: float = 2.0,
    rounds: int = 200,
    points: Sequence[tuple[float, float]] = (),
) -> None:
    """Move text labels (in display space) until none overlaps another, a marker at any of
    `points` (data coordinates) or the left spine: overlapping labels part vertically, a
    label on a marker moves up, a label across the left spine moves right."""
    if not texts:
        return
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    r_px = 3.0 * fig.dpi / 72.0  # a marker's half-width
    marks = [ax.transData.transform(p) for p in points]
    left = ax.get_window_extent(renderer).x0

    def nudge(t: Any, dx_pt: float, dy_pt: float) -> None:
        inv = t.get_transform().inverted()
        x0, y0 = inv.transform((0.0, 0.0))
        x1, y1 = inv.transform((dx_pt * fig.dpi / 72.0, dy_pt * fig.dpi / 72.0))
        x, y = t.get_position()
        t.set_position((x + (x1 - x0), y + (y1 - y0)))

    for _ in range(rounds):
        boxes = [t.get_window_extent(renderer).expanded(1.05, 1.1) for t in texts]
        moved = False
        for i, b in enumerate(boxes):
            if b.x0 < left:
                nudge(texts[i], step_pt, 0.0)
                moved = True
            for mx, my in marks:
                if b.x0 - r_px <= mx <= b.x1 + r_px and b.y0 - r_px <= my <= b.y1 + r_px:
                    nudge(texts[i], 0.0, step_pt)
                    moved = True
                    break
            for j in range(i + 1, len(boxes)):
                if b.overlaps(boxes[j]):
                    lower, upper = (i, j) if b.y0 <= boxes[j].y0 else (j, i)
                    nudge(texts[lower], 0.0, -step_pt)
                    nudge(texts[upper], 0.0, step_pt)
                    moved = True
        if not moved:
            return


def labels_overlap(ax: Any, texts: Sequence[Any]) -> bool:
    """Whether any two of `texts` overlap as drawn (for tests and checks)."""
    renderer = ax.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    return any(
        boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
    )


def envelope(t: ArrayLike, y: ArrayLike, n_bins: int = 1500) -> tuple[FloatArray, FloatArray]:
    """A long trace cut to the minimum and maximum of each of `n_bins` time bins, in time
    order: it draws the same at print size, and keeps a vector PDF/SVG of a week of
    samples at a few hundred kB."""
    tt = np.asarray(t, float)
    yy = np.asarray(y, float)
    if tt.size <= 2 * n_bins:
        return tt, yy
    edges = np.linspace(0, tt.size, n_bins + 1).astype(int)
    t_out = np.empty(2 * n_bins)
    y_out = np.empty(2 * n_bins)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        seg = yy[a:b]
        i_lo, i_hi = int(np.argmin(seg)), int(np.argmax(seg))
        first, second = sorted((i_lo, i_hi))
        t_out[2 * k], y_out[2 * k] = tt[a + first], seg[first]
        t_out[2 * k + 1], y_out[2 * k + 1] = tt[a + second], seg[second]
    return t_out, y_out


def emptiest_box(
    ax: Any, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], size: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The (x0, y0, w, h) in axes fractions, among a grid of candidate places, that covers
    the fewest of the plotted points: where an inset hides no data."""
    w, h = size
    fig = ax.figure
    fig.canvas.draw()  # the limits are final only once drawn
    to_axes = ax.transData + ax.transAxes.inverted()
    parts = [np.zeros((0, 2))]
    for x, y in zip(xs, ys, strict=True):
        p = to_axes.transform(np.column_stack((x, y)))
        if len(p) > 1:  # points every 0.5 % of the axes along the line: steep parts count
            seg = np.hypot(*np.diff(p, axis=0).T)
            s = np.concatenate(([0.0], np.cumsum(seg)))
            grid = np.linspace(0.0, s[-1], max(2, int(s[-1] / 0.005)))
            p = np.column_stack((np.interp(grid, s, p[:, 0]), np.interp(grid, s, p[:, 1])))
        parts.append(p)
    pts = np.concatenate(parts)
    best, best_n = (1.0 - w - 0.02, 1.0 - h - 0.08), float("inf")
    for y0 in np.linspace(0.04, 0.9 - h, 7):  # room above for the inset's title
        for x0 in np.linspace(0.04, 0.96 - w, 9):
            inside = np.count_nonzero(
                (pts[:, 0] >= x0 - 0.02)
                & (pts[:, 0] <= x0 + w + 0.02)
                & (pts[:, 1] >= y0 - 0.04)
                & (pts[:, 1] <= y0 + h + 0.08)
            )
            if inside < best_n:
                best, best_n = (float(x0), float(y0)), float(inside)
    return best[0], best[1], w, h


def period_envelope(
    t: np.ndarray, y: np.ndarray, period: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(time, max, min) of `y` in each `period` from t[0]: a pulse train's peaks and the
    levels it rests at, as two lines instead of a block of thousands of pulses."""
    if t.size == 0 or not period > 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    k = np.floor((t - t[0]) / period).astype(np.int64)
    starts = np.flatnonzero(np.diff(np.concatenate(([-1], k))))
    hi = np.maximum.reduceat(y, starts)
    lo = np.minimum.reduceat(y, starts)
    return np.asarray(t[starts], float), np.asarray(hi, float), np.asarray(lo, float)


def zoom_inset(
    ax: Any,
    t_s: np.ndarray,
    y: np.ndarray,
    window_s: tuple[float, float],
    box: tuple[float, float, float, float],
    color: Any,
    what: str,
) -> Any:
    """An inset at `box` (axes fractions) showing y over `window_s`, in seconds from the
    window's start (a pulse is seconds long even when the run is days long)."""
    a, b = window_s
    sel = (t_s >= a) & (t_s <= b)
    if np.count_nonzero(sel) < 5:
        return None
    ins = ax.inset_axes(box)
    ins.plot(t_s[sel] - a, y[sel], color=color, lw=0.7)
    ins.tick_params(labelsize=5, pad=1, top=False)
    ins.set_title(f"zoom: {what} (s from {a:.5g} s)", fontsize=5.5, pad=2)
    ax.axvspan(*_in_axis_units(ax, a, b), color="0.5", alpha=0.25, lw=0)
    return ins


def _in_axis_units(ax: Any, a: float, b: float) -> tuple[float, float]:
    scale = getattr(ax, "time_scale_s", 1.0)
    return a / scale, b / scale


def band(
    ax: Any, t: np.ndarray, y: np.ndarray, color: Any, n_bins: int = 1200, min_bin: float = 0.0
) -> None:
    """A dense trace as the band between its minimum and maximum per time bin, with its
    maximum drawn: thousands of pulses read as a band, not a black block. Bins are at least
    `min_bin` wide (in t's unit): a bin narrower than the pulse period would catch a pulse
    in one bin and none in the next, and draw a comb."""
    tt = np.asarray(t, float)
    yy = np.asarray(y, float)
    if tt.size <= 2 * n_bins:
        ax.plot(tt, yy, color=color, lw=0.6)
        return
    width = max(float(np.ptp(tt)) / n_bins, min_bin)
    k = np.floor((tt - tt[0]) / width).astype(np.int64)
    edges = np.flatnonzero(np.diff(np.concatenate(([-1], k))))
    hi = np.maximum.reduceat(yy, edges)
    lo = np.minimum.reduceat(yy, edges)
    tb = tt[edges]
    ax.fill_between(tb, lo, hi, color=color, alpha=0.25, lw=0, step="post")
    ax.plot(tb, hi, color=color, lw=0.6, drawstyle="steps-post")
    ax.plot(tb, lo, color=color, lw=0.3, drawstyle="steps-post")
