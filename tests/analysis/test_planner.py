"""Pulse-protocol planner: critical capacity rises with rest and levels off (seed 004)."""

import numpy as np
import pytest

from host_sdk.analysis import (
    FARADAY_C_MOL,
    FilmMaterial,
    critical_capacity_map_c_m2,
    plan_rest,
    recommend_rest_s,
)

F_CONTACT = 0.05
MAT = FilmMaterial(1e-9, 350e-6, 1000.0, 0.0, contact_fraction=F_CONTACT)
I_A_M2 = 7.6e-3 * FARADAY_C_MOL * F_CONTACT  # local flux 7.6e-3 mol m⁻² s⁻¹
RESTS = (0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)


@pytest.fixture(scope="module")
def plan():
    return plan_rest(MAT, I_A_M2, 1.0, RESTS, fraction=0.9, n_cells=100)


def test_capacity_increases_with_rest(plan) -> None:
    cap = plan.capacity_c_m2
    assert np.all(np.isfinite(cap))
    assert np.all(np.diff(cap) >= -1e-6 * cap[-1])
    assert cap[-1] > 2.0 * cap[0]
    assert np.all(cap <= plan.theoretical_capacity_c_m2)


def test_capacity_plateaus(plan) -> None:
    cap = dict(zip(RESTS, plan.capacity_c_m2, strict=True))
    early = cap[2.0] - cap[0.0]
    late = cap[20.0] - cap[10.0]
    assert late < 0.15 * early


def test_recommended_rest_is_sensible(plan) -> None:
    # longer than the pulse, shorter than the longest rest tried, and really ≥ 90 %
    assert 1.0 < plan.recommended_rest_s < 10.0
    rec = plan.recommended_rest_s
    cap_at, cap_before = critical_capacity_map_c_m2(MAT, I_A_M2, [1.0], [rec, 0.99 * rec])[0]
    assert cap_at >= 0.9 * plan.plateau_c_m2 > cap_before  # the shortest rest that does
    assert plan.plateau_reached  # 20 s rests: within 2 % of the fully relaxed plateau


def test_recommend_rest_interpolates() -> None:
    assert recommend_rest_s([0, 1, 2, 4], [1, 5, 9, 10], 0.8) == pytest.approx(1.75)
    assert recommend_rest_s([0, 1], [10, 10], 0.9) == 0.0
