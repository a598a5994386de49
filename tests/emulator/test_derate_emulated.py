"""Current derating by pressure rate on the emulated board, against the plant's truth: the
press ramps the stack force at a known device time and rate (boards/emulated/plant.py
ramp_force_n); the HX711's noise is the scenario's (25 counts of 0.2037 mN). At 80 and 10
SPS the board's least-squares rate estimator has the noise the formula says (measured on the
recorded load readings), never trips on noise alone with the limit at 6 sigma, and derates
a ramp of twice the limit within the estimator's stated delay; the elec stream's current
readback shows the scaled current (ELEC_DERATED) and full current again after the ramp."""

from __future__ import annotations

import numpy as np
import pytest

from host_sdk.client import Block, Cutoffs, Rig
from host_sdk.derate import derate_changes, estimator, set_derating
from protocol import defs
from tests.emulator.device_time import run_until

SIGMA_N = 25.0 * 0.0002037  # the scenario's load-cell noise (counts x span)
CURRENT_A = 2e-4
# the scenario's stack-pressure creep, a real force rate the board sees (plant.py
# _preload_pa): F = P0 A - creep A log(1 + t / tau), so dF/dt = -creep A / (tau + t)
CREEP_N = 0.15e6 * 1.131e-4
CREEP_TAU_S = 600.0
CREEP_RATE_MAX = CREEP_N / CREEP_TAU_S  # N/s at t = 0


def _truth(t: np.ndarray, ramp: float, t0: float, t1: float) -> np.ndarray:
    """The plant's force (less its constant part) at device times t."""
    return -CREEP_N * np.log1p(t / CREEP_TAU_S) + ramp * (np.clip(t, t0, t1) - t0)


def _ls_slopes(t: np.ndarray, f: np.ndarray, n: int) -> np.ndarray:
    """The board's estimator offline: the least-squares slope of every n consecutive
    readings, per second of the readings' own time."""
    k = np.arange(n) - (n - 1) / 2
    w = k / (k @ k)
    per = float(np.median(np.diff(t)))
    return np.convolve(f, w[::-1], mode="valid") / per


