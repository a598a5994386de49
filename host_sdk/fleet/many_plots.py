"""Comparison figures over many recordings (analyze-many): every cell on one axis."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_capacity_vs_rest", "plot_overview"]


def _cell_name(row: dict[str, Any]) -> str:
    label = str(row.get("cell_label") or "")
    uid = str(row.get("unique_id") or "")
    stem = Path(str(row.get("file", ""))).stem
    return f"{stem} ({uid[-6:]})" if uid else (label or stem)


def plot_capacity_vs_rest(trains: list[dict[str, Any]], path: Path) -> Path | None:
    """Critical stripping capacity vs rest between pulses, one line per recording."""
    by_file: dict[str, list[tuple[float, float]]] = {}
    names: dict[str, str] = {}
    for t in trains:
        rest, cap = t.get("rest_s"), t.get("capacity_mah_cm2")
        if not isinstance(rest, int | float) or not isinstance(cap, int | float):
            continue
        by_file.setdefault(t["file"], []).append((float(rest), float(cap) * 1e3))
        names[t["file"]] = _cell_name(t)
    if not by_file:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    rests = [r for pts in by_file.values() for r, _ in pts]
    for k, (f, pts) in enumerate(sorted(by_file.items())):
        pts.sort()
        label = names[f] if len(by_file) <= 12 else None
        ax.plot(*zip(*pts, strict=True), "o-", ms=3, lw=1, color=f"C{k % 10}", label=label)
    if rests and min(rests) > 0 and max(rests) / min(rests) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("rest between pulses (s)")
    ax.set_ylabel("critical stripping capacity (µAh cm⁻²)")
    ax.set_title(f"{len(by_file)} recordings")
    if len(by_file) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_overview(rows: list[dict[str, Any]], path: Path) -> Path:
    """Per recording: mean stack pressure, charge passed, lost samples (bars)."""
    names = [_cell_name(r) for r in rows]
    panels = [
        ("pressure_mean_mpa", "mean stack pressure (MPa)"),
        ("charge_passed_c", "charge passed (C)"),
        ("lost_samples", "lost samples"),
    ]
    fig, axs = plt.subplots(len(panels), 1, figsize=(max(6, 0.25 * len(rows) + 2), 7))
    for ax, (key, label) in zip(axs, panels, strict=True):
        vals = [float(r.get(key, math.nan)) for r in rows]
        colors = ["C3" if not r.get("completed") else "C0" for r in rows]
        ax.bar(range(len(vals)), [0 if math.isnan(v) else v for v in vals], color=colors)
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(
            names if len(names) <= 40 else [""] * len(names), rotation=90, fontsize=6
        )
    axs[0].set_title("per recording (red: did not complete)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
