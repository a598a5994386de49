"""derating_response_ms: current derating by pressure rate on the emulated board (real
firmware, virtual device time; HX711 noise of the scenario, 25 counts of 0.2037 mN).

The press ramps the stack force at a known device time t0 (a step in the force rate, to
twice the limit over the plant's own creep); the response is the device time from t0 to the
first elec record (1 kHz) whose current readback shows the derated current (below the
midpoint of full and scaled). Baseline: the estimator's theoretical delay for the same
force history, noise-free: the least-squares slope of N readings over the plant's true
force (creep + ramp), first past the limit, averaged over where the readings fall in the
conversion period; ratio = measured / theoretical (1.0: the board adds nothing to the
estimator's lag; noise moves single trials by about a reading either way).

Reported at 80 SPS with a window of 16 readings (value), and at 10 SPS with 8 (`at_10sps`),
median over trials, with the estimator's stated noise and delay (host_sdk.derate.estimator).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import numpy as np

SIGMA_N = 25.0 * 0.0002037
CREEP_N = 0.15e6 * 1.131e-4  # nak50_pulsed: creep_mpa on the stack area
CREEP_TAU_S = 600.0
I_A = 2e-4
SCALE = 0.5
TRIALS = 5
CASES = ((80, 16), (10, 8))


def _truth(t: np.ndarray, ramp: float, t0: float) -> np.ndarray:
    return -CREEP_N * np.log1p(t / CREEP_TAU_S) + ramp * np.clip(t - t0, 0.0, None)


def _theory_s(sps: int, n: int, ramp: float, limit: float, t0: float) -> float:
    """Noise-free estimator delay from t0, averaged over the reading phase."""
    k = np.arange(n) - (n - 1) / 2
    w = k / (k @ k) * sps
    out = []
    for phase in np.linspace(0.0, 1.0, 50, endpoint=False):
        t = t0 + (np.arange(-n, 4 * n) + phase) / sps
        s = np.convolve(_truth(t, ramp, t0), w[::-1], mode="valid")
        tw = t[n - 1 :]
        out.append(float(tw[np.argmax(s > limit)] - t0))
    return float(np.mean(out))


def _trial(sps: int, n: int, seed: int) -> dict[str, Any]:
    from host_sdk.client import Block, Cutoffs, Rig
    from host_sdk.derate import derate_changes, estimator, set_derating

    est = estimator(n, sps, SIGMA_N)
    limit = 6.0 * est.sigma_rate + CREEP_N / CREEP_TAU_S
    ramp = 2.0 * limit + CREEP_N / CREEP_TAU_S
    blocks: list[Block] = []
    with Rig.open(f"emu://nak50_pulsed?seed={seed}&load_sps={sps}&fbg_hz=1") as rig:
        rig.on_block(blocks.append)
        for s in ("fbg", "temp"):
            rig.configure_stream(s, rate_hz=1, enabled=False)
        rig.configure_stream("load", rate_hz=sps)
        rig.configure_stream("elec", rate_hz=1000)
        rig.set_streaming(True)
        set_derating(rig, limit_n_per_s=limit, resume_n_per_s=limit / 2, scale=SCALE, window_n=n)
        mark = rig.event_mark()
        rig.emulator.hold(rig.device_time_s)  # no device time passes while we schedule
        rig.constant_current(current_a=I_A, cutoffs=Cutoffs(max_duration_s=60.0))
        t0 = rig.device_time_s + 2.0 + 2 * est.full_s
        rig.emulator.ramp_force(ramp, t0, t0 + 4 * est.full_s)
        rig.emulator.release()
        deadline = time.monotonic() + 120
        while rig.device_time_s < t0 + 3 * est.full_s:
            if time.monotonic() > deadline:
                raise RuntimeError("device time stopped")
            time.sleep(0.01)
        rig.stop()
        ch = derate_changes(rig, mark)
        elec = [b for b in blocks if b.stream == "elec"]
        f = next(x for x in rig.streams["elec"].fields if x.name == "current")
    t_e = np.concatenate([b.t_s for b in elec])
    i_e = np.concatenate([b.records["current"] for b in elec]) * f.scale + f.offset
    mid = I_A * (1.0 + SCALE) / 2
    k = int(np.argmax((t_e > t0) & (i_e < mid)))
    return {
        "response_ms": (float(t_e[k]) - t0) * 1e3,
        "decision_ms": (ch[0].t_s - t0) * 1e3 if ch else float("nan"),
        "false_trips_before_ramp": sum(1 for c in ch if c.t_s < t0),
        "theory_ms": _theory_s(sps, n, ramp, limit, t0) * 1e3,
        "limit_n_per_s": limit,
        "sigma_rate_n_per_s": est.sigma_rate,
        "stated_delay_ms": est.delay_s * 1e3,
    }


def _case(sps: int, n: int) -> dict[str, Any]:
    wall = time.perf_counter()
    trials = [_trial(sps, n, 31 + j) for j in range(TRIALS)]
    for t in trials:
        print(f"   {sps} SPS N={n}: " + json.dumps(t), flush=True)
    med = statistics.median(t["response_ms"] for t in trials)
    theory = statistics.mean(t["theory_ms"] for t in trials)
    return {
        "sps": sps,
        "window_n": n,
        "response_ms_median": med,
        "response_ms": [t["response_ms"] for t in trials],
        "theory_ms": theory,
        "ratio": med / theory,
        "false_trips": sum(t["false_trips_before_ramp"] for t in trials),
        "sigma_rate_n_per_s": trials[0]["sigma_rate_n_per_s"],
        "limit_n_per_s": trials[0]["limit_n_per_s"],
        "stated_delay_ms": trials[0]["stated_delay_ms"],
        "wall_s": time.perf_counter() - wall,
    }


def run() -> list[dict[str, Any]]:
    fast, slow = (_case(sps, n) for sps, n in CASES)
    return [
        {
            "name": "derating_response_ms",
            "value": fast["response_ms_median"],
            "unit": "ms (device)",
            "baseline": fast["theory_ms"],
            "ratio": fast["ratio"],
            "at_80sps": fast,
            "at_10sps": slow,
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
