"""Adaptive rests on the emulated board against the plant's true relaxation.

The real firmware runs a pulse series with adaptive rests on the emulated cell (ADC noise
and quantisation included). The test replays the board's own current edges on a CPython
plant built from the same scenario (the hidden parameters) and finds, noise-free, when the
true |dV/dt| fell to the threshold after each pulse. Every rest must end between that
time plus the hold and that time plus the hold and two estimator windows (the block-mean
estimator lags by about one window; block ends round the hold up by less than one more).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boards.emulated.plant import Plant
from host_sdk.client import Rig
from host_sdk.loops import Settle, adaptive_pulses, rest_ends
from protocol import defs

SCEN = Path(__file__).resolve().parents[2] / "boards" / "emulated" / "scenarios"
THR, HOLD, WIN = 5e-4, 0.5, 0.5


def true_settle_s(plant: Plant, t_rest_us: int, thr: float, limit_s: float) -> float:
    """Seconds after t_rest_us until the noise-free |dV/dt| first falls to thr (10 ms grid,
    central differences over +-5 ms)."""
    step, h = 10_000, 5_000
    t = t_rest_us + h
    while t < t_rest_us + limit_s * 1e6:
        plant.advance(t - h)
        v0 = plant.voltage()
        plant.advance(t + h)
        v1 = plant.voltage()
        if abs(v1 - v0) / (2 * h * 1e-6) <= thr:
            return (t - t_rest_us) / 1e6
        t += step
    raise AssertionError("the plant did not relax within the limit")


@pytest.fixture(scope="module")
def run() -> tuple[list, list]:
    try:
        rig = Rig.open("emu://nak50_pulsed?seed=7")
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    with rig:
        for s in ("load", "fbg", "temp"):
            rig.configure_stream(s, rate_hz=1, enabled=False)
        rig.configure_stream("elec", rate_hz=100)
        rig.set_streaming(True)
        mark = rig.event_mark()
        settle = Settle(dvdt_v_per_s=THR, hold_s=HOLD, min_s=0.0, max_s=30.0, window_s=WIN)
        adaptive_pulses(rig, amplitude_a=3e-4, t_on_s=1.0, count=6, settle=settle)
        end = rig.wait_event((defs.EV_WAVEFORM_END,), after=mark, timeout_s=300)
        assert end is not None and end.cause == defs.CAUSE_COMPLETED
        edges = [e for e in rig.events[mark:] if e.code == defs.EV_EDGE]
        return edges, rest_ends(rig, mark)


def test_each_rest_ends_after_the_true_relaxation_within_the_estimator_delay(run) -> None:
    edges, rests = run
    assert len(rests) == 6 and all(r.settled for r in rests)
    sc = json.loads((SCEN / "nak50_pulsed.json").read_text())
    plant = Plant(sc)
    t_first = edges[0].t_s
    us = [round((e.t_s - t_first) * 1e6) + 1_000_000 for e in edges]
    dec = [round((r.t_s - t_first) * 1e6) + 1_000_000 for r in rests]
    k = 0
    for e, t_us in zip(edges, us, strict=True):
        plant.set_current(float(e.value), t_us)
        if e.value == 0.0:  # a rest starts: the board's decision must follow the truth
            t_true = true_settle_s(plant, t_us, THR, 30.0)
            t_board = (dec[k] - t_us) / 1e6
            print(f"rest {k}: true relaxation {t_true:.2f} s, board ended it at {t_board:.2f} s")
            assert t_true + HOLD <= t_board <= t_true + HOLD + 2 * WIN + 0.05, (k, t_true, t_board)
            assert rests[k].length_s == pytest.approx(t_board, abs=2e-3)
            k += 1
    assert k == 6
