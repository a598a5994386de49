"""Analysis benchmarks: the film solver against PyBaMM (and scipy's solve_ivp) at equal
accuracy, in the same run.

The batch: 1000 scenarios (pulse trains with rests of 0.1-30 s, staircases with 35 s rests,
GITT with 20-60 min rests; bench/_film_baselines.py). The observable: the interface
concentration at the end of every pulse and rest. The accuracy: its largest error against
the exact series, relative to the scenario's largest depletion, over the whole batch; the
target is 1e-5.

Each solver runs at the cheapest setting of a ladder that meets the target:
- ours (host_sdk.analysis.filmexact.surface_at_times: the finite-volume film stepped
  exactly from edge to edge in its eigenbasis, all scenarios as columns) on a uniform grid
  of 50, 100, 200 or 400 cells; timed on the whole batch, modes built inside the timing;
- PyBaMM (optional bench dependency: `pip install -e .[bench]`): the same film as a PyBaMM
  model (finite volumes, quadratic boundary extrapolation, IDAKLU, one solver step per
  interval as PyBaMM runs an experiment; model built outside the timing) with 50-200
  points and rtol 1e-8-1e-10; its setting chosen on 20 scenarios, then timed on 40 of each
  kind in proportion and scaled to the batch by its number of intervals of each kind;
- solve_ivp (BDF, sparse Jacobian, restarted at each edge, our grid and read-out),
  likewise on a few scenarios and scaled.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _film_baselines import (  # noqa: E402
    Case,
    PybammFilm,
    best_time,
    check_reference,
    exact_surface,
    pybamm_available,
    relative_error,
    scenarios,
    solve_ivp_surface,
)

from host_sdk.analysis import filmexact_batch  # noqa: E402
from host_sdk.analysis.filmexact import surface_at_times  # noqa: E402

TARGET = 1e-5
N_BATCH = 1000


def _ours(cases: list[Case], n_cells: int) -> list[np.ndarray]:
    filmexact_batch.film_modes.cache_clear()  # the eigen-decompositions are timed too
    return surface_at_times(
        [c.scenario for c in cases], [c.edges_s for c in cases], n_cells=n_cells
    )


def _worst(cases: list[Case], got: list[np.ndarray], exact: list[np.ndarray]) -> float:
    return max(relative_error(c, g, e) for c, g, e in zip(cases, got, exact, strict=True))


def _stratified(cases: list[Case], per_kind: dict[str, int], skip: int = 0) -> list[Case]:
    out: list[Case] = []
    for kind, n in per_kind.items():
        of_kind = [c for c in cases if c.kind == kind]
        out += of_kind[skip :: max(1, len(of_kind) // n)][:n]
    return out


def _scaled_time(
    cases: list[Case], timed: list[Case], run: Callable[[Case], Any]
) -> tuple[float, float]:
    """(seconds for the whole batch, scaled per interval of each kind; worst error on the
    timed ones) — the baseline's cost is per solver step, i.e. per interval."""
    per_interval: dict[str, list[float]] = {}
    worst = 0.0
    for c in timed:
        t0 = time.perf_counter()
        got = run(c)
        per_interval.setdefault(c.kind, []).append((time.perf_counter() - t0) / c.edges_s.size)
        worst = max(worst, relative_error(c, got, exact_surface(c)))
    total = sum(float(np.mean(per_interval[c.kind])) * c.edges_s.size for c in cases)
    return total, worst


def _pybamm_setting(calib: list[Case]) -> tuple[int, float, float]:
    """The cheapest (points, rtol) that meets the target on `calib`, and its error."""
    err = np.inf
    for n_pts, rtol in ((50, 1e-8), (100, 1e-8), (100, 1e-9), (200, 1e-9), (400, 1e-10)):
        films: dict[tuple[float, float, float], PybammFilm] = {}
        err = 0.0
        for c in calib:
            s = c.scenario
            key = (s.d_m2_s, s.thickness_m, s.c0_mol_m3)
            if key not in films:
                films[key] = PybammFilm(*key, n_pts, rtol)
            err = max(err, relative_error(c, films[key].surface_at_edges(c), exact_surface(c)))
        if err <= TARGET:
            return n_pts, rtol, err
    return n_pts, rtol, err


