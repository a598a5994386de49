"""Current derating by pressure rate, from the host (issue 14; firmware/loops/derate.py).

While the stack force changes faster than a limit, the board scales the waveform's current
by `scale`; once the rate is below `resume` it is back to full. The board estimates the
rate as the least-squares slope of the last `window_n` load-cell readings, so:

    delay ~ (window_n - 1) / 2 readings (+ one reading of HX711 conversion)
    noise sigma_rate = sigma_force * rate_hz * sqrt(12 / (window_n (window_n^2 - 1)))

(`estimator()` gives both). Each change is a `derate` event (index 1 derated, 0 back to
full; cause pressure_rate or sensor_fault; value the rate in load counts/s); the elec
stream's state has ELEC_DERATED while the scaled current flows, and its current readback is
the current applied.

    from host_sdk.derate import set_pressure_rate_derating
    set_pressure_rate_derating(rig, limit_mpa_per_s=0.5, resume_mpa_per_s=0.2, scale=0.5,
                               window_n=16, stack_area_m2=1.131e-4)

The FBG strain rate can be the signal instead (`host_sdk.strain_rate.set_strain_rate_derating`,
limits in microstrain/s; cause `strain_rate`, value in fm/s of the FBG signal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from host_sdk.calibration import LoadCellCalibration
from host_sdk.client import Rig
from host_sdk.strain_rate import set_strain_rate_derating
from protocol import defs

__all__ = [
    "DerateChange",
    "Estimator",
    "clear_derating",
    "derate_changes",
    "estimator",
    "set_derating",
    "set_pressure_rate_derating",
]

MIN_WINDOW = 3
MAX_WINDOW = 64


@dataclass(frozen=True)
class Estimator:
    """What the board's rate estimator does at a load rate: its lag and its noise."""

    window_n: int
    rate_hz: float
    delay_s: float  # a step in the rate reaches half its new value this much later
    full_s: float  # ... and the whole of it
    sigma_rate: float  # the estimate's noise, per unit of the readings' noise, per second


def estimator(window_n: int, rate_hz: float, sigma: float = 1.0) -> Estimator:
    """The least-squares slope over `window_n` readings at `rate_hz`, readings with white
    noise `sigma` (any unit: the result is that unit per second). The delay counts from the
    force starting to move to the estimate reaching half the ramp's rate: (N - 1) / 2
    readings for the slope's centre, plus up to one reading until the first moved value is
    converted."""
    if not MIN_WINDOW <= window_n <= MAX_WINDOW:
        raise ValueError(f"window_n = {window_n}: allowed {MIN_WINDOW}..{MAX_WINDOW} readings")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz = {rate_hz!r}: must be > 0")
    n = window_n
    per = 1.0 / rate_hz
    return Estimator(
        n,
        rate_hz,
        delay_s=((n - 1) / 2 + 1) * per,
        full_s=n * per,
        sigma_rate=sigma * rate_hz * math.sqrt(12.0 / (n * (n * n - 1))),
    )


def set_derating(
    rig: Rig,
    *,
    limit_n_per_s: float,
    resume_n_per_s: float,
    scale: float,
    window_n: int = 16,
) -> Any:
    """Force-rate limits in N/s of the board's own calibration (see the module doc)."""
    return rig.command(
        defs.CMD_SET_DERATE,
        action=1,
        window_n=int(window_n),
        limit_n_per_s=float(limit_n_per_s),
        resume_n_per_s=float(resume_n_per_s),
        scale=float(scale),
        **_LOAD_SIGNAL,
    )


# the strain fields of SET_DERATE when the load cell is the signal
_LOAD_SIGNAL: dict[str, Any] = {
    "signal": defs.DERATE_LOAD,
    "grating": 0,
    "ref_grating": 0,
    "pm_per_ue": 0.0,
    "limit_ue_per_s": 0.0,
    "resume_ue_per_s": 0.0,
}


def clear_derating(rig: Rig) -> Any:
    return rig.command(
        defs.CMD_SET_DERATE,
        action=0,
        window_n=0,
        limit_n_per_s=0.0,
        resume_n_per_s=0.0,
        scale=1.0,
        **_LOAD_SIGNAL,
    )


def _board_n_per_true_n(rig: Rig, cal: LoadCellCalibration | None) -> float:
    """Board newtons per true newton (a rate has no offset: only the spans matter)."""
    if cal is None:
        return 1.0
    info = rig.streams.get("load")
    field = next((f for f in info.fields if f.name == "counts"), None) if info else None
    if field is None or field.unit != "N":
        raise ValueError("the board announces no load-cell calibration (load counts in N)")
    return abs(field.scale / cal.span_n_per_count)


def set_pressure_rate_derating(
    rig: Rig,
    *,
    limit_mpa_per_s: float,
    resume_mpa_per_s: float,
    scale: float,
    stack_area_m2: float,
    window_n: int = 16,
    calibration: LoadCellCalibration | None = None,
) -> Any:
    """Stack-pressure-rate limits (MPa/s) on the pressed area `stack_area_m2`."""
    if not stack_area_m2 > 0:
        raise ValueError(f"stack_area_m2 = {stack_area_m2!r}: must be > 0")
    k = 1e6 * stack_area_m2 * _board_n_per_true_n(rig, calibration)
    return set_derating(
        rig,
        limit_n_per_s=limit_mpa_per_s * k,
        resume_n_per_s=resume_mpa_per_s * k,
        scale=scale,
        window_n=window_n,
    )


@dataclass(frozen=True)
class DerateChange:
    """One change of the derating as the board reported it."""

    t_s: float  # device time of the decision
    derated: bool
    cause: str  # pressure_rate, strain_rate or sensor_fault
    rate_counts_per_s: float  # the board's estimate (load counts/s; fm/s on the FBG)


def derate_changes(rig: Rig, after: int = 0) -> list[DerateChange]:
    """The derate events received since event mark `after` (see Rig.event_mark)."""
    return [
        DerateChange(float(e.t_s), bool(e.index), e.cause_name, float(e.value))
        for e in rig.events[after:]
        if e.code == defs.EV_DERATE
    ]


def apply_step_derating(
    rig: Rig, table: dict[str, Any] | None, stack_area_m2: float | None, armed: bool
) -> bool:
    """A protocol step's `derate` table on the board (host_sdk/protocols/derate_schema.py),
    or the previous step's cleared when this one has none; True while one is armed."""
    if table is None:
        if armed:
            clear_derating(rig)
        return False
    if table.get("signal") == "strain":
        set_strain_rate_derating(
            rig,
            limit_ue_per_s=float(table["limit_ue_per_s"]),
            resume_ue_per_s=float(table["resume_ue_per_s"]),
            scale=float(table["scale"]),
            window_n=int(table["window_n"]),
            grating=table.get("grating", 0),
            reference=table.get("reference"),
            pm_per_ue=float(table.get("pm_per_ue", 0.0)),
        )
        return True
    set_pressure_rate_derating(
        rig,
        limit_mpa_per_s=float(table["limit_mpa_per_s"]),
        resume_mpa_per_s=float(table["resume_mpa_per_s"]),
        scale=float(table["scale"]),
        window_n=int(table["window_n"]),
        stack_area_m2=float(stack_area_m2 or 0.0),
    )
    return True
