"""Pulse-protocol planner (seed 004's question): how much charge can be stripped before the
interface reaches a critical concentration, as a function of rest time and pulse length,
and what is the shortest rest that gets most of the benefit?

Model: the batched film solver (:mod:`.fvsolver`, exact steps by default) with a
contact-area fraction f (local current density i/f at the contact spots). Capacities are
geometric: ∫ i dt per m² of cell area until the interface concentration first reaches
C_crit during a pulse.

The plateau is not "the capacity at the longest rest tested": the planner computes the
capacity with rests long enough for the film to relax completely between pulses (several
L²/(π²D)), says whether the tested rests reached it, and finds the recommended rest
against it, testing longer rests itself when the tested ones stop short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .currents import PulseTrain
from .diffusion import FARADAY_C_MOL
from .fvsolver import FilmScenario, solve_film_batch

FloatArray = NDArray[np.float64]
C_M2_PER_MAH_CM2 = 36_000.0  # 1 mAh cm⁻² = 3.6 C / 1e-4 m²


@dataclass(frozen=True)
class FilmMaterial:
    """Material and geometry of the depleting film (SI).

    ``contact_fraction`` f: the real contact is a fraction f of the area; with
    ``lateral_rate_per_s`` k > 0 the column under the contacts exchanges with the rest of
    the film at the rate k (what lets a rest recover the contacts faster than diffusion
    across L alone)."""

    d_m2_s: float
    thickness_m: float
    c0_mol_m3: float
    c_crit_mol_m3: float
    contact_fraction: float = 1.0
    z: int = 1
    lateral_rate_per_s: float = 0.0

    @property
    def exchanges(self) -> bool:
        return self.lateral_rate_per_s > 0.0 and self.contact_fraction < 1.0

    @property
    def theoretical_capacity_c_m2(self) -> float:
        """Geometric charge that takes the film to C_crit: zF·L·(C₀ − C_crit) of the whole
        film when it feeds the contacts laterally, of the column under them (× f) if not."""
        share = 1.0 if self.exchanges else self.contact_fraction
        return (
            share
            * self.z
            * FARADAY_C_MOL
            * self.thickness_m
            * (self.c0_mol_m3 - self.c_crit_mol_m3)
        )

    def slowest_relaxation_s(self, n_cells: int = 100) -> float:
        """Time constant of the film's slowest mode (L²/(π²D) without exchange)."""
        if not self.exchanges:
            return float(self.thickness_m**2 / (np.pi**2 * self.d_m2_s))
        from .filmexact_batch import film_modes

        modes = film_modes(
            self.d_m2_s,
            self.thickness_m,
            n_cells,
            None,
            self.contact_fraction,
            self.lateral_rate_per_s,
        )
        return float(1.0 / np.min(modes.rates[modes.rates > 0]))


@dataclass(frozen=True)
class RestPlan:
    rest_s: FloatArray
    pulse_s: float
    capacity_c_m2: FloatArray
    plateau_c_m2: float  # with the film fully relaxed between pulses
    fraction: float
    recommended_rest_s: float
    theoretical_capacity_c_m2: float
    plateau_reached: bool = True  # the longest rest tested is within 2 % of the plateau
    plateau_rest_s: float = float("nan")  # the rest the plateau was computed with

    @property
    def capacity_mah_cm2(self) -> FloatArray:
        return np.asarray(self.capacity_c_m2 / C_M2_PER_MAH_CM2, dtype=float)


def critical_capacity_map_c_m2(
    material: FilmMaterial,
    current_density_a_m2: float,
    pulse_s: ArrayLike,
    rest_s: ArrayLike,
    *,
    dt_s: float | None = None,
    n_cells: int = 100,
) -> FloatArray:
    """Critical stripping capacity (C m⁻², geometric) for every (pulse length, rest) pair:
    returns an array (len(pulse_s), len(rest_s)); one batched solver run for all pairs.
    A rest of 0 means continuous stripping. By default each pair is stepped exactly from
    edge to edge; with ``dt_s`` on fixed Crank-Nicolson steps (all edges must fall on its
    grid)."""
    pulses = np.atleast_1d(np.asarray(pulse_s, float))
    rests = np.atleast_1d(np.asarray(rest_s, float))
    if np.any(pulses <= 0) or np.any(rests < 0):
        raise ValueError("pulses must be > 0 and rests ≥ 0")
    q_th = material.theoretical_capacity_c_m2
    on_time = q_th / current_density_a_m2
    scen, ends = [], []
    for p in pulses:
        for r in rests:
            scen.append(
                FilmScenario(
                    material.d_m2_s,
                    material.thickness_m,
                    PulseTrain(current_density_a_m2, float(p), float(r)),
                    material.c0_mol_m3,
                    material.contact_fraction,
                    material.z,
                    material.lateral_rate_per_s,
                )
            )
            ends.append((np.ceil(on_time / p) + 1) * (p + r))
    c_crit = material.c_crit_mol_m3
    if dt_s is None:
        res = solve_film_batch(
            scen, t_end_s=ends, n_cells=n_cells, c_crit_mol_m3=c_crit, stop_at_crit=True
        )
    else:
        res = solve_film_batch(
            scen,
            t_end_s=float(max(ends)),
            dt_s=dt_s,
            n_cells=n_cells,
            record_every=10**9,
            c_crit_mol_m3=c_crit,
            stop_at_crit=True,
        )
    return np.asarray(res.capacity_c_m2.reshape(pulses.size, rests.size), dtype=float)


