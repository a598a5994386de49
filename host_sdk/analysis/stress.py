"""Diffusion-induced stress (DOMAIN.md §5)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def thin_film_stress_pa(
    delta_c_mol_m3: ArrayLike, omega_m3_mol: float, e_pa: float, nu: float
) -> FloatArray:
    """Film bonded to a rigid substrate: σ = −ΩEΔc/(3(1 − ν)) (compressive on insertion)."""
    return np.asarray(
        -omega_m3_mol * e_pa * np.asarray(delta_c_mol_m3, float) / (3.0 * (1.0 - nu)),
        dtype=float,
    )


def _segment_moments(a: FloatArray, b: FloatArray, ca: FloatArray, slope: FloatArray) -> FloatArray:
    """∫_a^b c r² dr for c = c_a + slope·(r² − a²), i.e. c linear in r² on [a, b]: exact for
    a uniform and for a parabolic profile c = c₀ + βr² (the shape a sphere's profile has
    near its centre, where dc/dr = 0)."""
    r3 = (b**3 - a**3) / 3.0
    r5 = (b**5 - a**5) / 5.0
    return np.asarray(ca * r3 + slope * (r5 - a * a * r3), dtype=float)


def sphere_stress_pa(
    r_m: ArrayLike,
    c_mol_m3: ArrayLike,
    omega_m3_mol: float,
    e_pa: float,
    nu: float,
    *,
    radius_m: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Radial and hoop stress in a sphere from a radial profile c(r) (Christensen-Newman).

    r: increasing sample radii, from 0 or from the first cell centre of a cell-centred grid;
    c may be (n_r,) or (n_times, n_r). ``radius_m`` is the particle radius R (default: the
    last r; give it for a cell-centred grid, whose last centre lies h/2 inside the surface).

    The moments ∫₀ʳ c r² dr start at r = 0, not at the first sample: between samples (and
    from the centre to the first one, and from the last one to R) c is taken as linear in
    r², which is exact for a uniform profile (zero stress) and for a parabolic one.
    """
    r = np.asarray(r_m, float)
    c = np.asarray(c_mol_m3, float)
    if r.ndim != 1 or r.size < 1 or np.any(np.diff(r) <= 0) or r[0] < 0:
        raise ValueError("r_m must be 1-D, non-negative and strictly increasing")
    big_r = float(r[-1] if radius_m is None else radius_m)
    if big_r < r[-1]:
        raise ValueError(f"radius_m = {big_r:g} m is inside the last sample r = {r[-1]:g} m")
    k = omega_m3_mol * e_pa / (3.0 * (1.0 - nu))
    lead = c.shape[:-1]
    if r.size > 1:
        slopes = np.diff(c, axis=-1) / np.diff(r * r)
    else:
        slopes = np.zeros(lead + (0,))
    first_slope = slopes[..., :1] if r.size > 1 else np.zeros(lead + (1,))
    last_slope = slopes[..., -1:] if r.size > 1 else np.zeros(lead + (1,))
    # from the centre to the first sample, with the first interval's slope in r²
    c_centre = c[..., :1] - first_slope * r[0] ** 2
    head = _segment_moments(np.zeros(1), r[:1], c_centre, first_slope)
    body = _segment_moments(r[:-1], r[1:], c[..., :-1], slopes)
    mom = np.cumsum(np.concatenate((head, body), axis=-1), axis=-1)
    tail = _segment_moments(r[-1:], np.array([big_r]), c[..., -1:], last_slope)
    total = mom[..., -1:] + tail
    outer = total / big_r**3  # (1/R³)∫₀ᴿ c r² dr
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(r > 0, mom / np.where(r > 0, r**3, 1.0), c_centre / 3.0)
    sig_r = 2.0 * k * (outer - inner)
    sig_t = k * (2.0 * outer + inner - c)
    return np.asarray(sig_r, dtype=float), np.asarray(sig_t, dtype=float)


def stoney_stress_pa(
    curvature_per_m: ArrayLike,
    substrate_e_pa: float,
    substrate_nu: float,
    substrate_thickness_m: float,
    film_thickness_m: float,
) -> FloatArray:
    """Stoney: σ_f = E_s h_s² κ/(6(1 − ν_s) h_f)."""
    kap = np.asarray(curvature_per_m, float)
    return np.asarray(
        substrate_e_pa
        * substrate_thickness_m**2
        * kap
        / (6.0 * (1.0 - substrate_nu) * film_thickness_m),
        dtype=float,
    )
