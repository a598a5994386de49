"""Analysis benchmarks: the batched Crank-Nicolson/Rannacher film solver.

diffusion_batch_speedup: the batched solver against scipy.integrate.solve_ivp (BDF, method of
lines on the same finite-volume grid, sparse tridiagonal Jacobian, restarted at every current
edge) on the same pulse-train scenarios, to the same accuracy, in the same run. Accuracy is
the time-integration error of the shared semi-discrete system, measured against its exact
solution (eigen-decomposition, exact for piecewise-constant currents); solve_ivp's tolerance
is tightened until its error is no larger than the batched solver's. solve_ivp is timed on a
subset and scaled per scenario (stated in "note").

diffusion_scenarios_per_s: 200-cell, 10 000-step pulse-train scenarios, batched.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host_sdk.analysis import FARADAY_C_MOL, FilmScenario, PulseTrain, solve_film_batch  # noqa: E402

D, L, C0 = 1e-9, 100e-6, 1000.0
N_CELLS = 100
DT = 0.01
T_END = 20.0
T_CHECK = np.arange(1.0, T_END + 1e-9, 1.0)


def _scenarios(n: int, seed: int = 0) -> list[FilmScenario]:
    rng = np.random.default_rng(seed)
    i = rng.uniform(5.0, 50.0, n)
    rest = rng.integers(1, 21, n) * 0.1  # 0.1 … 2.0 s, on the step grid
    pulse = rng.choice([0.5, 1.0, 2.0], n)
    return [
        FilmScenario(D, L, PulseTrain(float(a), float(p), float(r)), C0)
        for a, p, r in zip(i, pulse, rest, strict=True)
    ]


def _operator() -> tuple[np.ndarray, float]:
    h = L / N_CELLS
    t = np.zeros((N_CELLS, N_CELLS))
    idx = np.arange(N_CELLS - 1)
    t[idx, idx + 1] = t[idx + 1, idx] = 1.0
    t[np.arange(N_CELLS), np.arange(N_CELLS)] = -2.0
    t[0, 0] = t[-1, -1] = -1.0
    return D / h**2 * t, h


def _intervals(s: FilmScenario, t_end: float) -> list[tuple[float, float, float]]:
    tk, _ = s.current.steps(t_end)
    edges = np.unique(np.round(np.concatenate(([0.0], tk, T_CHECK, [t_end])), 9))
    edges = edges[edges <= t_end]
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        out.append((float(a), float(b), float(s.current.current(0.5 * (a + b)))))
    return out


def _exact_semidiscrete(s: FilmScenario) -> np.ndarray:
    """Cell values at T_CHECK from the exact solution of the semi-discrete system."""
    a, h = _operator()
    lam, v = np.linalg.eigh(a)
    lam[np.argmin(np.abs(lam))] = 0.0
    c = v.T @ np.full(N_CELLS, C0)
    e0 = v[0, :]  # V^T e₀
    out = []
    for t0, t1, i in _intervals(s, T_END):
        tau = t1 - t0
        z = lam * tau
        phi = np.where(z != 0, np.expm1(z) / np.where(z != 0, z, 1.0), 1.0)
        c = np.exp(z) * c + phi * tau * (-i / (FARADAY_C_MOL * h)) * e0
        if np.any(np.isclose(t1, T_CHECK)):
            out.append(v @ c)
    return np.column_stack(out)


def _solve_ivp_one(s: FilmScenario, rtol: float) -> np.ndarray:
    a, h = _operator()
    jac = sp.csc_matrix(a)
    c = np.full(N_CELLS, C0)
    out = []
    for t0, t1, i in _intervals(s, T_END):
        src = np.zeros(N_CELLS)
        src[0] = -i / (FARADAY_C_MOL * h)

        def rhs(_t: float, y: np.ndarray, src: np.ndarray = src) -> np.ndarray:
            return jac @ y + src

        sol = solve_ivp(rhs, (t0, t1), c, method="BDF", jac=jac, rtol=rtol, atol=rtol * C0)
        c = sol.y[:, -1]
        if np.any(np.isclose(t1, T_CHECK)):
            out.append(c.copy())
    return np.column_stack(out)


def _batched(scen: list[FilmScenario]) -> tuple[float, list[np.ndarray]]:
    t0 = time.perf_counter()
    r = solve_film_batch(
        scen, t_end_s=T_END, dt_s=DT, n_cells=N_CELLS, profile_times_s=list(T_CHECK)
    )
    el = time.perf_counter() - t0
    per = [np.column_stack([p[:, k] for p in r.profiles_mol_m3]) for k in range(len(scen))]
    return el, per


def speedup(n_scen: int = 1000, n_ivp: int = 25) -> dict[str, Any]:
    scen = _scenarios(n_scen)
    t_batch, ours = _batched(scen)
    sub = list(range(n_ivp))
    exact = {k: _exact_semidiscrete(scen[k]) for k in sub}
    err_cn = max(float(np.max(np.abs(ours[k] - exact[k]))) for k in sub)
    rtol, err_ivp = 1e-3, np.inf
    while True:  # tighten solve_ivp until it is at least as accurate as CN
        err_ivp = max(
            float(np.max(np.abs(_solve_ivp_one(scen[k], rtol) - exact[k]))) for k in sub[:5]
        )
        if err_ivp <= err_cn or rtol < 1e-10:
            break
        rtol /= 4.0
    t0 = time.perf_counter()
    for k in sub:
        got = _solve_ivp_one(scen[k], rtol)
        err_ivp = max(err_ivp, float(np.max(np.abs(got - exact[k]))))
    t_ivp = (time.perf_counter() - t0) / n_ivp * n_scen
    return {
        "name": "diffusion_batch_speedup",
        "value": t_ivp / t_batch,
        "unit": "x",
        "baseline": t_ivp,
        "ratio": t_ivp / t_batch,
        "note": (
            f"{n_scen} pulse-train scenarios ({N_CELLS} cells, {T_END:g} s, Δt {DT} s): batched "
            f"{t_batch:.2f} s; solve_ivp BDF (rtol {rtol:.2g}, sparse Jacobian, restarted at "
            f"each edge) timed on {n_ivp} scenarios and scaled to {n_scen}: {t_ivp:.1f} s. "
            f"Max error vs exact semi-discrete solution: CN {err_cn:.2e}, BDF {err_ivp:.2e} "
            "mol m⁻³. baseline = solve_ivp seconds."
        ),
    }


def throughput(n_scen: int = 200) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    scen = [
        FilmScenario(D, L, PulseTrain(float(a), 1.0, float(r)), C0)
        for a, r in zip(rng.uniform(5, 50, n_scen), rng.integers(1, 21, n_scen) * 0.1, strict=True)
    ]
    t0 = time.perf_counter()
    solve_film_batch(scen, t_end_s=100.0, dt_s=0.01, n_cells=200, record_every=100)
    el = time.perf_counter() - t0
    return {
        "name": "diffusion_scenarios_per_s",
        "value": n_scen / el,
        "unit": "scenarios/s",
        "baseline": None,
        "ratio": None,
        "note": f"{n_scen} scenarios, 200 cells, 10 000 CN steps each, in {el:.2f} s",
    }


def run() -> list[dict[str, Any]]:
    return [speedup(), throughput()]


if __name__ == "__main__":
    for r in run():
        base = r["baseline"]
        ratio = r["ratio"]
        print(
            f"{r['name']:<28} {r['value']:12.4g} {r['unit']:<12} "
            f"{'-' if base is None else f'{base:.4g}':>10} "
            f"{'-' if ratio is None else f'{ratio:.3g}':>8}"
        )
        print(f"    {r['note']}")
