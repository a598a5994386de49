"""adaptive_rest_time_saving: pulsed stripping (seed 004: 1 s pulses at 1 mA/cm², until 3 V)
on the emulated board (real firmware, virtual device time), with fixed rests and with rests
the board ends itself (|dV/dt| <= 0.5 mV/s for 0.5 s).

Capacity (charge passed) rises with the rest and plateaus. Baseline: the fixed-rest series
of seed 004 (rests 0.1 ... 10 s, each on a fresh cell), in the same process. The plateau is
95 % of the largest capacity of that series; the baseline time is the device time of the
shortest fixed-rest run that reaches it. value = 1 - T_adaptive / T_fixed_at_plateau (the
adaptive run must reach the plateau too, else the saving is reported as NaN).

Also reported: `equal_capacity_saving`, against the fixed rest (interpolated linearly in
capacity and time between the series' rests) that would pass the same charge as the
adaptive run: the fairer figure when the plant's relaxation is the same after every pulse
(it is here), since then a well-chosen fixed rest is about as good; and the device time of
the whole fixed-rest sweep (what finding the plateau with fixed rests costs).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

I_A = 3.85e-4  # 10 A/m² on the O-ring's 0.385 cm²
FIXED_RESTS_S = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)  # seed 004's series
SETTLE = {"dvdt_v_per_s": 5e-4, "hold_s": 0.5, "min_s": 0.2, "max_s": 20.0, "window_s": 0.5}
PLATEAU = 0.95
URL = "emu://nak50_pulsed?seed=11&load_sps=10&fbg_hz=1"


def _series(rest_s: float | None) -> dict[str, Any]:
    """One series on a fresh emulated cell: fixed rests (rest_s) or adaptive (None)."""
    from host_sdk.client import Cutoffs, Rig
    from host_sdk.loops import Settle, adaptive_pulses, rest_ends
    from protocol import defs

    wall = time.perf_counter()
    with Rig.open(URL) as rig:
        for s in ("load", "fbg", "temp"):
            rig.configure_stream(s, rate_hz=1, enabled=False)
        rig.configure_stream("elec", rate_hz=50)
        rig.set_streaming(True)
        mark = rig.event_mark()
        cut = Cutoffs(v_min_v=-1.0, v_max_v=3.0)
        if rest_s is None:
            adaptive_pulses(
                rig, amplitude_a=I_A, t_on_s=1.0, count=65535, settle=Settle(**SETTLE), cutoffs=cut
            )
        else:
            rig.pulse_train(amplitude_a=I_A, t_on_s=1.0, t_off_s=rest_s, count=65535, cutoffs=cut)
        start = rig.wait_event((defs.EV_WAVEFORM_START,), after=mark, timeout_s=30)
        end = rig.wait_event((defs.EV_WAVEFORM_END,), after=mark, timeout_s=3600)
        assert start is not None and end is not None, "the series did not end"
        rests = [r.length_s for r in rest_ends(rig, mark)]
    return {
        "rest_s": rest_s,
        "capacity_c": float(end.value),
        "time_s": end.t_s - start.t_s,
        "end": end.cause_name,
        "pulses": (end.index + 1) // 2,
        "rests_s": [min(rests), float(sum(rests) / len(rests)), max(rests)] if rests else [],
        "wall_s": time.perf_counter() - wall,
    }


def _fixed_time_at(fixed: list[dict[str, Any]], q: float) -> float | None:
    """Device time of a fixed-rest series passing charge q, linear between the tested rests
    (None beyond them)."""
    pts = sorted((f["capacity_c"], f["time_s"]) for f in fixed)
    for (q0, t0), (q1, t1) in zip(pts, pts[1:], strict=False):
        if q0 <= q <= q1 and q1 > q0:
            return t0 + (q - q0) / (q1 - q0) * (t1 - t0)
    return None


def run() -> list[dict[str, Any]]:
    fixed = []
    for r in FIXED_RESTS_S:
        fixed.append(_series(r))
        print("   fixed " + json.dumps(fixed[-1]), flush=True)
    adaptive = _series(None)
    print("   adaptive " + json.dumps(adaptive), flush=True)
    q_max = max(f["capacity_c"] for f in fixed)
    at_plateau = [f for f in fixed if f["capacity_c"] >= PLATEAU * q_max]
    base = min(at_plateau, key=lambda f: f["rest_s"])
    reached = adaptive["capacity_c"] >= PLATEAU * q_max
    saving = 1.0 - adaptive["time_s"] / base["time_s"] if reached else math.nan
    sweep_s = sum(f["time_s"] for f in fixed)
    t_equal = _fixed_time_at(fixed, adaptive["capacity_c"])
    equal = 1.0 - adaptive["time_s"] / t_equal if t_equal else math.nan
    print(
        f"   plateau {PLATEAU * q_max:.4g} C (95 % of {q_max:.4g} C): fixed rest "
        f"{base['rest_s']:g} s takes {base['time_s']:.0f} s; adaptive "
        f"{adaptive['capacity_c']:.4g} C in {adaptive['time_s']:.0f} s; the fixed sweep "
        f"took {sweep_s:.0f} s of device time; a fixed rest passing the adaptive run's "
        f"charge would take ~{t_equal or math.nan:.0f} s",
        flush=True,
    )
    return [
        {
            "name": "adaptive_rest_time_saving",
            "value": saving,
            "unit": "fraction",
            "baseline": base["time_s"],
            "ratio": adaptive["time_s"] / base["time_s"],
            "adaptive": adaptive,
            "fixed": fixed,
            "plateau_c": PLATEAU * q_max,
            "fixed_sweep_time_s": sweep_s,
            "equal_capacity_saving": equal,
            "fixed_time_at_equal_capacity_s": t_equal,
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
