"""Pulse-protocol planner (seed 004's question): how much charge can be stripped before the
interface reaches a critical concentration, as a function of rest time and pulse length,
and what is the shortest rest that gets most of the benefit?

Model: the batched film solver (:mod:`.fvsolver`) with a contact-area fraction f (local
current density i/f at the contact spots). Capacities are geometric: ∫ i dt per m² of cell
area until the interface concentration first reaches C_crit during a pulse.
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
    """Material and geometry of the depleting film (SI)."""

    d_m2_s: float
    thickness_m: float
    c0_mol_m3: float
    c_crit_mol_m3: float
    contact_fraction: float = 1.0
    z: int = 1

    @property
    def theoretical_capacity_c_m2(self) -> float:
        """Geometric charge that takes the whole film to C_crit: f·zF·L·(C₀ − C_crit)."""
        return (
            self.contact_fraction
            * self.z
            * FARADAY_C_MOL
            * self.thickness_m
            * (self.c0_mol_m3 - self.c_crit_mol_m3)
        )


@dataclass(frozen=True)
class RestPlan:
    rest_s: FloatArray
    pulse_s: float
    capacity_c_m2: FloatArray
    plateau_c_m2: float
    fraction: float
    recommended_rest_s: float
    theoretical_capacity_c_m2: float

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
    A rest of 0 means continuous stripping. Steps default to 1/20 of the shortest
    non-zero pulse or rest so that all edges fall on the grid."""
    pulses = np.atleast_1d(np.asarray(pulse_s, float))
    rests = np.atleast_1d(np.asarray(rest_s, float))
    if np.any(pulses <= 0) or np.any(rests < 0):
        raise ValueError("pulses must be > 0 and rests ≥ 0")
    if dt_s is None:
        dt_s = float(min(pulses.min(), rests[rests > 0].min() if np.any(rests > 0) else np.inf))
        dt_s /= 20.0
    q_th = material.theoretical_capacity_c_m2
    on_time = q_th / current_density_a_m2
    scen, t_end = [], 0.0
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
                )
            )
            t_end = max(t_end, (np.ceil(on_time / p) + 1) * (p + r))
    res = solve_film_batch(
        scen,
        t_end_s=t_end,
        dt_s=dt_s,
        n_cells=n_cells,
        record_every=10**9,
        c_crit_mol_m3=material.c_crit_mol_m3,
        stop_at_crit=True,
    )
    return np.asarray(res.capacity_c_m2.reshape(pulses.size, rests.size), dtype=float)


def recommend_rest_s(rest_s: ArrayLike, capacity_c_m2: ArrayLike, fraction: float = 0.9) -> float:
    """Shortest rest whose capacity reaches ``fraction`` of the plateau (the capacity at the
    longest rest), interpolated linearly between the tested rests."""
    r = np.asarray(rest_s, float)
    q = np.asarray(capacity_c_m2, float)
    o = np.argsort(r)
    r, q = r[o], q[o]
    target = fraction * q[-1]
    k = int(np.argmax(q >= target))
    if k == 0:
        return float(r[0])
    q0, q1 = q[k - 1], q[k]
    return float(r[k - 1] + (target - q0) / (q1 - q0) * (r[k] - r[k - 1]))


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
    """Critical capacity vs rest for one pulse length and the recommended rest."""
    rests = np.asarray(rest_s, float)
    cap = critical_capacity_map_c_m2(
        material, current_density_a_m2, [pulse_s], rests, dt_s=dt_s, n_cells=n_cells
    )[0]
    return RestPlan(
        rest_s=rests,
        pulse_s=pulse_s,
        capacity_c_m2=cap,
        plateau_c_m2=float(cap[np.argmax(rests)]),
        fraction=fraction,
        recommended_rest_s=recommend_rest_s(rests, cap, fraction),
        theoretical_capacity_c_m2=material.theoretical_capacity_c_m2,
    )
