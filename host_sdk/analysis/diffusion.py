"""Closed-form concentration solutions for a flux boundary (DOMAIN.md §4).

Coordinates: x = 0 is the interface where a positive current density i (A m⁻²) removes
species at the flux J = i / (z F) (mol m⁻² s⁻¹). All quantities SI.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc

from .currents import CurrentHistory

FARADAY_C_MOL = 96485.33212
FloatArray = NDArray[np.float64]


def ierfc(z: ArrayLike) -> FloatArray:
    """First repeated integral of erfc: e^(−z²)/√π − z·erfc(z)."""
    zz = np.asarray(z, dtype=float)
    return np.asarray(np.exp(-zz * zz) / np.sqrt(np.pi) - zz * erfc(zz), dtype=float)


def semi_infinite_profile_mol_m3(
    x_m: ArrayLike,
    t_s: ArrayLike,
    current_a_m2: float,
    d_m2_s: float,
    c0_mol_m3: float,
    z: int = 1,
) -> FloatArray:
    """C(x,t) = C₀ − (2J/D)√(Dt)·ierfc(x/(2√(Dt))) for a constant flux switched on at t=0."""
    x = np.asarray(x_m, dtype=float)
    t = np.asarray(t_s, dtype=float)
    j = current_a_m2 / (z * FARADAY_C_MOL)
    tp = np.clip(t, 0.0, None)
    sq = np.sqrt(d_m2_s * tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = np.where(sq > 0, x / (2.0 * np.where(sq > 0, sq, 1.0)), np.inf)
    dep = np.where(sq > 0, 2.0 * j / d_m2_s * sq * ierfc(arg), 0.0)
    return np.asarray(c0_mol_m3 - dep, dtype=float)


def semi_infinite_surface_mol_m3(
    t_s: ArrayLike, current_a_m2: float, d_m2_s: float, c0_mol_m3: float, z: int = 1
) -> FloatArray:
    """C(0,t) = C₀ − (2i/(zF))·√(t/(πD))."""
    t = np.clip(np.asarray(t_s, dtype=float), 0.0, None)
    return np.asarray(
        c0_mol_m3 - 2.0 * current_a_m2 / (z * FARADAY_C_MOL) * np.sqrt(t / (np.pi * d_m2_s)),
        dtype=float,
    )


def sand_time_s(
    current_a_m2: ArrayLike,
    d_m2_s: float,
    c0_mol_m3: float,
    c_crit_mol_m3: float = 0.0,
    z: int = 1,
) -> FloatArray:
    """Sand's time τ = πD(zF(C₀ − C_crit))² / (4 i²): the surface reaches C_crit.

    Only a stripping current (i > 0) depletes the surface: for i ≤ 0 (plating, or none) it
    never gets there and τ = inf. A surface that starts at or below C_crit (C_crit ≥ C₀)
    is there at once: τ = 0, whatever the current.
    """
    i = np.asarray(current_a_m2, dtype=float)
    dc = c0_mol_m3 - c_crit_mol_m3
    if dc <= 0:
        return np.zeros_like(i)
    with np.errstate(divide="ignore"):
        tau = np.pi * d_m2_s * (z * FARADAY_C_MOL * dc) ** 2 / (4.0 * i * i)
    return np.asarray(np.where(i > 0, tau, np.inf), dtype=float)


def superposed_surface_mol_m3(
    t_s: ArrayLike,
    history: CurrentHistory,
    d_m2_s: float,
    c0_mol_m3: float,
    z: int = 1,
) -> FloatArray:
    """Semi-infinite surface concentration for any piecewise-constant current history:
    C(0,t) = C₀ − 2/(zF√(πD)) Σ Δi_k √(t − t_k)."""
    t = np.asarray(t_s, dtype=float)
    tk, dik = history.steps(float(np.max(t)) if t.size else 0.0)
    el = np.clip(t[..., None] - tk, 0.0, None)
    s = np.sum(dik * np.sqrt(el), axis=-1)
    return np.asarray(
        c0_mol_m3 - 2.0 / (z * FARADAY_C_MOL * np.sqrt(np.pi * d_m2_s)) * s, dtype=float
    )


def _slab_unit_response(xi: FloatArray, tau: FloatArray) -> FloatArray:
    """Dimensionless depletion u(ξ, τ) of a slab for a unit flux switched on at τ = 0:
    u = τ + ξ²/2 − ξ + 1/3 − (2/π²) Σ cos(nπξ) e^(−n²π²τ)/n²  (u = 0 for τ ≤ 0)."""
    pos = tau > 0
    tmin = float(np.min(tau[pos])) if np.any(pos) else 1.0
    n_max = int(min(200_000, max(50, np.ceil(np.sqrt(40.0 / (np.pi**2 * tmin))) + 1)))
    u = np.zeros(np.broadcast(xi, tau).shape)
    xb, tb = np.broadcast_arrays(xi, tau)
    xs, ts = xb[pos], tb[pos]
    total = ts + xs**2 / 2.0 - xs + 1.0 / 3.0
    # sum in chunks of modes to bound memory
    series = np.zeros_like(ts)
    chunk = 2048
    for n0 in range(1, n_max + 1, chunk):
        n = np.arange(n0, min(n_max, n0 + chunk - 1) + 1, dtype=float)
        series += np.sum(
            np.cos(np.pi * xs[:, None] * n) * np.exp(-(n**2) * np.pi**2 * ts[:, None]) / n**2,
            axis=1,
        )
    u[pos] = total - 2.0 / np.pi**2 * series
    return u


def slab_profile_mol_m3(
    x_m: ArrayLike,
    t_s: ArrayLike,
    history: CurrentHistory | float,
    d_m2_s: float,
    thickness_m: float,
    c0_mol_m3: float,
    z: int = 1,
) -> FloatArray:
    """Finite layer 0 ≤ x ≤ L, flux at x = 0, no flux at x = L (series solution,
    superposed over the current steps). ``history`` may be a constant current density."""
    x = np.asarray(x_m, dtype=float)
    t = np.asarray(t_s, dtype=float)
    xb, tb = np.broadcast_arrays(x, t)
    if isinstance(history, (int, float)):
        tk, dik = np.array([0.0]), np.array([float(history)])
    else:
        tk, dik = history.steps(float(np.max(tb)) if tb.size else 0.0)
    ll = thickness_m
    dep = np.zeros(xb.shape)
    for t0, di in zip(tk, dik, strict=True):
        tau = d_m2_s * (tb - t0) / ll**2
        dep += di / (z * FARADAY_C_MOL) * ll / d_m2_s * _slab_unit_response(xb / ll, tau)
    return np.asarray(c0_mol_m3 - dep, dtype=float)


def slab_surface_mol_m3(
    t_s: ArrayLike,
    history: CurrentHistory | float,
    d_m2_s: float,
    thickness_m: float,
    c0_mol_m3: float,
    z: int = 1,
) -> FloatArray:
    """C(0,t) = C₀ − (JL/D)[Dt/L² + 1/3 − (2/π²) Σ e^(−n²π²Dt/L²)/n²] (superposed)."""
    t = np.asarray(t_s, dtype=float)
    return slab_profile_mol_m3(np.zeros_like(t), t, history, d_m2_s, thickness_m, c0_mol_m3, z)


def slowest_relaxation_time_s(d_m2_s: float, thickness_m: float) -> float:
    """τ₁ = L²/(π²D): time constant of the slowest mode of the no-flux layer."""
    return thickness_m**2 / (np.pi**2 * d_m2_s)


def final_uniform_level_mol_m3(
    c0_mol_m3: float, charge_c_m2: float, thickness_m: float, z: int = 1
) -> float:
    """Level after full relaxation: C₀ − Q/(zFL), Q = ∫ i dt = i·t_on."""
    return c0_mol_m3 - charge_c_m2 / (z * FARADAY_C_MOL * thickness_m)


def na_concentration_mol_m3(mass_fraction_na: float, density_kg_m3: float) -> float:
    """Na concentration of a Na-K alloy: w·ρ/M_Na (eutectic 22 wt %, 866 kg m⁻³ → 8287)."""
    return mass_fraction_na * density_kg_m3 / 22.98976928e-3
