"""Adaptive rests on the emulated board against the plant's true relaxation.

The real firmware runs a pulse series with adaptive rests on the emulated cell (ADC noise
and quantisation included). The test replays the board's own current edges on a CPython
plant built from the same scenario (the hidden parameters) and runs the board's estimator
noise-free on it: the difference of the last two block means of the voltage, one block of
WIN seconds of 10 ms readings, judged at each block end on the rest's own grid. The
estimate's noise is known (sigma of a reading: ADC noise and quantisation), so the board
must end each rest:
- not before HOLD after the first block end whose noise-free estimate is within Z sigma of
  the threshold (it cannot have seen the cell relaxed earlier, short of a Z-sigma draw);
- not later than HOLD after the first block end from which every noise-free estimate is Z
  sigma under the threshold (from there it must have seen the cell relaxed).
A firmware that lags one block more, or ignores the hold, lands outside. A window of two
blocks is left to the noise: near the threshold the decision is a coin toss, and a fixed
bound of two windows failed about one run in 25 (a block 2.5 sigma under the threshold
still reads over it 0.7 % of the time).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from boards.emulated.plant import Plant
from host_sdk.client import Rig
from host_sdk.loops import Settle, adaptive_pulses, rest_ends
from protocol import defs

SCEN = Path(__file__).resolve().parents[2] / "boards" / "emulated" / "scenarios"
THR, HOLD, WIN = 5e-4, 0.5, 0.5
PERIOD_US = 10_000  # the elec stream at 100 Hz
K = round(WIN * 1e6 / PERIOD_US)  # readings per block
Z = 4.0  # sigmas of the estimate left to the noise


def estimate_sigma_v_per_s(sc: dict) -> float:
    """Standard deviation of the block-difference slope estimate: per-reading noise (the
    scenario's ADC noise and the board's quantisation step, boards/emulated/board.py)."""
    src = sc["source"]
    lsb = 2.0 * float(src["voltage_range_v"]) / 65536.0
    sigma = math.hypot(float(src["voltage_noise_v"]), lsb / math.sqrt(12.0))
    return sigma * math.sqrt(2.0 / K) / (K * PERIOD_US * 1e-6)


def noise_free_estimates(plant: Plant, t_rest_us: int, limit_s: float) -> list[float]:
    """The board's estimator, noise-free: |mean of block b - mean of block b-1| / WIN for
    each block end b = 2, 3, ... after the rest starts (at index b - 2). Runs on a copy:
    the plant cannot go back to the next edge."""
    plant = copy.deepcopy(plant)
    n = int(limit_s * 1e6 / PERIOD_US)
    v = []
    for j in range(1, n + 1):
        plant.advance(t_rest_us + j * PERIOD_US)
        v.append(plant.voltage())
    means = [sum(v[i : i + K]) / K for i in range(0, n - K + 1, K)]
    return [abs(b - a) / WIN for a, b in zip(means, means[1:], strict=False)]


def rest_bounds_s(est: list[float], sigma: float) -> tuple[float, float]:
    """(earliest, latest) end of the rest in seconds after it starts (see module doc)."""
    ends = [(b + 2) * WIN for b in range(len(est))]
    first = next(t for t, e in zip(ends, est, strict=True) if e <= THR + Z * sigma)
    last_high = max((i for i, e in enumerate(est) if e > THR - Z * sigma), default=-1)
    assert last_high + 1 < len(est), "the plant did not relax within the limit"
    return first + HOLD, ends[last_high + 1] + HOLD


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
    sigma = estimate_sigma_v_per_s(sc)
    k = 0
    for e, t_us in zip(edges, us, strict=True):
        plant.set_current(float(e.value), t_us)
        if e.value == 0.0:  # a rest starts: the board's decision must follow the truth
            lo, hi = rest_bounds_s(noise_free_estimates(plant, t_us, 30.0), sigma)
            t_board = (dec[k] - t_us) / 1e6
            print(f"rest {k}: board ended it at {t_board:.2f} s, allowed [{lo:.2f}, {hi:.2f}] s")
            # one reading of slack: the decision is taken at the reading after a block end
            assert lo - 0.02 <= t_board <= hi + 0.02, (k, lo, hi, t_board)
            assert rests[k].length_s == pytest.approx(t_board, abs=2e-3)
            k += 1
    assert k == 6
