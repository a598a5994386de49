"""The default FBG peak method (issue 13): a weighted multi-point Gaussian fit, about as
quiet as a full least-squares fit and vectorised, instead of the three-point one."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from host_sdk.analysis import find_peaks_m, refine_peak_m, track_gratings_m

WL = np.arange(1549.0, 1551.0, 0.005) * 1e-9  # 5 pm sampling
SIGMA = 0.1e-9 / 2.355  # 100 pm FWHM grating
WINDOW = [(1549.5e-9, 1550.5e-9)]


def _spectra(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = 1550e-9 + rng.uniform(-20e-12, 20e-12, n)
    s = 0.05 + np.exp(-0.5 * ((WL[None, :] - mu[:, None]) / SIGMA) ** 2)
    return mu, s + rng.normal(0.0, noise, s.shape)


def _rms_microstrain(got: np.ndarray, mu: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((got - mu) / 1550e-9 / 0.78 * 1e6) ** 2)))


def test_default_peak_method_is_nearly_as_quiet_as_least_squares() -> None:
    for fn in (refine_peak_m, find_peaks_m, track_gratings_m):
        assert inspect.signature(fn).parameters["method"].default == "gaussian_fit"
    mu, s = _spectra(40, 0.01)
    default = _rms_microstrain(track_gratings_m(WL, s, WINDOW)[:, 0], mu)
    lsq = _rms_microstrain(track_gratings_m(WL, s, WINDOW, method="lsq")[:, 0], mu)
    centroid = _rms_microstrain(track_gratings_m(WL, s, WINDOW, method="centroid")[:, 0], mu)
    three = _rms_microstrain(track_gratings_m(WL, s, WINDOW, method="gaussian3")[:, 0], mu)
    assert default < 1.25 * lsq < centroid < three, (default, lsq, centroid, three)


def test_multi_point_fit_is_exact_without_noise_and_agrees_frame_by_frame() -> None:
    mu, s = _spectra(5, 0.0)
    s -= 0.05  # no baseline: a Gaussian, which a parabola on ln I fits exactly
    got = track_gratings_m(WL, s, WINDOW, method="gaussian_fit")[:, 0]
    np.testing.assert_allclose(got, mu, atol=1e-16)
    one = [refine_peak_m(WL, f, int(np.argmax(f)), "gaussian_fit") for f in s]
    np.testing.assert_allclose(one, mu, atol=1e-16)
    assert find_peaks_m(WL, s[0])[0] == pytest.approx(mu[0], abs=1e-16)
