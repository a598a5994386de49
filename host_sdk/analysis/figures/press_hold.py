"""Pressure held vs open loop (issue 14): the stack pressure the board held, its setpoint,
and the pressure the cell would have reached with the press fixed (held pressure minus the
load path's stiffness times the actuator's travel: what the press absorbed), over time;
below, the actuator's travel. Without a known stiffness the open-loop curve is left out
and the caption says why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .style import FORMATS, SINGLE_COLUMN_IN, Figure, envelope, save, style, time_axis


@dataclass
class HeldTrace:
    label: str
    t_s: np.ndarray  # load readings inside the hold (device time)
    p_mpa: np.ndarray  # the pressure held
    setpoint_mpa: float
    travel_um: np.ndarray  # actuator travel since the hold began, at t_s
    open_loop_mpa: np.ndarray | None  # None: no stiffness known


def plot_pressure_held(
    traces: Sequence[HeldTrace],
    out_dir: str | Path,
    *,
    caption: str = "",
    footnote: str = "",
    steps: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
) -> Figure:
    t_all = np.concatenate([tr.t_s for tr in traces]) if traces else np.zeros(1)
    _, unit = time_axis(t_all - t_all.min())
    scale = {"time (s)": 1.0, "time (h)": 3600.0, "time (d)": 86400.0}[unit]
    t0 = float(t_all.min())
    with style():
        fig, (ax, ax2) = plt.subplots(
            2,
            1,
            figsize=(SINGLE_COLUMN_IN, 3.6),
            sharex=True,
            gridspec_kw={"height_ratios": [2.2, 1.0]},
        )
        colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.7, max(1, len(traces))))
        for k, (tr, col) in enumerate(zip(traces, colors, strict=True)):
            x = (tr.t_s - t0) / scale
            first = k == 0
            xe, pe = envelope(x, tr.p_mpa, 1200)
            ax.plot(xe, pe, color=col, lw=0.9, label="held" if first else None)
            ax.plot(
                [x[0], x[-1]],
                [tr.setpoint_mpa] * 2,
                color="k",
                lw=0.6,
                ls="--",
                label="setpoint" if first else None,
            )
            if tr.open_loop_mpa is not None:
                xo, po = envelope(x, tr.open_loop_mpa, 1200)
                ax.plot(
                    xo,
                    po,
                    color="C3",
                    lw=0.9,
                    label="open loop (held − k·travel/A)" if first else None,
                )
            ax2.plot(x, tr.travel_um, color=col, lw=0.9, label=tr.label)
        ax.set_ylabel("stack pressure (MPa)")
        ax.legend(loc="best", fontsize=6)
        ax2.set_ylabel("actuator travel (µm)")
        ax2.set_xlabel(unit.replace("time", "time since the first hold"))
        if len(traces) > 1:
            ax2.legend(loc="best", fontsize=5)
        ax2.axhline(0.0, color="0.6", lw=0.4)
        return save(
            fig,
            out_dir,
            "pressure_held",
            caption,
            footnote=footnote,
            steps=steps,
            formats=formats,
        )
