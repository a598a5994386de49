"""Finite-volume film solver: against the series solution, convergence order, mass."""

import numpy as np
import pytest

from host_sdk.analysis import (
    FARADAY_C_MOL,
    FilmScenario,
    PiecewiseCurrent,
    PulseTrain,
    slab_profile_mol_m3,
    slab_surface_mol_m3,
    solve_film,
    solve_film_batch,
)

D, L, C0 = 1e-9, 100e-6, 1000.0
TRAIN = PulseTrain(10.0, 1.0, 1.0, n_pulses=5)
T_CHECK = np.array([1.0, 2.0, 3.0, 5.0, 6.0])


def test_fv_matches_domain_slab_values() -> None:
    sc = FilmScenario(D, L, PiecewiseCurrent([0.0], [10.0]), C0)
    r = solve_film(sc, t_end_s=50.0, dt_s=0.005, n_cells=400)
    idx = np.round(np.array([1.0, 5.0, 10.0, 50.0]) / 0.005).astype(int)
    want = [996.30176, 991.37821, 986.18108, 944.72390]
    np.testing.assert_allclose(r.surface_mol_m3[idx, 0], want, atol=2e-5)


def _surface_errors(n_cells: int, dt: float, restart: bool = True) -> float:
    r = solve_film(
        FilmScenario(D, L, TRAIN, C0), t_end_s=6.0, dt_s=dt, n_cells=n_cells, restart=restart
    )
    idx = np.round(T_CHECK / dt).astype(int)
    exact = slab_surface_mol_m3(T_CHECK, TRAIN, D, L, C0)
    return float(np.max(np.abs(r.surface_mol_m3[idx, 0] - exact)))


def _orders(errs: list[float]) -> np.ndarray:
    e = np.asarray(errs)
    return np.log2(e[:-1] / e[1:])


def test_second_order_in_space_on_pulse_train() -> None:
    errs = [_surface_errors(n, 0.002) for n in (10, 20, 40)]
    assert np.all(_orders(errs) > 1.8), errs


def test_profile_second_order_in_space() -> None:
    errs = []
    for n in (10, 20, 40):
        r = solve_film(FilmScenario(D, L, TRAIN, C0), t_end_s=3.0, dt_s=0.002, n_cells=n)
        x = r.x_centres_m[0]
        exact = slab_profile_mol_m3(x, 3.0, TRAIN, D, L, C0)
        errs.append(float(np.max(np.abs(r.final_mol_m3[0] - exact))))
    assert np.all(_orders(errs) > 1.8), errs


def test_second_order_in_time_with_restart_and_degraded_without() -> None:
    dts = (0.1, 0.05, 0.025, 0.0125)
    with_rs = [_surface_errors(800, dt) for dt in dts]
    without = [_surface_errors(800, dt, restart=False) for dt in dts]
    assert np.all(_orders(with_rs) > 1.7), with_rs
    # plain CN rings after every current edge (r = DΔt/h² ≫ 1): order ≈ 1 and far larger error
    assert np.mean(_orders(without)) < 1.5, without
    assert without[0] > 20 * with_rs[0]


def test_mass_conservation_to_1e_10() -> None:
    f = 0.2
    scen = [
        FilmScenario(D, L, PulseTrain(10.0 * k, 1.0, 0.5 * k), C0, contact_fraction=f)
        for k in (1, 2, 3)
    ]
    r = solve_film_batch(scen, t_end_s=30.0, dt_s=0.01, n_cells=50, record_every=100)
    for k, s in enumerate(scen):
        depleted = (C0 - r.final_mol_m3[k].mean()) * L
        expected = r.charge_c_m2[k] / (s.z * FARADAY_C_MOL * f)
        assert expected > 0.05 * C0 * L
        assert depleted == pytest.approx(expected, rel=1e-10)


def test_batch_equals_individual_runs_and_groups_factorisations() -> None:
    scen = [
        FilmScenario(D, L, PulseTrain(10.0, 1.0, 0.5), C0),
        FilmScenario(2 * D, L, PulseTrain(20.0, 0.5, 1.0), C0),
        FilmScenario(D, L, PiecewiseCurrent([0.0, 2.0], [5.0, 0.0]), C0),
        FilmScenario(D, 2 * L, PulseTrain(10.0, 1.0, 0.5), C0),
    ]
    batch = solve_film_batch(scen, t_end_s=4.0, dt_s=0.01, n_cells=40)
    assert batch.n_factorisations == 3
    for k, s in enumerate(scen):
        one = solve_film(s, t_end_s=4.0, dt_s=0.01, n_cells=40)
        np.testing.assert_allclose(batch.surface_mol_m3[:, k], one.surface_mol_m3[:, 0], rtol=1e-13)


def test_stop_at_critical_concentration_matches_sand_time() -> None:
    # semi-infinite-like film (L ≫ √(Dt)): the interface hits C_crit at Sand's time
    i = 100.0
    c_crit = 500.0
    tau = np.pi * D * (FARADAY_C_MOL * (C0 - c_crit)) ** 2 / (4 * i * i)
    sc = FilmScenario(D, 2e-3, PiecewiseCurrent([0.0], [i]), C0)
    r = solve_film_batch(
        [sc],
        t_end_s=2 * tau,
        dt_s=tau / 2000,
        n_cells=2000,
        c_crit_mol_m3=c_crit,
        stop_at_crit=True,
    )
    assert r.t_crit_s[0] == pytest.approx(tau, rel=2e-3)
    assert r.capacity_c_m2[0] == pytest.approx(i * tau, rel=2e-3)