@pytest.mark.parametrize(("sps", "window_n"), [(80, 16), (10, 8)])
def test_derating_against_the_plants_force_ramp(sps: int, window_n: int) -> None:
    try:
        rig = Rig.open(f"emu://nak50_pulsed?seed=7&load_sps={sps}&fbg_hz=1")
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    try:
        blocks: list[Block] = []
        rig.on_block(blocks.append)
        rig.configure_stream("load", rate_hz=sps)
        rig.configure_stream("elec", rate_hz=100)
        rig.set_streaming(True)
        est = estimator(window_n, sps, SIGMA_N)
        # N/s: six sigma of the estimate's noise over the creep the board also sees
        limit = 6.0 * est.sigma_rate + CREEP_RATE_MAX
        ramp = 2.0 * limit + CREEP_RATE_MAX  # the net rate is then over twice the limit
        ack = set_derating(
            rig, limit_n_per_s=limit, resume_n_per_s=limit / 2, scale=0.5, window_n=window_n
        )
        assert ack.applied["window_n"] == window_n
        mark = rig.event_mark()
        # the world waits while the current starts and the ramp is scheduled, so a host
        # slowed by a busy machine cannot schedule it after its start time has gone by
        rig.emulator.hold(rig.device_time_s)
        rig.constant_current(current_a=CURRENT_A, cutoffs=Cutoffs(max_duration_s=40.0))
        # the waveform's own start: the host's latest device time can lag the hold
        start = rig.wait_event((defs.EV_WAVEFORM_START,), after=mark, timeout_s=60)
        assert start is not None, "the waveform did not start"
        t_start = start.t_s
        hold_s = 300 / sps  # 300 readings of noise alone before the ramp
        t0 = t_start + hold_s + 0.5
        t1 = t0 + 2.0 * est.full_s + 1.0
        rig.emulator.ramp_force(ramp, t0, t1)
        rig.emulator.release()
        run_until(rig, t1 + 3.0 * est.full_s + 0.5)
        rig.stop()
        # the samples taken before the stop can still be on their way when its ACK is here
        assert rig.wait_data(rig.device_time_s, ["load", "elec"]), "the streams fell silent"
        ch = derate_changes(rig, mark)
        # no trip on noise alone; one derating on the ramp, one return after it
        assert [(c.derated, c.cause) for c in ch] == [
            (True, "pressure_rate"),
            (False, "pressure_rate"),
        ], ch
        per = 1.0 / sps
        field = next(f for f in rig.streams["load"].fields if f.name == "counts")
        load = [b for b in blocks if b.stream == "load"]
        t_l = np.concatenate([b.t_s for b in load])
        f_l = np.concatenate([b.records["counts"] for b in load]).astype(float) * field.scale
        # the board decided on the very reading where the same estimator, run here on the
        # readings it streamed, first passes the limit (and first falls under resume)
        sl = _ls_slopes(t_l, f_l, window_n)
        t_w = t_l[window_n - 1 :]
        after = t_w > t_start
        k_on = int(np.argmax(after & (np.abs(sl) > limit)))
        assert abs(t_w[k_on] - ch[0].t_s) < 2e-3, (t_w[k_on], ch[0].t_s)
        k_off = k_on + int(np.argmax(np.abs(sl[k_on:]) < limit / 2))
        assert abs(t_w[k_off] - ch[1].t_s) < 2e-3, (t_w[k_off], ch[1].t_s)
        # against the plant's truth: the same estimator on the noise-free force at the
        # same reading times passes the limit within about a reading of the board (the
        # estimate's noise is under 1/12 of the ramp's rate, moving the crossing by about
        # a reading: 3 either way); with no creep it would be the stated delay, (N - 1) / 2
        # readings plus up to one (est.delay_s)
        sl0 = _ls_slopes(t_l, _truth(t_l, ramp, t0, t1), window_n)
        k0 = int(np.argmax(after & (sl0 > limit)))
        assert abs(t_w[k0] - ch[0].t_s) <= 3 * per, (t_w[k0], ch[0].t_s)
        assert 0 < t_w[k0] - t0 <= est.delay_s + 3 * per
        k1 = k0 + int(np.argmax(sl0[k0:] < limit / 2))
        assert abs(t_w[k1] - ch[1].t_s) <= 3 * per, (t_w[k1], ch[1].t_s)
        # the board's estimate at the decision, in N/s, is past the limit (the event's value
        # is the estimate floored to whole counts per second: one count/s below it at most)
        rate_n = ch[0].rate_counts_per_s * abs(field.scale)
        assert limit - abs(field.scale) <= rate_n <= 2.2 * limit, (rate_n, limit)
        # the estimator's noise on the recorded readings: the formula, from the plant's sigma
        quiet = (t_l > t_start) & (t_l < t0)
        s = _ls_slopes(t_l[quiet], f_l[quiet] - _truth(t_l[quiet], 0.0, t0, t1), window_n)
        assert len(s) > 250
        # readings of the slope overlap: ~len/N independent ones, so 20 % is ample
        assert abs(np.std(s) / est.sigma_rate - 1.0) < 0.2, (np.std(s), est.sigma_rate)
        # the current readback: half while derated, full before and after
        elec = [b for b in blocks if b.stream == "elec"]
        t_e = np.concatenate([b.t_s for b in elec])
        ifield = next(f for f in rig.streams["elec"].fields if f.name == "current")
        i_e = np.concatenate([b.records["current"] for b in elec]) * ifield.scale + ifield.offset
        st = np.concatenate([b.records["state"] for b in elec])
        g = 0.05
        der = (t_e > ch[0].t_s + g) & (t_e < ch[1].t_s - g)
        full = ((t_e > t_start + g) & (t_e < ch[0].t_s - g)) | (
            (t_e > ch[1].t_s + g) & (t_e < ch[1].t_s + 0.5)
        )
        assert der.sum() > 50 and full.sum() > 50
        assert abs(np.median(i_e[der]) / CURRENT_A - 0.5) < 0.02
        assert abs(np.median(i_e[full]) / CURRENT_A - 1.0) < 0.02
        assert (st[der] & defs.ELEC_DERATED).all() and not (st[full] & defs.ELEC_DERATED).any()
    finally:
        rig.close()
