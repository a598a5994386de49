"""Current derating by the FBG strain rate on the emulated Na-ion pouch, against the plant.

The pouch of seed 000 strains by a few µε a pulse: at the onset of its largest current its
strain rate through a 16-reading least-squares window (100 sweeps/s) peaks at ~3 µε/s, under
the window's noise (6 µε/s from the interrogator's 1 pm). This test gives the electrode a
20x stronger micro-stress term (strain_per_gradient 1e-3 instead of 5e-5: a stiffer, more
expansive electrode), so the onset of an 18 mA step drives ~60 µε/s. The board derates to
half once the estimate passes 6 sigma of its noise and comes back to full below half that.

Checked: the board decided on the very reading where the same estimator, run here on the
FBG readings it streamed (temperature-compensated with the reference grating as the board
does), first passed the limit (and first fell under resume); the same estimator on the
plant's noise-free strain at those reading times (the board's current edges and derate
changes replayed on a CPython plant) crosses within a few readings of it; the events say
strain_rate and the current readback is halved while derated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from boards.emulated.plant import Plant
from host_sdk.client import EMULATED_COMMAND_TIMEOUT_S, Block, Cutoffs, Rig
from host_sdk.derate import derate_changes, estimator
from host_sdk.emulator import start_emulator
from host_sdk.emulator.scenarios import deep_merge
from host_sdk.strain_rate import set_strain_rate_derating, ue_per_s
from protocol import defs
from tests.emulator.device_time import run_until

SCEN = Path(__file__).resolve().parents[2] / "boards" / "emulated" / "scenarios"
OVERRIDES = {"fbg": {"strain_per_gradient": 1e-3}}
WINDOW_N, CURRENT_A, ON_S = 16, 0.018, 6.0


def _ls_slopes(t: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """The board's estimator offline: least-squares slope of every n consecutive readings."""
    k = np.arange(n) - (n - 1) / 2
    w = k / (k @ k)
    per = float(np.median(np.diff(t)))
    return np.convolve(x, w[::-1], mode="valid") / per


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    try:
        emu = start_emulator("naion_fbg_pouch", speed=math.inf, seed=7, overrides=OVERRIDES)
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    try:
        with Rig.open(str(emu.port), command_timeout_s=EMULATED_COMMAND_TIMEOUT_S) as rig:
            blocks: list[Block] = []
            rig.on_block(blocks.append)
            for s in ("load", "temp"):
                rig.configure_stream(s, rate_hz=1, enabled=False)
            rig.configure_stream("elec", rate_hz=100)
            rig.configure_stream("fbg", rate_hz=100)
            rig.set_streaming(True)
            run_until(rig, rig.device_time_s + 0.5)
            fb = json.loads((SCEN / "naion_fbg_pouch.json").read_text())["fbg"]
            lam = [float(g["lambda0_nm"]) for g in fb["gratings"]]
            pm = lam[0] * (1.0 - float(fb["p_e"])) * 1e-3
            s_ue = float(fb["noise_pm"]) * math.sqrt(1.0 + (lam[0] / lam[1]) ** 2) / pm
            est = estimator(WINDOW_N, 100.0, s_ue)
            limit = 6.0 * est.sigma_rate
            ack = set_strain_rate_derating(
                rig,
                limit_ue_per_s=limit,
                resume_ue_per_s=limit / 2,
                scale=0.5,
                window_n=WINDOW_N,
                grating="g0",
                reference="g1",
            )
            # the estimator's window fills after arming (16 readings): let it, so the board
            # judges every reading of the step as the offline estimator below does
            run_until(rig, rig.device_time_s + 0.5)
            mark = rig.event_mark()
            rig.constant_current(current_a=CURRENT_A, cutoffs=Cutoffs(max_duration_s=ON_S))
            end = rig.wait_event((defs.EV_WAVEFORM_END,), after=mark, timeout_s=300)
            assert end is not None
            run_until(rig, end.t_s + 0.5)
            assert rig.wait_data(end.t_s + 0.5, ["fbg", "elec"]), "the streams fell silent"
            rig.set_streaming(False)
            events = list(rig.events[mark:])
            return {
                "ack": ack,
                "limit": limit,
                "est": est,
                "pm": pm,
                "lam": lam,
                "blocks": blocks,
                "events": events,
                "changes": derate_changes(rig, mark),
                "fields": {s: rig.streams[s].fields for s in ("fbg", "elec")},
            }
    finally:
        emu.stop()


def _decisions(t_w: np.ndarray, sl: np.ndarray, limit: float, after: float) -> list[float]:
    """The board's decision rule on a slope series: derate above limit, back under half."""
    out: list[float] = []
    derated = False
    for t, v in zip(t_w, np.abs(sl), strict=True):
        if t <= after:
            continue
        if (not derated and v > limit) or (derated and v < limit / 2):
            derated = not derated
            out.append(float(t))
    return out


