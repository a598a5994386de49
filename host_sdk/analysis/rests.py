"""Adaptive rests in a recording: the rests the board chose (rest_end events) against the
planner's recommended fixed rest (seed 004's question, :func:`.planner.plan_rest`).

    rests = rest_decisions(rec)                      # one row per adaptive rest
    plot_rest_decisions(rests, "rests.png", planned_rest_s=plan.recommended_rest_s)

`stressrig analyze` does this per step (host_sdk.recording.analyses.rests), with the
planner's rest worked out from the film and the figure in the house style
(host_sdk.analysis.figures.rests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from protocol import defs

__all__ = ["RestDecisions", "plot_rest_decisions", "rest_decisions"]


@dataclass(frozen=True)
class RestDecisions:
    """Every adaptive rest of a recording, in event order."""

    t_s: NDArray[np.float64]  # device time of the board's decision
    pulse: NDArray[np.int64]  # pulse number within its waveform (0 for a single rest)
    length_s: NDArray[np.float64]
    settled: NDArray[np.bool_]  # False: the maximum came first

    def __len__(self) -> int:
        return len(self.t_s)

    def summary(self) -> dict[str, Any]:
        n = len(self)
        if not n:
            return {"count": 0}
        x = self.length_s
        return {
            "count": n,
            "settled": int(self.settled.sum()),
            "at_max": int(n - self.settled.sum()),
            "length_s": {
                "min": float(x.min()),
                "median": float(np.median(x)),
                "max": float(x.max()),
                "total": float(x.sum()),
            },
        }


def rest_decisions(rec: Any) -> RestDecisions:
    """The rest_end events of a Recording (host_sdk.recording.load_recording)."""
    ev = rec.events
    code = np.asarray(ev["code"]).astype(int)
    sel = code == defs.EV_REST_END
    return RestDecisions(
        t_s=np.asarray(ev["t_dev_s"][sel], float),
        pulse=np.asarray(ev["index"][sel], np.int64),
        length_s=np.asarray(ev["value"][sel], float) / 1000.0,
        settled=np.isin(
            np.asarray(ev["cause"][sel]).astype(int),
            (defs.CAUSE_SETTLED, defs.CAUSE_STRAIN_SETTLED),
        ),
    )


def plot_rest_decisions(
    rests: RestDecisions,
    path: str | Path,
    *,
    planned_rest_s: float | None = None,
    caption: str = "",
    footnote: str = "",
) -> Path:
    """Rest length chosen by the board per rest, in event order (settled: dots; maximum
    reached: crosses), with the planner's recommended fixed rest as a line when given; in
    the house style (host_sdk.analysis.figures.rests), written to `path` (its suffix
    names the format). `stressrig analyze` draws the same per step, with the planner's
    rest worked out from the film."""
    from host_sdk.analysis.figures.rests import RestSeries, plot_rest_lengths

    p = Path(path)
    fig = plot_rest_lengths(
        [
            RestSeries(
                "",
                np.arange(1, len(rests) + 1.0),
                rests.length_s,
                rests.settled,
            )
        ],
        p.parent,
        planned=[]
        if planned_rest_s is None
        else [(f"planner's rest {planned_rest_s:.2g} s", planned_rest_s)],
        xlabel="rest number",
        name=p.stem,
        caption=caption,
        footnote=footnote,
        formats=(p.suffix.lstrip(".") or "png",),
    )
    return Path(fig.png)
