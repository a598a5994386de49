from pathlib import Path

import numpy as np

from host_sdk.analysis import FilmScenario, PulseTrain, pressure_phases, solve_film
from host_sdk.analysis.planner import RestPlan
from host_sdk.analysis.plots import (
    plot_capacity_vs_rest,
    plot_concentration_profiles,
    plot_fbg_time_series,
    plot_pressure_vs_capacity,
)


def _is_png(p: Path) -> bool:
    return p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_all_plots_write_pngs(tmp_path: Path) -> None:
    q = np.linspace(0, 1, 300)
    p = np.interp(q, [0, 0.5, 1], [1e6, 1.5e6, 3e6])
    v = 0.8 - 0.7 * q
    out = plot_pressure_vs_capacity(q, p, v, pressure_phases(q, p), tmp_path / "p.png")
    assert _is_png(out)

    t = np.linspace(0, 7200, 200)
    out = plot_fbg_time_series(
        t,
        1e-4 * np.sin(t / 1e3),
        np.cos(t / 1e3),
        3 + 0.1 * np.sin(t / 500),
        tmp_path / "f.png",
        stress_pa=1e6 * np.sin(t / 1e3),
    )
    assert _is_png(out)

    r = solve_film(
        FilmScenario(1e-9, 1e-4, PulseTrain(10.0, 1.0, 1.0), 1000.0),
        t_end_s=4.0,
        dt_s=0.01,
        n_cells=50,
        profile_times_s=[0.5, 1.0, 1.5, 2.0, 3.0],
    )
    out = plot_concentration_profiles(
        r.x_centres_m[0],
        [pr[:, 0] for pr in r.profiles_mol_m3],
        list(r.profile_times_s),
        tmp_path / "c.png",
    )
    assert _is_png(out)

    plan = RestPlan(
        rest_s=np.array([0, 1, 2, 5, 10.0]),
        pulse_s=1.0,
        capacity_c_m2=np.array([1, 5, 8, 9, 9.2]) * 36_000,
        plateau_c_m2=9.2 * 36_000,
        fraction=0.9,
        recommended_rest_s=2.6,
        theoretical_capacity_c_m2=40 * 36_000,
    )
    assert _is_png(plot_capacity_vs_rest(plan, tmp_path / "r.png"))
