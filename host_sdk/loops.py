"""Closed loops on the board, from the host (issue 14): adaptive rests.

The board decides; the host only asks. `adaptive_rest` is a rest that ends when the cell
has relaxed (|dV/dt| at or below a threshold for a hold time, between a minimum and a
maximum length); `adaptive_pulses` is a pulse train whose rests are adaptive. Each rest
ends with a `rest_end` event timed at the board's decision (cause `settled` or
`duration`, index the pulse number, value the rest's length in ms); `rest_ends` reads them
back. A rest can also end on the FBG strain rate (`Settle(strain=StrainSettle(...))`,
host_sdk/strain_rate.py; cause `strain_settled` when that criterion ended it).

    from host_sdk.loops import Settle, adaptive_pulses
    adaptive_pulses(rig, amplitude_a=4e-4, t_on_s=1.0, count=500,
                    settle=Settle(dvdt_v_per_s=5e-4, hold_s=0.5, min_s=0.2, max_s=20.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from host_sdk.client import Cutoffs, Rig
from host_sdk.rig_types import _check_count
from host_sdk.strain_rate import StrainSettle, strain_fields
from protocol import defs

__all__ = ["RestEnd", "Settle", "adaptive_pulses", "adaptive_rest", "rest_ends"]


@dataclass(frozen=True)
class Settle:
    """When an adaptive rest may end. dV/dt is estimated on the board from the difference
    of the mean voltage over two consecutive windows of `window_s` (2..256 readings of the
    elec stream), so the decision lags the true relaxation by about 1.5 windows plus
    `hold_s`; a longer window averages more ADC noise away."""

    dvdt_v_per_s: float
    hold_s: float = 0.5
    min_s: float = 0.0
    max_s: float = 60.0
    window_s: float = 0.5
    strain: StrainSettle | None = None  # an FBG strain-rate criterion too

    def fields(self) -> dict[str, Any]:
        return {
            "min_rest_s": float(self.min_s),
            "max_rest_s": float(self.max_s),
            "hold_s": float(self.hold_s),
            "dvdt_v_per_s": float(self.dvdt_v_per_s),
            "window_s": float(self.window_s),
            **strain_fields(self.strain),
        }

    @classmethod
    def from_table(cls, t: dict[str, Any]) -> Settle:
        """From a protocol step's checked settle table (its `strain` a table too)."""
        st = t.get("strain")
        kw = {k: float(v) for k, v in t.items() if k != "strain"}
        return cls(**kw, strain=StrainSettle.from_table(st) if st else None)


@dataclass(frozen=True)
class RestEnd:
    """One adaptive rest as the board reported it."""

    t_s: float  # device time of the decision
    index: int  # pulse number (0 for a single rest)
    length_s: float
    settled: bool  # False: max_s reached first
    cause: str = "settled"  # settled (dV/dt), strain_settled (dε/dt) or duration


def adaptive_rest(rig: Rig, settle: Settle) -> Any:
    """Current off until the cell relaxed (or `settle.max_s`); ends with waveform_end
    (cause settled, or completed at the maximum)."""
    return rig.command(defs.CMD_ADAPTIVE_REST, **settle.fields())


def adaptive_pulses(
    rig: Rig,
    *,
    t_on_s: float,
    count: int,
    settle: Settle,
    amplitude_a: float | None = None,
    amplitude_a_m2: float | None = None,
    cutoffs: Cutoffs | None = None,
) -> Any:
    """`count` pulses of `t_on_s`, each followed by an adaptive rest."""
    _check_count(count, "adaptive_pulses")
    unit, value = rig._current(amplitude_a, amplitude_a_m2, "amplitude")
    return rig.command(
        defs.CMD_ADAPTIVE_PULSES,
        unit=unit,
        amplitude=value,
        t_on_s=float(t_on_s),
        count=int(count),
        **settle.fields(),
        **rig._cutoff_fields(cutoffs),
    )


def rest_ends(rig: Rig, after: int = 0) -> list[RestEnd]:
    """The rest_end events received since event mark `after` (see Rig.event_mark)."""
    out = []
    for ev in rig.events[after:]:
        if ev.code == defs.EV_REST_END:
            out.append(
                RestEnd(
                    float(ev.t_s),
                    int(ev.index),
                    float(ev.value) / 1000.0,
                    ev.cause in (defs.CAUSE_SETTLED, defs.CAUSE_STRAIN_SETTLED),
                    defs.CAUSE_NAMES.get(ev.cause, str(ev.cause)),
                )
            )
    return out
