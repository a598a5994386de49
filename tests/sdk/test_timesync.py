"""The device-clock -> UTC mapping fitted from timesync exchanges (host_sdk.timesync)."""

from __future__ import annotations

import numpy as np
import pytest

from host_sdk.timesync import ClockSync


def _exchanges(
    sync: ClockSync, utc0: float, drift: float, n: int, seed: int = 1
) -> list[tuple[float, float, float]]:
    """A board whose clock reads d at true UTC utc0 + (1 + drift) d; each exchange has a
    random outbound and return latency (asymmetric, 0.1 .. 5 ms)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        d = 0.5 * k + 0.01 * rng.random()
        t_board = utc0 + (1 + drift) * d
        t0 = t_board - rng.uniform(1e-4, 5e-3)
        t1 = t_board + rng.uniform(1e-4, 5e-3)
        sync.add(t0, t1, d)
        out.append((t0, t1, d))
    return out


def test_offset_and_drift_are_recovered_within_the_stated_uncertainty() -> None:
    sync = ClockSync()
    utc0, drift = 1.78e9, 40e-6  # a crystal 40 ppm fast
    ex = _exchanges(sync, utc0, drift, 200)
    m = sync.mapping()
    assert m is not None and m.exchanges == 200
    assert m.drift == pytest.approx(drift, abs=5e-6)
    for d in (0.0, 50.0, 99.0):  # every mapped time within the stated uncertainty
        true = utc0 + (1 + drift) * d
        assert abs(m.utc_s(d) - true) <= m.uncertainty_s + 1e-6
    # and no exchange contradicts the line by more than the uncertainty
    for t0, t1, d in ex:
        assert t0 - m.uncertainty_s <= m.utc_s(d) <= t1 + m.uncertainty_s
    assert m.uncertainty_s < 5e-3 and m.min_rtt_s > 0


def test_one_exchange_gives_an_offset_and_a_reboot_forgets() -> None:
    sync = ClockSync()
    assert sync.mapping() is None
    sync.add(100.0, 100.02, 5.0)
    m = sync.mapping()
    assert m is not None and m.utc_at_zero_s == pytest.approx(95.01) and m.drift == 0.0
    assert m.uncertainty_s == pytest.approx(0.01)
    sync.reset()
    assert sync.mapping() is None
    with pytest.raises(ValueError):
        sync.add(2.0, 1.0, 0.0)  # answered before it was sent
