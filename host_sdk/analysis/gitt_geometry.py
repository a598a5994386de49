"""How the electrode's geometry bends the Weppner-Huggins GITT formula (DOMAIN.md §6).

Weppner-Huggins assumes the surface concentration under a constant-flux pulse falls as
√t, which is exact only while diffusion is semi-infinite. With the exact constant-flux
surface response g(τ') (τ' = Dτ/ℓ², ℓ the film thickness L or the sphere radius R; the
surface change is J·ℓ·g/D and the uniform change after relaxation J·τ·S/V), the formula
returns D_WH = D · 4τ'/(π g²) (both geometries, with V/S = L or R/3). Its relative error
4τ'/(π g²) − 1 is the bias: tiny for a film until the back wall is felt (τ' ≳ 0.1), but
algebraic in √τ' for a sphere, whose curvature is felt at once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import erfc

FloatArray = NDArray[np.float64]


def sphere_roots(n: int) -> FloatArray:
    """The first n positive roots of tan α = α (the sphere's no-flux modes)."""
    k = np.arange(1, n + 1, dtype=float)
    q = (k + 0.5) * np.pi
    a = q - 1.0 / q - 2.0 / (3.0 * q**3) - 13.0 / (15.0 * q**5)
    for _ in range(4):  # Newton on f = sin α − α cos α, f' = α sin α
        a -= (np.sin(a) - a * np.cos(a)) / (a * np.sin(a))
    return np.asarray(a, dtype=float)


def _ierfc(z: FloatArray) -> FloatArray:
    return np.asarray(np.exp(-z * z) / np.sqrt(np.pi) - z * erfc(z), dtype=float)


def surface_response(tau_prime: float, geometry: str) -> float:
    """Dimensionless surface change g(τ') under a unit constant flux from a uniform start:
    film (flux at x = 0, wall at L) g = τ' + 1/3 − (2/π²)Σe^(−n²π²τ')/n², or by images
    2√τ'(1/√π + 2Σ ierfc(n/√τ')) at short times; sphere g = 3τ' + 1/5 − 2Σe^(−α²τ')/α²."""
    tp = float(tau_prime)
    if tp <= 0:
        return 0.0
    if geometry == "film":
        if tp < 0.5:
            n = np.arange(1, 12, dtype=float)
            images = np.sum(_ierfc(n / np.sqrt(tp)))
            return float(2.0 * np.sqrt(tp) * (1.0 / np.sqrt(np.pi) + 2.0 * images))
        n = np.arange(1, 60, dtype=float)
        return float(tp + 1 / 3 - 2 / np.pi**2 * np.sum(np.exp(-(n**2) * np.pi**2 * tp) / n**2))
    if geometry == "sphere":
        n_terms = int(min(400_000, max(100, np.ceil(np.sqrt(45.0 / tp) / np.pi) + 10)))
        a = sphere_roots(n_terms)
        # terms beyond n_terms have decayed below e^-45 by τ'
        return float(3.0 * tp + 1.0 / 5.0 - 2.0 * np.sum(np.exp(-(a**2) * tp) / a**2))
    raise ValueError(f"geometry must be 'film' or 'sphere', not {geometry!r}")


def weppner_huggins_bias(tau_prime: float, geometry: str) -> float:
    """D_WH/D − 1 for a pulse of dimensionless length τ' = Dτ/ℓ² (ℓ = L or R)."""
    g = surface_response(tau_prime, geometry)
    if g <= 0:
        return 0.0
    return float(4.0 * tau_prime / (np.pi * g * g) - 1.0)


def first_mode_rate(d_m2_s: float, length_m: float, geometry: str) -> float:
    """Decay rate (1/s) of the slowest relaxation mode: π²D/L² (film), α₁²D/R² (sphere)."""
    if geometry == "sphere":
        return float(sphere_roots(1)[0] ** 2 * d_m2_s / length_m**2)
    return float(np.pi**2 * d_m2_s / length_m**2)


def unrelaxed_after_rest(tau_prime: float, rest_prime: float, geometry: str) -> float:
    """What is left of a pulse's surface change after a rest, over the change it leaves for
    good (the uniform ΔE_s): [g(τ' + r') − g(r')]/u(τ') − 1, u = τ' (film), 3τ' (sphere),
    for a pulse of dimensionless length τ' followed by a rest r' (both Dt/ℓ²)."""
    if tau_prime <= 0:
        return 0.0
    uniform = (3.0 if geometry == "sphere" else 1.0) * tau_prime
    left = surface_response(tau_prime + rest_prime, geometry) - surface_response(
        rest_prime, geometry
    )
    return float(max(left / uniform - 1.0, 0.0))
