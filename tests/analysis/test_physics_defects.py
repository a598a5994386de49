"""Closed-form and planner defects (issue 13): sphere stress moments from r = 0, Sand's
time for plating and for C_crit ≥ C₀, and the planner's plateau."""

from __future__ import annotations

import numpy as np
import pytest

from host_sdk.analysis import FARADAY_C_MOL, FilmMaterial, plan_rest, sand_time_s, sphere_stress_pa

OMEGA, E_PA, NU = 3.1e-6, 15e9, 0.3
K = OMEGA * E_PA / (3 * (1 - NU))


def _cell_centred(radius: float, n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) * radius / n


def test_uniform_concentration_on_a_cell_centred_grid_is_stress_free() -> None:
    r = _cell_centred(5e-6, 50)
    sr, st = sphere_stress_pa(r, np.full(r.size, 12_870.0), OMEGA, E_PA, NU, radius_m=5e-6)
    # the moments started at r[0]: σ_r = 190 MPa, σ_θ = −95 MPa at the first centre
    assert np.max(np.abs(sr)) < 1e-3 and np.max(np.abs(st)) < 1e-3


@pytest.mark.parametrize("grid", ["cell-centred", "nodal"])
def test_parabolic_profile_matches_the_closed_form(grid: str) -> None:
    # c = c₀ + βr²: σ_r = 2kβ(R² − r²)/5, σ_θ = 2kβ(R² − 2r²)/5 (57 MPa at the centre here)
    radius, n = 5e-6, 40
    r = _cell_centred(radius, n) if grid == "cell-centred" else np.linspace(0, radius, n)
    beta = 6_430.0 / radius**2
    sr, st = sphere_stress_pa(r, 1000 + beta * r**2, OMEGA, E_PA, NU, radius_m=radius)
    np.testing.assert_allclose(sr, 2 * K * beta * (radius**2 - r**2) / 5, atol=1e-6 * 57e6)
    np.testing.assert_allclose(st, 2 * K * beta * (radius**2 - 2 * r**2) / 5, atol=1e-6 * 57e6)
    assert 2 * K * beta * radius**2 / 5 == pytest.approx(56.9e6, rel=1e-3)


def test_sand_time_for_plating_is_never_and_above_c0_is_now() -> None:
    assert sand_time_s(10.0, 1e-9, 1000.0) == pytest.approx(73_116.0, rel=1e-6)
    assert np.isinf(sand_time_s(-10.0, 1e-9, 1000.0))  # plating raises the surface
    assert np.isinf(sand_time_s(0.0, 1e-9, 1000.0))
    assert sand_time_s(10.0, 1e-9, 1000.0, c_crit_mol_m3=1500.0) == 0.0  # already below
    got = sand_time_s([10.0, -10.0, 100.0], 1e-9, 1000.0)
    np.testing.assert_allclose(got, [73_116.008, np.inf, 731.16008], rtol=1e-6)


F_CONTACT = 0.05
THICK = FilmMaterial(1e-9, 500e-6, 1000.0, 0.0, contact_fraction=F_CONTACT)  # L²/π²D = 25 s
I_A_M2 = 7.6e-3 * FARADAY_C_MOL * F_CONTACT


def test_planner_detects_an_unreached_plateau_and_recommends_the_same_rest() -> None:
    # the old planner took the capacity at the longest rest tested as the plateau, so its
    # recommendation followed the range tested (4.9 s up to 10 s, 3.6 s up to 5 s)
    to_10 = plan_rest(THICK, I_A_M2, 1.0, (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0))
    to_5 = plan_rest(THICK, I_A_M2, 1.0, (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0))
    assert not to_10.plateau_reached and not to_5.plateau_reached
    assert to_10.plateau_c_m2 == pytest.approx(to_5.plateau_c_m2, rel=1e-9)
    assert to_10.plateau_c_m2 > 1.05 * to_10.capacity_c_m2.max()
    assert to_5.recommended_rest_s == pytest.approx(to_10.recommended_rest_s, rel=0.01)
    assert 5.0 < to_10.recommended_rest_s < 10.0
