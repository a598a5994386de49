"""GITT on synthetic recordings made by the film solver."""

import warnings

import numpy as np
import pytest

from host_sdk.analysis import (
    FilmScenario,
    GittAssumptionWarning,
    PiecewiseCurrent,
    analyze_gitt,
    detect_pulses,
    solve_film,
)

D, L, C0 = 1e-13, 10e-6, 10_000.0
AREA_M2, R_OHM = 1e-4, 5.0


def _recording(pulse_s: float, rest_s: float, n_pulses: int = 2, dt: float = 0.1):
    edges, vals = [], []
    t = 100.0
    for _ in range(n_pulses):
        edges += [t, t + pulse_s]
        vals += [1.0, 0.0]
        t += pulse_s + rest_s
    hist = PiecewiseCurrent(edges, vals)
    r = solve_film(FilmScenario(D, L, hist, C0), t_end_s=t, dt_s=dt, n_cells=200)
    current_a = hist.current(r.t_s) * AREA_M2
    ocv_v = 3.0 + 0.5 * (r.surface_mol_m3[:, 0] - C0) / C0  # surface concentration → OCV
    voltage_v = ocv_v - current_a * R_OHM  # plus the IR drop during the pulse
    return r.t_s, current_a, voltage_v


def test_detect_pulses() -> None:
    t = np.arange(10.0)
    i = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], float)
    assert detect_pulses(t, i) == [(2, 4), (7, 8)]


def test_gitt_recovers_d_within_5_percent_and_removes_ir() -> None:
    t, i, v = _recording(pulse_s=10.0, rest_s=1200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GittAssumptionWarning)
        res = analyze_gitt(t, i, v, L)
    assert len(res) == 2
    for p in res:
        assert p.d_m2_s == pytest.approx(D, rel=0.05)
        assert p.ir_drop_v == pytest.approx(-1e-4 * R_OHM, rel=0.05)
        assert p.assumptions_ok
        assert p.tau_s == pytest.approx(10.0, abs=1e-3)  # switch times fitted between samples


def test_gitt_warns_when_pulse_too_long() -> None:
    t, i, v = _recording(pulse_s=300.0, rest_s=1200.0, n_pulses=1, dt=0.5)
    with pytest.warns(GittAssumptionWarning, match="not ≪ L²/D"):
        res = analyze_gitt(t, i, v, L)
    assert not res[0].assumptions_ok
    assert res[0].tau_d_over_l2 > 0.1