def recommend_rest_s(
    rest_s: ArrayLike,
    capacity_c_m2: ArrayLike,
    fraction: float = 0.9,
    plateau_c_m2: float | None = None,
) -> float:
    """Shortest rest whose capacity reaches ``fraction`` of the plateau, interpolated
    linearly between the tested rests; the plateau defaults to the largest capacity
    tested. NaN when no tested rest reaches it (test longer rests)."""
    r = np.asarray(rest_s, float)
    q = np.asarray(capacity_c_m2, float)
    o = np.argsort(r)
    r, q = r[o], q[o]
    target = fraction * (float(np.nanmax(q)) if plateau_c_m2 is None else plateau_c_m2)
    reached = np.flatnonzero(q >= target)
    if reached.size == 0:
        return float("nan")
    k = int(reached[0])
    if k == 0:
        return float(r[0])
    q0, q1 = q[k - 1], q[k]
    return float(r[k - 1] + (target - q0) / (q1 - q0) * (r[k] - r[k - 1]))


PLATEAU_TOLERANCE = 0.02  # the longest rest tested "reached the plateau" within this


def _refine_rest(
    material: FilmMaterial,
    current_density_a_m2: float,
    pulse_s: float,
    rests: FloatArray,
    caps: FloatArray,
    target: float,
    dt_s: float | None,
    n_cells: int,
    passes: int = 3,
) -> float:
    """The shortest rest whose capacity reaches `target`: bracketed on the rests computed
    so far, then narrowed by computing 8 rests inside the bracket, `passes` times; the
    upper end of the last bracket. Not an interpolation: the capacity is not linear in the
    rest, and it jumps by most of a pulse's charge where the crossing of C_crit moves
    from the end of one pulse into the next."""
    r, q = np.asarray(rests, float), np.asarray(caps, float)
    for _ in range(passes + 1):
        o = np.argsort(r)
        r, q = r[o], q[o]
        above = np.flatnonzero(q >= target)
        if above.size == 0:
            return float("nan")
        k = int(above[0])
        if k == 0:
            return float(r[0])
        lo, hi = r[k - 1], r[k]
        if hi - lo <= 1e-3 * hi or _ == passes:
            return float(hi)
        inner = np.linspace(lo, hi, 10)[1:-1]
        qi = critical_capacity_map_c_m2(
            material, current_density_a_m2, [pulse_s], inner, dt_s=dt_s, n_cells=n_cells
        )[0]
        r, q = np.concatenate((r, inner)), np.concatenate((q, qi))
    return float("nan")  # not reached: the loop returns


def plan_rest(
    material: FilmMaterial,
    current_density_a_m2: float,
    pulse_s: float,
    rest_s: Sequence[float] = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
    fraction: float = 0.9,
    *,
    dt_s: float | None = None,
    n_cells: int = 100,
) -> RestPlan:
    """Critical capacity vs rest for one pulse length, its plateau and the recommended
    rest (the shortest that gets ``fraction`` of the plateau).

    The plateau is computed with rests of 10 times the film's slowest relaxation time
    (L²/(π²D) without lateral exchange: the film relaxes completely between pulses) or
    twice the longest tested rest, whichever is longer. When the tested rests
    do not reach ``fraction`` of it, longer rests are computed to place the
    recommendation; ``plateau_reached`` says whether the tested ones got within 2 %.
    """
    rests = np.asarray(rest_s, float)
    tau1 = material.slowest_relaxation_s(n_cells)
    r_plateau = float(max(10.0 * tau1, 2.0 * rests.max()))
    extra = np.geomspace(max(rests.max(), 1e-3 * r_plateau), r_plateau, 12)[1:]
    both = np.concatenate((rests, extra))
    cap_all = critical_capacity_map_c_m2(
        material, current_density_a_m2, [pulse_s], both, dt_s=dt_s, n_cells=n_cells
    )[0]
    cap, plateau = cap_all[: rests.size], float(cap_all[-1])
    rec = _refine_rest(
        material, current_density_a_m2, pulse_s, both, cap_all, fraction * plateau, dt_s, n_cells
    )
    return RestPlan(
        rest_s=rests,
        pulse_s=pulse_s,
        capacity_c_m2=cap,
        plateau_c_m2=plateau,
        fraction=fraction,
        recommended_rest_s=rec,
        theoretical_capacity_c_m2=material.theoretical_capacity_c_m2,
        plateau_reached=bool(np.nanmax(cap) >= (1.0 - PLATEAU_TOLERANCE) * plateau),
        plateau_rest_s=r_plateau,
    )
