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


def sphere_stress_pa(
    r_m: ArrayLike, c_mol_m3: ArrayLike, omega_m3_mol: float, e_pa: float, nu: float
) -> tuple[FloatArray, FloatArray]:
    """Radial and hoop stress in a sphere from a radial profile c(r) (Christensen-Newman).

    r must be increasing from 0 (or near 0) to the surface R; c may be (n_r,) or
    (n_times, n_r). The moments ∫ c r² dr are integrated as ∫ c d(r³)/3 with the trapezoid
    rule in r³, which is exact for a uniform c (→ exactly zero stress).
    """
    r = np.asarray(r_m, float)
    c = np.asarray(c_mol_m3, float)
    k = omega_m3_mol * e_pa / (3.0 * (1.0 - nu))
    u = r**3 / 3.0
    du = np.diff(u)
    mom = np.concatenate(
        (np.zeros(c.shape[:-1] + (1,)), np.cumsum(0.5 * (c[..., 1:] + c[..., :-1]) * du, axis=-1)),
        axis=-1,
    )
    # mean of c over the ball of radius r: 3/r³ ∫ c r² dr (→ c(0) at r = 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(r > 0, mom / np.where(r > 0, u, 1.0), c[..., :1]) / 3.0
    if r[0] == 0:
        inner[..., 0] = c[..., 0] / 3.0
    outer = mom[..., -1:] / (3.0 * u[-1])
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
