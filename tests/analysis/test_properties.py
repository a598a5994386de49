"""Hypothesis property tests."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.analysis import compensated_strain, pressure_phases, sphere_stress_pa

finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    c=st.floats(0.0, 1e5),
    radius_m=st.floats(1e-8, 1e-3),
    n=st.integers(3, 200),
    omega=st.floats(1e-7, 1e-5),
    e_pa=st.floats(1e8, 3e11),
    nu=st.floats(0.0, 0.49),
)
def test_uniform_concentration_gives_zero_sphere_stress(
    c: float, radius_m: float, n: int, omega: float, e_pa: float, nu: float
) -> None:
    r = np.linspace(0.0, radius_m, n)
    sr, st_ = sphere_stress_pa(r, np.full(n, c), omega, e_pa, nu)
    scale = omega * e_pa * max(c, 1.0)
    assert np.max(np.abs(sr)) <= 1e-12 * scale
    assert np.max(np.abs(st_)) <= 1e-12 * scale


@given(
    shift_m=st.lists(st.floats(-5e-9, 5e-9), min_size=1, max_size=50),
    lam_m=st.floats(1500e-9, 1600e-9),
    p_e=st.floats(0.1, 0.3),
)
def test_identical_sensing_and_reference_shift_gives_zero_strain(
    shift_m: list[float], lam_m: float, p_e: float
) -> None:
    eps = compensated_strain(shift_m, lam_m, shift_m, lam_m, p_e)
    assert np.all(eps == 0.0)


@st.composite
def piecewise_curves(draw: st.DrawFn) -> tuple[np.ndarray, list[float]]:
    n_breaks = draw(st.integers(1, 3))
    breaks: list[float] = []
    while len(breaks) < n_breaks:
        b = draw(st.floats(0.1, 0.9))
        if all(abs(b - o) >= 0.15 for o in breaks):
            breaks.append(b)
    breaks.sort()
    slopes = [draw(st.floats(-3.0, 6.0))]
    for _ in range(n_breaks):
        delta = draw(st.floats(1.0, 4.0)) * draw(st.sampled_from([-1.0, 1.0]))
        slopes.append(slopes[-1] + delta)
    return np.asarray(slopes), breaks


@settings(max_examples=40, deadline=None)
@given(curve=piecewise_curves(), p0=st.floats(0.1, 20.0), seed=st.integers(0, 2**31))
def test_segmentation_recovers_breakpoints(
    curve: tuple[np.ndarray, list[float]], p0: float, seed: int
) -> None:
    slopes, breaks = curve
    q = np.linspace(0.0, 1.0, 400)
    knots = np.concatenate(([0.0], breaks, [1.0]))
    p_knots = p0 + np.concatenate(([0.0], np.cumsum(slopes * np.diff(knots))))
    rng = np.random.default_rng(seed)
    p_mpa = np.interp(q, knots, p_knots) + rng.normal(0.0, 0.003, q.size)
    ph = pressure_phases(q, p_mpa * 1e6)
    assert ph.n_segments == len(breaks) + 1
    np.testing.assert_allclose(ph.breaks_q, breaks, atol=0.02)
    np.testing.assert_allclose(ph.rates_mpa_per_q, slopes, atol=0.15)
