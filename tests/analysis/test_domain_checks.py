"""Every check table of DOMAIN.md (§2-§6), to the digits given there."""

import numpy as np
import pytest

from host_sdk.analysis import (
    PulseTrain,
    compensated_strain,
    die_area_m2,
    force_for_pressure_n,
    sand_time_s,
    semi_infinite_profile_mol_m3,
    semi_infinite_surface_mol_m3,
    shift_from_strain_m,
    shift_from_temperature_m,
    slab_surface_mol_m3,
    stoney_stress_pa,
    strain_from_shift,
    stress_equibiaxial_pa,
    stress_uniaxial_pa,
    superposed_surface_mol_m3,
    thin_film_stress_pa,
    weppner_huggins_d_m2_s,
)

D, C0 = 1e-9, 1000.0


def test_force_for_20_mpa_on_9mm_die() -> None:
    area = die_area_m2(9e-3)
    assert round(area * 1e6, 2) == 63.62
    assert round(force_for_pressure_n(20e6, area), 1) == 1272.3


def test_fbg_strain_shift() -> None:
    assert round(float(shift_from_strain_m(100e-6, 1550e-9)) * 1e12, 1) == 120.9
    assert round(float(strain_from_shift(120.9e-12, 1550e-9)) * 1e6, 1) == 100.0


def test_fbg_thermal_shift() -> None:
    assert round(float(shift_from_temperature_m(1.0, 1550e-9, 7.25e-6)) * 1e12, 2) == 11.24


def test_fbg_reference_compensation() -> None:
    eps = compensated_strain(150e-12, 1550e-9, 100e-12, 1550e-9)
    assert round(float(eps) * 1e6, 1) == 41.4


def test_fbg_stress() -> None:
    assert round(float(stress_uniaxial_pa(100e-6, 10e9)) / 1e6, 2) == 1.00
    assert round(float(stress_equibiaxial_pa(100e-6, 10e9, 0.3)) / 1e6, 2) == 1.43


def test_sand_time() -> None:
    t = sand_time_s([10.0, 100.0], D, C0)
    assert round(float(t[0]), 1) == 73116.0
    assert round(float(t[1]), 2) == 731.16


def test_semi_infinite_surface() -> None:
    assert round(float(semi_infinite_surface_mol_m3(10.0, 10.0, D, C0)), 4) == 988.3052
    # the profile formula with ierfc agrees at x = 0 and relaxes to C0 far away
    assert semi_infinite_profile_mol_m3(0.0, 10.0, 10.0, D, C0) == pytest.approx(988.3051740)
    assert semi_infinite_profile_mol_m3(1e-3, 10.0, 10.0, D, C0) == pytest.approx(C0)


def test_slab_series() -> None:
    got = slab_surface_mol_m3([1.0, 5.0, 10.0, 50.0], 10.0, D, 100e-6, C0)
    assert list(np.round(got, 5)) == [996.30176, 991.37821, 986.18108, 944.72390]


def test_pulse_superposition() -> None:
    got = superposed_surface_mol_m3([1, 2, 3, 5, 6], PulseTrain(10.0, 1.0, 1.0), D, C0)
    assert list(np.round(got, 4)) == [996.3018, 998.4681, 995.1263, 994.2533, 996.6879]


def test_thin_film_stress() -> None:
    assert round(float(thin_film_stress_pa(28700, 3.1e-6, 15e9, 0.3)) / 1e6, 1) == -635.5


def test_stoney() -> None:
    s = stoney_stress_pa(0.01, 130e9, 0.28, 500e-6, 100e-9)
    assert round(float(s) / 1e6, 1) == 752.3


def test_weppner_huggins() -> None:
    d = weppner_huggins_d_m2_s(600.0, 10e-6, 5e-3, 20e-3)
    assert float(f"{d:.4e}") == 1.3263e-14