def run() -> list[dict[str, Any]]:
    cases = scenarios(N_BATCH)
    exact = [exact_surface(c) for c in cases]
    ref_check = check_reference(cases[::20])
    n_intervals = int(sum(c.edges_s.size for c in cases))
    kinds = {k: sum(c.kind == k for c in cases) for k in ("pulse", "staircase", "gitt")}
    described = (
        f"{N_BATCH} scenarios ({kinds['pulse']} pulse trains, {kinds['staircase']} "
        f"staircases, {kinds['gitt']} GITT with 20-60 min rests), {n_intervals} intervals; "
        f"exact series by modal recursion (agrees with the closed form to {ref_check:.1e})"
    )
    n_cells, err_ours = 400, np.inf
    for n in (50, 100, 200, 400):
        err_ours = _worst(cases, _ours(cases, n), exact)
        if err_ours <= TARGET:
            n_cells = n
            break
    t_ours = best_time(lambda: _ours(cases, n_cells))
    single = next(c for c in cases if c.kind == "pulse" and c.edges_s.size >= 40)
    t_single = best_time(lambda: _ours([single], n_cells), repeat=5)
    results: list[dict[str, Any]] = [
        {
            "name": "film_solver_scenarios_per_s",
            "value": N_BATCH / t_ours,
            "unit": "scenarios/s",
            "baseline": None,
            "ratio": None,
            "note": f"{described}; {n_cells} cells, max relative error {err_ours:.2e}, "
            f"{t_ours:.3f} s for the batch",
        }
    ]
    if pybamm_available():
        calib = _stratified(cases, {"pulse": 10, "staircase": 5, "gitt": 5})
        n_pts, rtol, err_cal = _pybamm_setting(calib)
        films: dict[tuple[float, float, float], PybammFilm] = {}

        def pybamm_run(c: Case) -> np.ndarray:
            s = c.scenario
            key = (s.d_m2_s, s.thickness_m, s.c0_mol_m3)
            if key not in films:
                films[key] = PybammFilm(*key, n_pts, rtol)  # built outside the timing below
            return films[key].surface_at_edges(c)

        for c in calib[:3] + [single]:
            pybamm_run(c)  # build each film's model (and warm up) before timing
        timed = _stratified(cases, {"pulse": 20, "staircase": 10, "gitt": 10}, skip=1)
        t_pb, err_pb = _scaled_time(cases, timed, pybamm_run)
        t_pb_single = best_time(lambda: pybamm_run(single), repeat=3)
        setting = (
            f"PyBaMM {n_pts} points, rtol {rtol:g} (its cheapest setting within {TARGET:g}: "
            f"{err_cal:.2e} on 20 scenarios, {err_pb:.2e} on the {len(timed)} timed)"
        )
        results += [
            {
                "name": "film_solver_vs_pybamm_batch",
                "value": t_pb / t_ours,
                "unit": "x",
                "baseline": t_pb,
                "ratio": t_pb / t_ours,
                "note": f"{described}. Ours {n_cells} cells, error {err_ours:.2e}, "
                f"{t_ours:.3f} s; {setting}: {len(timed)} scenarios timed, scaled per "
                f"interval to the batch: {t_pb:.1f} s. Target >= 10x. baseline = PyBaMM s.",
            },
            {
                "name": "film_solver_vs_pybamm_single",
                "value": t_pb_single / t_single,
                "unit": "x",
                "baseline": t_pb_single,
                "ratio": t_pb_single / t_single,
                "note": f"one pulse train, {single.edges_s.size} intervals: ours "
                f"{t_single * 1e3:.2f} ms, {setting}: {t_pb_single * 1e3:.1f} ms. "
                "Target >= 3x.",
            },
        ]
    else:
        results.append(
            {
                "name": "film_solver_vs_pybamm_batch",
                "value": float("nan"),
                "unit": "x",
                "baseline": None,
                "ratio": None,
                "note": "PyBaMM is not installed (pip install -e .[bench]); see the "
                "solve_ivp comparison",
            }
        )
    t_ivp, err_ivp = _scaled_time(
        cases,
        _stratified(cases, {"pulse": 4, "staircase": 2, "gitt": 2}, skip=2),
        lambda c: solve_ivp_surface(c, n_cells, 1e-9),
    )
    results.append(
        {
            "name": "film_solver_vs_solve_ivp_batch",
            "value": t_ivp / t_ours,
            "unit": "x",
            "baseline": t_ivp,
            "ratio": t_ivp / t_ours,
            "note": f"solve_ivp BDF on the same {n_cells}-cell grid, rtol 1e-9, restarted at "
            f"each edge: 8 scenarios timed (error {err_ivp:.2e}), scaled per interval to the "
            f"batch: {t_ivp:.1f} s against ours {t_ours:.3f} s.",
        }
    )
    return results


if __name__ == "__main__":
    for r in run():
        base = r["baseline"]
        ratio = r["ratio"]
        print(
            f"{r['name']:<32} {r['value']:12.4g} {r['unit']:<12} "
            f"{'-' if base is None else f'{base:.4g}':>10} "
            f"{'-' if ratio is None else f'{ratio:.3g}':>8}"
        )
        print(f"    {r['note']}")