def test_strain_rate_derating_against_the_plants_strain(run) -> None:
    ack, limit, est, ch = run["ack"], run["limit"], run["est"], run["changes"]
    assert ack.applied["signal"] == defs.DERATE_STRAIN and ack.applied["ref_grating"] == 1
    pm = float(ack.applied["pm_per_ue"])
    assert pm == pytest.approx(run["pm"], rel=1e-6)
    start = next(e for e in run["events"] if e.code == defs.EV_WAVEFORM_START).t_s
    end = next(e for e in run["events"] if e.code == defs.EV_WAVEFORM_END).t_s
    for c in ch:
        rate = ue_per_s(c.rate_counts_per_s, pm)
        print(f"{c.t_s - start:7.3f} s derated={c.derated} {rate:6.1f} µε/s")
    # derated and back, alternately, always on the strain rate; only in the transients of
    # the step's onset and end (the micro-stress term answers a change of the current at
    # once: halving the current drops the rate under resume within a few readings, so the
    # loop cycles through the onset's transient), never on noise
    assert ch and all(c.cause == "strain_rate" for c in ch), ch
    assert [c.derated for c in ch] == [k % 2 == 0 for k in range(len(ch))], ch
    assert all(start < c.t_s < start + 1.5 or end < c.t_s < end + 1.0 for c in ch), ch
    fbg = [b for b in run["blocks"] if b.stream == "fbg"]
    t_f = np.concatenate([b.t_s for b in fbg])
    rec = np.concatenate([b.records for b in fbg])
    assert ((rec["status"] & 3) == 0).all()
    idx = np.concatenate([b.first_index + np.arange(len(b.records)) for b in fbg])
    assert (np.diff(idx) == 1).all()  # every reading the board judged
    g0 = rec["g0"].astype(np.int64)
    g1 = rec["g1"].astype(np.int64)
    # the board's signal (firmware/loops/strain_signal.py), integer for integer
    c = round((int(g0[0]) / int(g1[0]) - 1.0) * 4096)
    d1 = g1 - g1[0]
    x = (g0 - g0[0]) - d1 - ((d1 * c) >> 12)
    per = 0.01
    sl = _ls_slopes(t_f, x.astype(float), WINDOW_N) / (pm * 1000.0)  # µε/s
    t_w = t_f[WINDOW_N - 1 :]
    # every decision on the very reading where the same rule on the streamed readings made it
    mine = _decisions(t_w, sl, limit, start)
    assert len(mine) == len(ch), (mine, [c.t_s for c in ch])
    assert all(abs(a - c.t_s) < 5e-3 for a, c in zip(mine, ch, strict=True)), (mine, ch)
    # the board's estimate at the first decision, converted with its pm_per_ue, is past it
    assert abs(ue_per_s(ch[0].rate_counts_per_s, pm)) >= limit * 0.999
    # the plant's truth: its noise-free strain at the same reading times, with the current
    # the board applied (the step, halved while derated)
    sc = deep_merge(json.loads((SCEN / "naion_fbg_pouch.json").read_text()), OVERRIDES)
    plant = Plant(sc)
    t0 = start - 1.0

    def us(t: float) -> int:
        return round((t - t0) * 1e6)

    # the current's edges in time order, applied as the replay reaches them
    sched = [(start, CURRENT_A)]
    sched += [(c.t_s, CURRENT_A * (0.5 if c.derated else 1.0)) for c in ch if c.t_s < end]
    sched.append((end, 0.0))
    eps = np.zeros(len(t_f))
    i = 0
    for j, t in enumerate(t_f):
        while i < len(sched) and sched[i][0] <= t:
            plant.set_current(sched[i][1], us(sched[i][0]))
            i += 1
        if t > t0:
            plant.advance(us(t))
            eps[j] = plant.strain() * 1e6
    sl0 = _ls_slopes(t_f, eps, WINDOW_N)
    k0 = int(np.argmax((t_w > start) & (np.abs(sl0) > limit)))
    print(f"truth: the noise-free estimate passes the limit at {t_w[k0] - start:.3f} s")
    # the noise (sigma = limit / 6) moves the crossing by about sigma over the estimate's
    # rise per reading (~limit / 3 here): 4 readings is ample
    assert abs(t_w[k0] - ch[0].t_s) <= 4 * per + 1e-3, (t_w[k0], ch[0].t_s)
    assert ch[0].t_s - start <= est.full_s + 2 * per
    # the current readback: half while derated (each interval less its edges)
    elec = [b for b in run["blocks"] if b.stream == "elec"]
    t_e = np.concatenate([b.t_s for b in elec])
    fi = next(f for f in run["fields"]["elec"] if f.name == "current")
    i_e = np.concatenate([b.records["current"] for b in elec]) * fi.scale + fi.offset
    st = np.concatenate([b.records["state"] for b in elec])
    der = np.zeros(len(t_e), bool)
    for a, b in zip(ch[0::2], ch[1::2], strict=False):
        if a.t_s < end:
            der |= (t_e > a.t_s + 0.015) & (t_e < min(b.t_s, end) - 0.015)
    assert der.sum() >= 5
    assert abs(np.median(i_e[der]) / CURRENT_A - 0.5) < 0.03
    assert (st[der] & defs.ELEC_DERATED).all()
