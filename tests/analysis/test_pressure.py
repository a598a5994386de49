import numpy as np
import pytest

from host_sdk.analysis import (
    correct_creep,
    correct_temperature,
    cumulative_charge_c,
    fit_load_cell,
    fit_log_creep,
    normalized_capacity,
    pressure_pa,
    pressure_phases,
)


def test_load_cell_least_squares_with_residuals() -> None:
    rng = np.random.default_rng(0)
    loads = np.array([0.0, 200.0, 500.0, 1000.0, 2000.0])
    tare, span = 81234.0, 0.0125
    counts = tare + loads / span + rng.normal(0, 20, loads.size)
    cal = fit_load_cell(counts, loads)
    assert cal.span_n_per_count == pytest.approx(span, rel=1e-3)
    assert cal.tare_counts == pytest.approx(tare, abs=100)
    assert cal.residuals_n.shape == loads.shape
    assert cal.rms_residual_n < 1.0
    np.testing.assert_allclose(cal.force_n(counts) - loads, cal.residuals_n)
    fixed = fit_load_cell(counts[1:], loads[1:], tare_counts=tare)
    assert fixed.tare_counts == tare
    assert fixed.span_n_per_count == pytest.approx(span, rel=1e-3)


def test_creep_and_temperature_corrections_roundtrip() -> None:
    t = np.linspace(0, 3600, 200)
    f_true = 1000.0
    f_meas = f_true * (1 + 0.004 * np.log10(1 + t / 1.0))
    f0, c = fit_log_creep(t, f_meas)
    assert f0 == pytest.approx(f_true) and c == pytest.approx(0.004)
    np.testing.assert_allclose(correct_creep(f_meas, t, c), f_true)
    temp = np.linspace(20, 40, 50)
    meas = (f_true * (1 + 1e-4 * (temp - 25))) + 0.5 * (temp - 25)
    np.testing.assert_allclose(correct_temperature(meas, temp, 25.0, 0.5, 1e-4), f_true)


def test_coulomb_counting_and_normalized_capacity() -> None:
    t = np.linspace(0, 3600, 3601)
    i = np.full(t.size, -2e-3)  # lithiation as negative current
    q = cumulative_charge_c(t, i)
    assert q[-1] == pytest.approx(-7.2)
    qn = normalized_capacity(t, i)
    assert qn[0] == 0 and qn[-1] == 1 and qn[1800] == pytest.approx(0.5)


def test_ga_in_like_curve_reproduces_seed_001_rates() -> None:
    # seed 001 Ga-In: 0.61 → 1.07 MPa from q = 0.58 to 0.82, then → 1.23 MPa at q = 1
    q = np.linspace(0, 1, 3000)
    knots_q = [0.0, 0.1, 0.58, 0.82, 1.0]
    knots_p = [0.0, 0.45, 0.61, 1.07, 1.23]
    rng = np.random.default_rng(3)
    p = np.interp(q, knots_q, knots_p) + rng.normal(0, 0.002, q.size)
    ph = pressure_phases(q, pressure_pa(p * 1e6, 1.0))
    assert ph.n_segments == 4
    np.testing.assert_allclose(ph.breaks_q, [0.1, 0.58, 0.82], atol=0.01)
    assert ph.rates_mpa_per_q[2] == pytest.approx(1.91, abs=0.03)  # seed: 1.91 MPa per q
    assert ph.max_rate_mpa_per_q == pytest.approx(4.5, abs=0.1)
    assert ph.total_rise_mpa == pytest.approx(1.23, abs=0.01)
