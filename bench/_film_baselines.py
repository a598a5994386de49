"""The film-solver benchmark's scenarios, exact reference and baselines (PyBaMM, solve_ivp).

Scenarios (all stripping, one sign of current): seed 004 pulse trains with rests from
0.1 to 30 s, seed 004 staircases (5 s of current, 35 s rests), and seed 000 GITT (pulses of
5-10 min, rests of 20-60 min) on a slow 10 µm film. The observable is the interface
concentration at the end of every pulse and every rest (what decides a critical capacity
or a GITT ΔE); the accuracy is its maximum error against the exact series
(host_sdk.analysis.slab_surface_mol_m3), relative to the scenario's largest depletion.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from host_sdk.analysis import (
    FARADAY_C_MOL,
    FilmScenario,
    PiecewiseCurrent,
    PulseTrain,
    slab_surface_mol_m3,
    staircase,
)

LIQUID = (1e-9, 100e-6, 1000.0)  # D, L, C0: a liquid-metal film (seed 004)
SLOW = (5e-14, 10e-6, 10_000.0)  # seed 000's GITT film: L²/(π²D) = 203 s


@dataclass
class Case:
    scenario: FilmScenario
    kind: str
    edges_s: np.ndarray  # current edges after 0, up to and including the end

    @property
    def t_end_s(self) -> float:
        return float(self.edges_s[-1])


def scenarios(n: int, seed: int = 0) -> list[Case]:
    """n scenarios: half pulse trains, a quarter staircases, a quarter GITT."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        kind = ("pulse", "pulse", "staircase", "gitt")[k % 4]
        if kind == "pulse":
            d, ll, c0 = LIQUID
            on = float(rng.choice([0.5, 1.0, 2.0]))
            rest = float(rng.choice([0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]))
            count = int(rng.integers(10, 31))
            hist: PiecewiseCurrent | PulseTrain = PulseTrain(
                float(rng.uniform(5.0, 20.0)), on, rest, n_pulses=count
            )
            end = count * (on + rest)
        elif kind == "staircase":
            d, ll, c0 = LIQUID
            levels = int(rng.integers(8, 16))
            start = float(rng.uniform(0.5, 2.0))
            hist = staircase(start, start + 0.5 * (levels - 1), 0.5, 5.0, 35.0)
            end = levels * 40.0
        else:
            d, ll, c0 = SLOW
            pulse = float(rng.choice([300.0, 600.0]))
            rest = float(rng.choice([1200.0, 2400.0, 3600.0]))
            count = int(rng.integers(4, 9))
            t0 = np.arange(count) * (pulse + rest)
            amp = float(rng.uniform(0.05, 0.2))
            hist = PiecewiseCurrent(
                np.ravel(np.column_stack((t0, t0 + pulse))), np.tile([amp, 0.0], count)
            )
            end = count * (pulse + rest)
        tk, _ = hist.steps(end)
        # the edges exactly as the history has them (a check time a rounding away from an
        # edge puts a 1e-15 s step into the closed-form series, which it cannot resolve)
        edges = np.unique(tk[tk > 0])
        if edges.size == 0 or end - edges[-1] > 1e-9 * end:
            edges = np.append(edges, end)
        out.append(Case(FilmScenario(d, ll, hist, c0), kind, edges))
    return out


def exact_surface(case: Case) -> np.ndarray:
    """The exact series at the scenario's edges, by its modal recursion: the film's exact
    eigenfunctions cos(nπx/L) (rates n²π²D/L²), each interval of constant flux J one exact
    step, the modes split into their quasi-steady part −J/λₙ, summed in closed form
    (Σ 1/λₙ = L²/(6D)), and deviations that have decayed below 1e-18 by the end of the
    shortest interval beyond the modes kept. Exact to round-off at interval ends; checked
    against the closed-form superposition (slab_surface_mol_m3) by `check_reference`."""
    s = case.scenario
    d, ll = s.d_m2_s, s.thickness_m
    iv = _intervals(case)
    shortest = min(dt for dt, _, _ in iv)
    n_modes = int(np.ceil(np.sqrt(42.0 / (np.pi**2 * d * shortest / ll**2)))) + 1
    lam = (np.arange(1, n_modes + 1) * np.pi / ll) ** 2 * d
    dev = np.zeros(n_modes)  # deviation of ∫u cosₙ dx from its quasi-steady −J/λₙ
    removed = 0.0  # ∫ J dt (mol m⁻²)
    flux_prev = 0.0
    out = []
    for dt, flux, _ in iv:
        dev = (dev + (flux - flux_prev) / lam) * np.exp(-lam * dt)
        removed += flux * dt
        flux_prev = flux
        quasi = -flux * ll * ll / (6.0 * d)
        out.append(s.c0_mol_m3 - removed / ll + 2.0 / ll * (quasi + dev.sum()))
    return np.asarray(out)


