"""The film's finite-volume operator in its eigenbasis: exact steps in time.

The semi-discrete film (cell-centred finite volumes, widths h_j, no flux at x = L, a flux
J(t) leaving at x = 0) is the linear system W u' = −K u − e₀ J for the deviation u = c − C₀
(W = diag(h), K the graph Laplacian of the face conductances D/(½(h_j + h_j+1))). With
S = W^-½ K W^-½ = Q Λ Qᵀ, the modal amplitudes a = Qᵀ W^½ u obey a' = −Λa + βJ,
β = −Qᵀ W^-½ e₀, and for a constant J over a step Δ

    a(t + Δ) = e^(−ΛΔ) a(t) + (1 − e^(−ΛΔ))/Λ · β J        (Δ·βJ for the zero mode)

exactly: the step can be as long as the current stays constant (a week-long rest is one
step), and its only error is the spatial one of the grid. Storing deviations from C₀
keeps mass conservation at round-off of the depletion, not of C₀.

The grid is uniform, or geometric from ``first_cell_m`` at the interface (where the
gradients are) like the emulated plant's. Slow eigenvalues are recomputed as Rayleigh
quotients in difference form, so a fine first cell (fast modes of 10⁹ s⁻¹) does not cost
the slow modes their relative accuracy.

Contact spots (seed 004): with a contact fraction f < 1 and a lateral exchange rate k > 0,
the cells are the column under the contact spots (area fraction f, carrying the local
flux J = i/(f z F)), and one more state is the rest of the film, a well-mixed reservoir
exchanging with every column cell at the rate k: rows scaled by f keep the operator
symmetric (W = diag(f·h, (1 − f)·L)), now dense, as in the emulated plant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import eigh_tridiagonal

FloatArray = NDArray[np.float64]


def film_grid(thickness_m: float, n_cells: int, first_cell_m: float | None) -> FloatArray:
    """Cell widths: uniform, or growing geometrically from ``first_cell_m`` at x = 0."""
    if first_cell_m is None or first_cell_m * n_cells >= thickness_m * 0.999:
        return np.full(n_cells, thickness_m / n_cells)
    lo, hi = 1.0, 2.0
    while first_cell_m * (hi**n_cells - 1.0) / (hi - 1.0) < thickness_m:
        hi *= 2.0
    for _ in range(80):  # the ratio r with first·(rⁿ − 1)/(r − 1) = L, by bisection
        mid = 0.5 * (lo + hi)
        if first_cell_m * (mid**n_cells - 1.0) / (mid - 1.0) < thickness_m:
            lo = mid
        else:
            hi = mid
    h = first_cell_m * (0.5 * (lo + hi)) ** np.arange(n_cells)
    return np.asarray(h * thickness_m / h.sum(), dtype=float)


@dataclass(frozen=True)
class FilmModes:
    """Eigen-decomposition of one film's (D, L, grid) operator; see the module text.

    ``shape`` (states × modes) maps amplitudes to state deviations u = shape @ a, the
    first ``n_cells`` states being the (column's) cells and a last one the reservoir when
    there is lateral exchange; ``surface`` (modes) and ``surface_flux`` give the interface
    value C(0) − C₀ = surface @ a + surface_flux · J (the nodal quadratic read-out);
    ``mean`` (modes) gives the mean deviation over the (column's) cells.
    """

    d_m2_s: float
    widths_m: FloatArray
    centres_m: FloatArray
    rates: FloatArray  # Λ (1/s), rates[0] = 0: the zero mode (the mean)
    shape: FloatArray
    beta: FloatArray
    surface: FloatArray
    surface_flux: float
    mean: FloatArray

    @property
    def n_cells(self) -> int:
        return int(self.widths_m.size)

    @property
    def cells(self) -> FloatArray:
        """(cells × modes): the rows of ``shape`` that are cells (not the reservoir)."""
        return np.asarray(self.shape[: self.n_cells], dtype=float)

    @classmethod
    def build(
        cls,
        d_m2_s: float,
        thickness_m: float,
        n_cells: int,
        first_cell_m: float | None = None,
        contact_fraction: float = 1.0,
        lateral_rate_per_s: float = 0.0,
    ) -> FilmModes:
        if n_cells < 2:
            raise ValueError("need at least two cells")
        h = film_grid(thickness_m, n_cells, first_cell_m)
        x = np.cumsum(h) - 0.5 * h
        g = d_m2_s / (0.5 * (h[:-1] + h[1:]))  # face conductances
        f = float(contact_fraction)
        reservoir = lateral_rate_per_s > 0.0 and f < 1.0
        wf = f if reservoir else 1.0  # column rows scaled by f: K stays symmetric
        w = np.concatenate((wf * h, [(1.0 - f) * thickness_m])) if reservoir else h
        # edges (a, b, κ) of the conductance graph: K = Σ κ (e_a − e_b)(e_a − e_b)ᵀ
        ea = np.arange(n_cells - 1)
        eb, kap = ea + 1, wf * g
        if reservoir:
            ea = np.concatenate((ea, np.arange(n_cells)))
            eb = np.concatenate((eb, np.full(n_cells, n_cells)))
            kap = np.concatenate((kap, f * lateral_rate_per_s * h))
        rw = 1.0 / np.sqrt(w)
        if reservoir:
            k_mat = np.zeros((w.size, w.size))
            np.add.at(k_mat, (ea, ea), kap)
            np.add.at(k_mat, (eb, eb), kap)
            np.add.at(k_mat, (ea, eb), -kap)
            np.add.at(k_mat, (eb, ea), -kap)
            lam, q = np.linalg.eigh(k_mat * rw[:, None] * rw[None, :])
        else:
            kd = np.concatenate((g, [0.0])) + np.concatenate(([0.0], g))
            lam, q = eigh_tridiagonal(kd * rw * rw, -g * rw[:-1] * rw[1:])
        shape = q * rw[:, None]  # W^-½ Q: Σ_j w_j shape_jk² = 1
        # the zero mode exactly (uniform, normalised), the others kept orthogonal to it
        zero = np.full(w.size, 1.0 / np.sqrt(w.sum()))
        k0 = int(np.argmin(np.abs(lam)))
        rest = shape[:, [k for k in range(w.size) if k != k0]]
        rest -= np.outer(zero, (w * zero) @ rest)
        rest /= np.sqrt(np.sum(w[:, None] * rest**2, axis=0))
        # Rayleigh quotients in difference form: every term positive, so a slow mode keeps
        # its relative accuracy next to modes 10¹⁰ times faster
        rates = np.sum(kap[:, None] * (rest[ea] - rest[eb]) ** 2, axis=0)
        rates = np.concatenate(([0.0], rates))
        shape = np.column_stack((zero, rest))
        beta = -wf * shape[0, :]  # the flux leaves the first (column) cell
        surf, surf_flux = _nodal_quadratic(shape, h, d_m2_s)
        mean = (h @ shape[:n_cells]) / thickness_m
        return cls(d_m2_s, h, x, rates, shape, beta, surf, surf_flux, mean)

    def step_factors(self, dt_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(e^(−ΛΔ), (1 − e^(−ΛΔ))/Λ) for each Δ: arrays (modes, len(dt_s))."""
        z = np.outer(self.rates, np.asarray(dt_s, float))
        decay = np.exp(-z)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(z > 0, -np.expm1(-z) / np.where(z > 0, z, 1.0), 1.0)
        return decay, gain * np.asarray(dt_s, float)[None, :]


def _nodal_quadratic(shape: FloatArray, h: FloatArray, d_m2_s: float) -> tuple[FloatArray, float]:
    """The interface value from the first two cells read as point values at their centres
    and the boundary gradient c'(0) = J/D: the quadratic through them, at x = 0. (Read as
    cell averages instead, the same solution gives a surface value an order of magnitude
    less accurate: the finite-volume values are second-order point values.)"""
    x0, x1 = 0.5 * h[0], h[0] + 0.5 * h[1]
    # p(x) = s + bx + ax², b = J/D: s = c0 − b x0 − a x0², a = (c1 − c0 − b(x1 − x0))/(x1² − x0²)
    den = x1 * x1 - x0 * x0
    w0 = 1.0 + x0 * x0 / den
    w1 = -x0 * x0 / den
    wb = -x0 + x0 * x0 * (x1 - x0) / den
    return np.asarray(w0 * shape[0] + w1 * shape[1], dtype=float), float(wb / d_m2_s)
