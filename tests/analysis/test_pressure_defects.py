"""Pressure-phase defects (issue 13): total rise as maximum − minimum, and no extra phase
of the same slope on a noise-free curve."""

from __future__ import annotations

import numpy as np
import pytest

from host_sdk.analysis import pressure_phases

Q = np.linspace(0.0, 1.0, 400)


def test_total_rise_is_maximum_minus_minimum() -> None:
    # Sn-like (seed 001): the pressure dips before it rises, 0.46 MPa at q = 0.56 to
    # 3.07 MPa at the end; the total rise is from the dip, the net change from the start
    p = np.interp(Q, [0.0, 0.3, 0.56, 1.0], [1.0, 0.2, 0.46, 3.07])
    ph = pressure_phases(Q, p * 1e6)
    assert ph.total_rise_mpa == pytest.approx(2.87, abs=1e-6)
    assert ph.net_change_mpa == pytest.approx(2.07, abs=1e-6)


@pytest.mark.parametrize(
    ("knots_q", "knots_p"),
    [
        ([0.0, 0.58, 0.82, 1.0], [0.378, 0.61, 1.07, 1.23]),
        ([0.0, 0.1, 0.58, 0.82, 1.0], [0.0, 0.45, 0.61, 1.07, 1.23]),
        ([0.0, 0.3, 0.56, 1.0], [1.0, 0.2, 0.46, 3.07]),
    ],
)
def test_noise_free_curve_gets_exactly_its_phases(knots_q: list, knots_p: list) -> None:
    ph = pressure_phases(Q, np.interp(Q, knots_q, knots_p) * 1e6)
    assert ph.n_segments == len(knots_q) - 1, ph.rates_mpa_per_q
    np.testing.assert_allclose(ph.breaks_q, knots_q[1:-1], atol=2e-3)
    np.testing.assert_allclose(ph.rates_mpa_per_q, np.diff(knots_p) / np.diff(knots_q), rtol=1e-3)
