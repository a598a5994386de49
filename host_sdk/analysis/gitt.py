"""GITT: pulse/rest detection and Weppner-Huggins diffusion coefficients (DOMAIN.md §6).

D = (4/(πτ)) (V/S)² (ΔE_s/ΔE_τ)², V/S = L for a film and R/3 for a sphere. Valid when the
pulse sees semi-infinite diffusion (τ ≪ L²/D), with the IR drop removed, and when each rest
is long enough for the cell to relax. Every pulse says which of these held and why not.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from .gitt_geometry import first_mode_rate, unrelaxed_after_rest, weppner_huggins_bias

FloatArray = NDArray[np.float64]
Geometry = Literal["film", "sphere"]


class GittAssumptionWarning(UserWarning):
    """A pulse violates the Weppner-Huggins assumptions (pulse too long for its geometry,
    or the rest too short for the cell to relax)."""


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
    tau_d_over_l2: float  # τD/(V/S)²
    assumptions_ok: bool
    geometry: str = "film"
    bias: float = 0.0  # D_WH/D − 1 the geometry causes at this τD/L² (exact series)
    d_corrected_m2_s: float = float("nan")  # D with that bias divided out
    unrelaxed_fraction: float = 0.0  # what the rest after the pulse had left to relax / ΔE_s
    problems: tuple[str, ...] = field(default_factory=tuple)


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


def _pulse_times(
    t: FloatArray,
    cur: FloatArray,
    v: FloatArray,
    edges_s: Sequence[tuple[float, float]] | None,
    thr: float,
    fit_fraction: float,
) -> list[tuple[float, float]]:
    """(t_on, t_off) of each pulse: the board's edge events when given. Without them the
    switch-on lies somewhere between the last rest sample and the first pulse sample; the
    √t fit is very sensitive to it (a start one sample period late biases D by tens of
    per cent), so it is fitted: the t₀ in that interval whose √(t − t₀) line fits the
    early pulse best; the switch-off likewise, from the early rest after it, which follows
    √(t − t₀) − √(t − t_off) while diffusion is semi-infinite."""
    if edges_s is not None:
        return [(float(a), float(b)) for a, b in edges_s]
    out = []
    for a, b in detect_pulses(t, cur, thr):
        if a == 0 or b >= t.size:
            continue
        n_fit = max(3, int(round(fit_fraction * (b - a))))
        lo, hi = float(t[a - 1]), float(t[a])
        t_on = _fit_switch(t[a : a + n_fit], v[a : a + n_fit], lo, hi, None)
        lo, hi = float(t[b - 1]), float(t[b])
        t_off = _fit_switch(t[b : b + n_fit], v[b : b + n_fit], lo, hi, t_on)
        out.append((t_on, t_off))
    return out


def _fit_switch(t: FloatArray, v: FloatArray, lo: float, hi: float, t_on: float | None) -> float:
    """The switch time in [lo, hi) that makes V linear in √(t − t_s) (a switch-on) or in
    √(t − t_on) − √(t − t_s) (a switch-off) over the samples given."""
    if t.size < 3:
        return 0.5 * (lo + hi)

    def sse(ts: float) -> float:
        s = np.sqrt(np.clip(t - ts, 0.0, None))
        if t_on is not None:
            s = np.sqrt(np.clip(t - t_on, 0.0, None)) - s
        a = np.column_stack((s, np.ones_like(s)))
        r = v - a @ np.linalg.lstsq(a, v, rcond=None)[0]
        return float(r @ r)

    res = minimize_scalar(
        sse, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7 * (hi - lo)}
    )
    return float(res.x)


def _rest_level(t: FloatArray, v: FloatArray, t_from: float, t_to: float, frac: float) -> float:
    """Mean voltage over the last `frac` of the rest [t_from, t_to]: one sample's noise
    (tens of µV) is a large part of a ΔE_s of a few mV, and D goes with its square."""
    sel = (t > t_from) & (t < t_to)
    idx = np.flatnonzero(sel)
    if idx.size == 0:
        idx = np.flatnonzero(t <= t_from)[-1:]
        return float(v[idx[0]]) if idx.size else float("nan")
    t_win = t_to - frac * (t_to - t_from)
    tail = idx[t[idx] >= t_win]
    return float(np.mean(v[tail if tail.size else idx[-1:]]))


def _sqrt_fit(s: FloatArray, v: FloatArray, at: float) -> float:
    """Value at √t = `at` of a straight line fitted to V against √t (one point: itself)."""
    if s.size < 2 or np.ptp(s) == 0:
        return float(v[-1]) if v.size else float("nan")
    slope, icpt = np.polyfit(s, v, 1)
    return float(icpt + slope * at)


def _rest_drift(
    t: FloatArray, v: FloatArray, t_from: float, t_to: float, frac: float
) -> tuple[float, float]:
    """(slope in V/s, the time it applies at) of the voltage over the last `frac` of a
    rest; the slope is 0 when it is not distinguishable from the noise (under three
    standard errors)."""
    sel = (t > t_to - frac * (t_to - t_from)) & (t < t_to)
    tt, vv = t[sel], v[sel]
    if tt.size < 4 or np.ptp(tt) == 0:
        return 0.0, t_to
    t_mid = float(np.mean(tt))
    (slope, _), cov = np.polyfit(tt - t_mid, vv, 1, cov=True)
    err = float(np.sqrt(max(cov[0, 0], 0.0)))
    return (float(slope) if abs(slope) > 3.0 * err else 0.0), t_mid


def analyze_gitt(
    t_s: ArrayLike,
    current_a: ArrayLike,
    voltage_v: ArrayLike,
    v_over_s_m: float,
    *,
    geometry: Geometry = "film",
    edges_s: Sequence[tuple[float, float]] | None = None,
    threshold_fraction: float = 0.05,
    max_tau_d_over_l2: float = 0.1,
    max_bias: float = 0.05,
    max_unrelaxed: float = 0.05,
    fit_fraction: float = 0.5,
    rest_average_fraction: float = 0.1,
) -> list[GittPulse]:
    """Per-pulse D from a GITT recording (arrays of equal length, sorted in time).

    Pulses start and end at ``edges_s`` ((t_on, t_off) pairs, e.g. the board's edge events)
    or, without them, halfway between the samples around each switch of the current.
    E₀ and E_relaxed are the mean voltage over the last ``rest_average_fraction`` of the
    rest before and after the pulse (ΔE_s = E_relaxed − E₀). The IR drop is removed by
    fitting V against √(t − t₀) over the first ``fit_fraction`` of the pulse and taking the
    intercept; the voltage at the end of the pulse comes from the same fit over the last
    ``fit_fraction``; ΔE_τ is the change between them.

    A pulse is flagged (``assumptions_ok`` False, a reason in ``problems`` and a
    GittAssumptionWarning) when τD/(V/S)² exceeds ``max_tau_d_over_l2``, when its geometry
    (a sphere's curvature, a film's back wall) biases D by more than ``max_bias`` (computed
    from the exact constant-flux series; ``d_corrected_m2_s`` has it divided out), or when
    the rest after it left more than ``max_unrelaxed`` of ΔE_s to relax: a short rest
    makes ΔE_s, and with it D, too large (≈ 2× the fraction left). What is left is the
    larger of the exact series' prediction for this pulse, rest and D, and the voltage's
    drift at the end of the rest (when above the noise) times the slowest relaxation time.
    """
    t = np.asarray(t_s, float)
    cur = np.asarray(current_a, float)
    v = np.asarray(voltage_v, float)
    times = _pulse_times(t, cur, v, edges_s, threshold_fraction, fit_fraction)
    out: list[GittPulse] = []
    for k, (t0, t1) in enumerate(times):
        t_prev = times[k - 1][1] if k else float(t[0]) - 1e-9
        t_next = times[k + 1][0] if k + 1 < len(times) else float(t[-1]) + 1e-9
        on = np.flatnonzero((t > t0) & (t < t1))
        if t0 <= t[0] or t1 >= t[-1] or on.size < 2:
            continue  # need a rest on both sides and samples during the pulse
        tau = t1 - t0
        e0 = _rest_level(t, v, t_prev, t0, rest_average_fraction)
        e_rel = _rest_level(t, v, t1, t_next, rest_average_fraction)
        sq = np.sqrt(t[on] - t0)
        n_fit = max(2, int(round(fit_fraction * on.size)))
        icpt = _sqrt_fit(sq[:n_fit], v[on][:n_fit], 0.0)
        e_end = _sqrt_fit(sq[-n_fit:], v[on][-n_fit:], float(np.sqrt(tau)))
        de_tau = e_end - icpt
        de_s = e_rel - e0
        d = weppner_huggins_d_m2_s(tau, v_over_s_m, de_s, de_tau)
        ratio = tau * d / v_over_s_m**2
        problems = []
        if ratio > max_tau_d_over_l2:
            problems.append(
                f"τ = {tau:.4g} s is not ≪ L²/D = {v_over_s_m**2 / d:.4g} s "
                f"(τD/L² = {ratio:.3g} > {max_tau_d_over_l2}): use shorter pulses"
            )
        bias, d_corr = _geometry_bias(d, tau, v_over_s_m, geometry)
        if abs(bias) > max_bias:
            problems.append(
                f"the {geometry} geometry biases the Weppner-Huggins D by {bias:+.1%} at "
                f"τD/(V/S)² = {ratio:.3g} (corrected: {d_corr:.4g} m²/s): use shorter pulses"
            )
        unrelaxed = _unrelaxed_fraction(t, v, (t0, t1, t_next), de_s, d_corr, v_over_s_m, geometry)
        if unrelaxed > max_unrelaxed:
            problems.append(
                f"the rest after the pulse ended {unrelaxed:.1%} of ΔE_s short of relaxed "
                f"(> {max_unrelaxed:.0%}): ΔE_s and D come out too large; rest longer"
            )
        for why in problems:
            warnings.warn(
                f"GITT pulse {k} at t = {t0:.6g} s: {why}", GittAssumptionWarning, stacklevel=2
            )
        out.append(
            GittPulse(
                t_start_s=float(t0),
                t_end_s=float(t1),
                tau_s=float(tau),
                current_a=float(np.mean(cur[on])),
                e0_v=float(e0),
                ir_drop_v=float(icpt - e0),
                delta_e_tau_v=float(de_tau),
                delta_e_s_v=float(de_s),
                e_relaxed_v=float(e_rel),
                d_m2_s=d,
                tau_d_over_l2=float(ratio),
                assumptions_ok=not problems,
                geometry=geometry,
                bias=float(bias),
                d_corrected_m2_s=float(d_corr),
                unrelaxed_fraction=float(unrelaxed),
                problems=tuple(problems),
            )
        )
    return out


def _geometry_bias(d_wh: float, tau: float, v_over_s: float, geometry: str) -> tuple[float, float]:
    """(bias of D_WH at the true D, the true D): solves D_WH = D·(1 + bias(τD/ℓ²)) for D by
    fixed-point iteration (the bias changes slowly with D)."""
    length = 3.0 * v_over_s if geometry == "sphere" else v_over_s
    if not (np.isfinite(d_wh) and d_wh > 0):
        return 0.0, d_wh
    d = d_wh
    for _ in range(50):
        b = weppner_huggins_bias(tau * d / length**2, geometry)
        d_new = d_wh / (1.0 + b)
        if abs(d_new - d) <= 1e-10 * d:
            break
        d = d_new
    return float(weppner_huggins_bias(tau * d / length**2, geometry)), float(d)


def _unrelaxed_fraction(
    t: FloatArray,
    v: FloatArray,
    times: tuple[float, float, float],
    de_s: float,
    d: float,
    v_over_s: float,
    geometry: str,
) -> float:
    """What the rest after a pulse had left to relax, over |ΔE_s|: the larger of the exact
    series' prediction and the measured drift at the rest's end times the slowest
    relaxation time (an exponential decay has rate × time constant left)."""
    if not (np.isfinite(d) and d > 0) or de_s == 0:
        return 0.0
    t_on, t_off, t_next = times
    length = 3.0 * v_over_s if geometry == "sphere" else v_over_s
    scale = d / length**2
    model = unrelaxed_after_rest((t_off - t_on) * scale, (t_next - t_off) * scale, geometry)
    tau1 = 1.0 / first_mode_rate(d, length, geometry)
    drift, t_drift = _rest_drift(t, v, t_off, t_next, 0.2)
    left = abs(drift) * tau1 * np.exp(-(t_next - t_drift) / tau1)  # decayed to the rest's end
    return float(max(model, left / abs(de_s)))