def check_reference(cases: list[Case]) -> float:
    """Largest relative difference between the recursion and the closed-form series."""
    worst = 0.0
    for c in cases:
        s = c.scenario
        closed = slab_surface_mol_m3(c.edges_s, s.current, s.d_m2_s, s.thickness_m, s.c0_mol_m3)
        worst = max(worst, relative_error(c, exact_surface(c), closed))
    return worst


def relative_error(case: Case, got: np.ndarray, exact: np.ndarray) -> float:
    depletion = case.scenario.c0_mol_m3 - float(np.min(exact))
    return float(np.max(np.abs(np.asarray(got) - exact)) / depletion)


def _intervals(case: Case) -> list[tuple[float, float, float]]:
    """(length, flux mol m⁻² s⁻¹, end) of each constant-current interval."""
    s = case.scenario
    t = np.concatenate(([0.0], case.edges_s))
    mids = 0.5 * (t[:-1] + t[1:])
    flux = s.current.current(mids) / (s.z * FARADAY_C_MOL * s.contact_fraction)
    return [(float(b - a), float(j), float(b)) for a, b, j in zip(t[:-1], t[1:], flux, strict=True)]


# ---- PyBaMM: the same film as a PyBaMM model, stepped from edge to edge -------------------
def pybamm_available() -> bool:
    try:
        import pybamm  # noqa: F401
    except ImportError:
        return False
    return True


class PybammFilm:
    """A discretised PyBaMM model of one film (D, L, C₀): c_t = D c_xx, −D c_x = −J at
    x = 0 (an input), no flux at L; finite volumes with quadratic extrapolation of the
    boundary value (PyBaMM's most accurate read-out); IDAKLU. The experiment runs as
    PyBaMM runs experiments: one solver step per constant-current interval."""

    def __init__(self, d: float, ll: float, c0: float, n_pts: int, rtol: float) -> None:
        os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
        import pybamm

        model = pybamm.BaseModel()
        x = pybamm.SpatialVariable("x", domain="film", coord_sys="cartesian")
        c = pybamm.Variable("c", domain="film")
        flux = pybamm.InputParameter("J")
        model.rhs = {c: pybamm.div(d * pybamm.grad(c))}
        model.boundary_conditions = {
            c: {"left": (flux / d, "Neumann"), "right": (pybamm.Scalar(0), "Neumann")}
        }
        model.initial_conditions = {c: pybamm.Scalar(c0)}
        model.variables = {"c_s": pybamm.boundary_value(c, "left")}
        geometry = {"film": {x: {"min": pybamm.Scalar(0), "max": pybamm.Scalar(ll)}}}
        mesh = pybamm.Mesh(geometry, {"film": pybamm.Uniform1DSubMesh}, {x: n_pts})
        quadratic = {"order": {"value": "quadratic", "gradient": "quadratic"}, "use bcs": True}
        method = pybamm.FiniteVolume({"extrapolation": quadratic})
        pybamm.Discretisation(mesh, {"film": method}).process_model(model)
        self.model = model
        self.solver = pybamm.IDAKLUSolver(rtol=rtol, atol=rtol * c0)

    def surface_at_edges(self, case: Case) -> np.ndarray:
        import warnings

        out = []
        sol = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for dt, flux, _ in _intervals(case):
                sol = self.solver.step(
                    sol,
                    self.model,
                    dt,
                    t_eval=np.array([0.0, dt]),
                    inputs={"J": flux},
                    save=False,
                )
                out.append(float(sol["c_s"].entries[-1]))
        return np.asarray(out)


# ---- scipy solve_ivp (BDF) on our finite-volume grid --------------------------------------
def solve_ivp_surface(case: Case, n_cells: int, rtol: float) -> np.ndarray:
    """Method of lines on a uniform cell-centred grid, BDF with the sparse Jacobian,
    restarted at every edge; the interface value read out as a nodal quadratic."""
    s = case.scenario
    h = s.thickness_m / n_cells
    g = s.d_m2_s / h**2
    main = np.full(n_cells, -2.0 * g)
    main[[0, -1]] = -g
    jac = sp.diags([np.full(n_cells - 1, g), main, np.full(n_cells - 1, g)], [-1, 0, 1]).tocsc()
    c = np.full(n_cells, s.c0_mol_m3)
    out = []
    t = 0.0
    for dt, flux, _ in _intervals(case):
        src = np.zeros(n_cells)
        src[0] = -flux / h

        def rhs(_t: float, y: np.ndarray, src: np.ndarray = src) -> np.ndarray:
            return np.asarray(jac @ y + src)

        sol = solve_ivp(
            rhs, (t, t + dt), c, method="BDF", jac=jac, rtol=rtol, atol=rtol * s.c0_mol_m3
        )
        c = sol.y[:, -1]
        t += dt
        b = flux / s.d_m2_s
        out.append(c[0] - b * h / 2 - (c[1] - c[0] - b * h) / 8)
    return np.asarray(out)


def best_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)
