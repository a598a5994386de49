"""FBG strain-rate criteria of the board's closed loops, from the host (issue 14;
firmware/loops/strain_signal.py).

The board judges |dε/dt| of one grating's wavelength, less the reference grating's scaled to
it when one is named (temperature compensation), turned into microstrain with the grating's
sensitivity `pm_per_ue` (Δλ = λ₀ (1 − p_e) ε: about 1.21 pm/µε at 1550 nm; 0 lets the board
use its calibration's `fbg_pm_per_ue`, the value its ACK then carries).

- An adaptive rest can end on it (`StrainSettle` in `host_sdk.loops.Settle(strain=...)`):
  `combine` "both" (the default: the rest ends once |dV/dt| and |dε/dt| both held their
  thresholds for the hold time; neither the electrochemistry nor the mechanics still
  moves), "either" (the first that holds), or "strain_only". The rest_end event's cause names
  the criterion that ended it (`strain_settled` or `settled`; with both, the later one).
- The derating can judge it instead of dF/dt (`set_strain_rate_derating`): the same
  least-squares estimator over `window_n` FBG readings; events with cause `strain_rate`
  and the rate in fm/s (`DerateChange.rate_counts_per_s`; `ue_per_s` converts it).

    from host_sdk.loops import Settle, adaptive_rest
    from host_sdk.strain_rate import StrainSettle
    adaptive_rest(rig, Settle(dvdt_v_per_s=1e-4, max_s=600, hold_s=5, window_s=2,
                              strain=StrainSettle(dedt_ue_per_s=0.05, reference="g1",
                                                  window_s=10)))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from host_sdk.client import Rig
from protocol import defs

__all__ = [
    "COMBINE",
    "StrainSettle",
    "grating_index",
    "set_strain_rate_derating",
    "strain_fields",
    "ue_per_s",
]

COMBINE = {
    "both": defs.STRAIN_BOTH,
    "either": defs.STRAIN_EITHER,
    "strain_only": defs.STRAIN_ONLY,
}
NO_STRAIN: dict[str, Any] = {
    "strain_mode": defs.STRAIN_OFF,
    "grating": 0,
    "ref_grating": 0,
    "dedt_ue_per_s": 0.0,
    "pm_per_ue": 0.0,
    "strain_window_s": 0.0,
}


def grating_index(g: int | str | None, what: str = "grating") -> int:
    """A grating by index (0, 1, ...) or by its FBG field name ("g0", "g1", ...); None (or
    "none" for a reference): no reference grating (defs.REF_NONE)."""
    if g is None or (g == "none" and what == "reference"):
        return defs.REF_NONE
    if isinstance(g, bool):
        raise ValueError(f"{what} = {g!r}: give an index (0, 1, ...) or a field name (g0, g1, ...)")
    if isinstance(g, int):
        if not 0 <= g < defs.REF_NONE:
            raise ValueError(f"{what} = {g}: allowed 0..{defs.REF_NONE - 1}")
        return g
    m = re.fullmatch(r"g(\d+)", str(g))
    if m is None:
        raise ValueError(f"{what} = {g!r}: give an index (0, 1, ...) or a field name (g0, g1, ...)")
    return grating_index(int(m.group(1)), what)


@dataclass(frozen=True)
class StrainSettle:
    """The strain-rate criterion of an adaptive rest (see the module doc). |dε/dt| comes from
    the difference of the mean strain over two consecutive windows of `window_s` (2..256 FBG
    readings; 0: the Settle's window), so it lags by about 1.5 windows; the FBG's noise (~1 pm
    a reading) wants longer windows than the voltage."""

    dedt_ue_per_s: float
    combine: str = "both"
    grating: int | str = 0
    reference: int | str | None = None
    pm_per_ue: float = 0.0
    window_s: float = 0.0

    def fields(self) -> dict[str, Any]:
        if self.combine not in COMBINE:
            raise ValueError(f"combine = {self.combine!r}: allowed {', '.join(COMBINE)}")
        return {
            "strain_mode": COMBINE[self.combine],
            "grating": grating_index(self.grating),
            "ref_grating": grating_index(self.reference, "reference"),
            "dedt_ue_per_s": float(self.dedt_ue_per_s),
            "pm_per_ue": float(self.pm_per_ue),
            "strain_window_s": float(self.window_s),
        }

    @classmethod
    def from_table(cls, t: dict[str, Any]) -> StrainSettle:
        """From a protocol step's settle.strain table (host_sdk/protocols/strain_schema.py)."""
        return cls(
            dedt_ue_per_s=float(t["dedt_ue_per_s"]),
            combine=str(t.get("combine", "both")),
            grating=t.get("grating", 0),
            reference=t.get("reference"),
            pm_per_ue=float(t.get("pm_per_ue", 0.0)),
            window_s=float(t.get("window_s", 0.0)),
        )


def strain_fields(strain: StrainSettle | None) -> dict[str, Any]:
    """The strain fields of an adaptive-rest command (all off without a criterion)."""
    return dict(NO_STRAIN) if strain is None else strain.fields()


def set_strain_rate_derating(
    rig: Rig,
    *,
    limit_ue_per_s: float,
    resume_ue_per_s: float,
    scale: float,
    window_n: int = 16,
    grating: int | str = 0,
    reference: int | str | None = None,
    pm_per_ue: float = 0.0,
) -> Any:
    """Derate while |dε/dt| of `grating` (compensated with `reference`) exceeds
    `limit_ue_per_s`, back to full below `resume_ue_per_s` (microstrain per second)."""
    return rig.command(
        defs.CMD_SET_DERATE,
        action=1,
        window_n=int(window_n),
        limit_n_per_s=0.0,
        resume_n_per_s=0.0,
        scale=float(scale),
        signal=defs.DERATE_STRAIN,
        grating=grating_index(grating),
        ref_grating=grating_index(reference, "reference"),
        pm_per_ue=float(pm_per_ue),
        limit_ue_per_s=float(limit_ue_per_s),
        resume_ue_per_s=float(resume_ue_per_s),
    )


def ue_per_s(rate_fm_per_s: float, pm_per_ue: float) -> float:
    """A strain-rate derate event's value (fm/s of the FBG signal) in microstrain/s, with the
    pm_per_ue the board applied (its ACK's)."""
    return rate_fm_per_s / (pm_per_ue * 1000.0)
