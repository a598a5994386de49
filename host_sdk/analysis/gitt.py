"""GITT: pulse/rest detection and Weppner-Huggins diffusion coefficients (DOMAIN.md §6).

D = (4/(πτ)) (V/S)² (ΔE_s/ΔE_τ)², valid for τ ≪ L²/D and with the IR drop removed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


class GittAssumptionWarning(UserWarning):
    """A pulse violates the Weppner-Huggins assumptions (τ not ≪ L²/D)."""


def weppner_huggins_d_m2_s(
    tau_s: float, v_over_s_m: float, delta_e_s_v: float, delta_e_tau_v: float
) -> float:
    """D = (4/(πτ)) (V/S)² (ΔE_s/ΔE_τ)²; V/S = L for a film, R/3 for spheres."""
    return float(4.0 / (np.pi * tau_s) * v_over_s_m**2 * (delta_e_s_v / delta_e_tau_v) ** 2)


@dataclass(frozen=True)
class GittPulse:
    t_start_s: float
    t_end_s: float
    tau_s: float
    current_a: float
    e0_v: float
    ir_drop_v: float
    delta_e_tau_v: float
    delta_e_s_v: float
    e_relaxed_v: float
    d_m2_s: float
    tau_d_over_l2: float
    assumptions_ok: bool


def detect_pulses(
    t_s: ArrayLike, current_a: ArrayLike, threshold_fraction: float = 0.05
) -> list[tuple[int, int]]:
    """Index ranges [a, b) of current pulses (|I| above a fraction of the maximum);
    everything between pulses is rest."""
    i = np.abs(np.asarray(current_a, float))
    on = i > threshold_fraction * float(np.max(i))
    d = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def analyze_gitt(
    t_s: ArrayLike,
    current_a: ArrayLike,
    voltage_v: ArrayLike,
    v_over_s_m: float,
    *,
    threshold_fraction: float = 0.05,
    max_tau_d_over_l2: float = 0.1,
    fit_fraction: float = 0.5,
) -> list[GittPulse]:
    """Per-pulse D from a GITT recording (arrays of equal length, sorted in time).

    E₀ is the last rest voltage before the pulse and E_relaxed the last voltage of the rest
    after it (ΔE_s = E_relaxed − E₀). The IR drop is removed by fitting V against √(t − t₀)
    over the first ``fit_fraction`` of the pulse and extrapolating to t₀: ΔE_τ is the
    change from that intercept to the (extrapolated) end of the pulse. A pulse whose
    τD/L² exceeds ``max_tau_d_over_l2`` is flagged and a GittAssumptionWarning is issued.
    """
    t = np.asarray(t_s, float)
    cur = np.asarray(current_a, float)
    v = np.asarray(voltage_v, float)
    pulses = detect_pulses(t, cur, threshold_fraction)
    out: list[GittPulse] = []
    for k, (a, b) in enumerate(pulses):
        if a == 0 or b >= t.size:
            continue  # need a rest on both sides
        nxt = pulses[k + 1][0] if k + 1 < len(pulses) else t.size
        t0, t1 = t[a], t[b]
        tau = t1 - t0
        e0 = v[a - 1]
        e_rel = v[nxt - 1]
        sq = np.sqrt(t[a:b] - t0)
        n_fit = max(3, int(fit_fraction * (b - a)))
        if b - a >= 3:
            slope, icpt = np.polyfit(sq[:n_fit], v[a : a + n_fit], 1)
            # voltage at the very end of the pulse from the last two on-samples
            s_end = np.sqrt(tau)
            if b - a >= 2 and sq[-1] != sq[-2]:
                e_end = v[b - 1] + (v[b - 1] - v[b - 2]) / (sq[-1] - sq[-2]) * (s_end - sq[-1])
            else:
                e_end = v[b - 1]
        else:
            icpt, e_end = v[a], v[b - 1]
        ir = float(icpt - e0)
        de_tau = float(e_end - icpt)
        de_s = float(e_rel - e0)
        d = weppner_huggins_d_m2_s(tau, v_over_s_m, de_s, de_tau)
        ratio = tau * d / v_over_s_m**2
        ok = bool(ratio <= max_tau_d_over_l2)
        if not ok:
            warnings.warn(
                f"GITT pulse {k} at t = {t0:.6g} s: τ = {tau:.4g} s is not ≪ L²/D = "
                f"{v_over_s_m**2 / d:.4g} s (τD/L² = {ratio:.3g} > {max_tau_d_over_l2}); "
                "the Weppner-Huggins D is biased — use shorter pulses",
                GittAssumptionWarning,
                stacklevel=2,
            )
        out.append(
            GittPulse(
                t_start_s=float(t0),
                t_end_s=float(t1),
                tau_s=float(tau),
                current_a=float(np.mean(cur[a:b])),
                e0_v=float(e0),
                ir_drop_v=ir,
                delta_e_tau_v=de_tau,
                delta_e_s_v=de_s,
                e_relaxed_v=float(e_rel),
                d_m2_s=d,
                tau_d_over_l2=float(ratio),
                assumptions_ok=ok,
            )
        )
    return out
