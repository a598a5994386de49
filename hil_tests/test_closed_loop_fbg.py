"""Closed loop: FBG strain and temperature of the emulated Na-ion pouch cell (seed 000),
separated with the strain-free reference grating by the SDK, against the plant's truth.

Script: 10 s at rest (baseline), the ambient steps 25 -> 30 °C (emulator control: a
temperature the reference grating must see and the sensing grating must not mistake for
strain), then 200 s of constant-current discharge at 15 mA (charge + micro-stress terms
of the electrode strain), then 20 s of rest (the gradient term relaxes).

Truth, from the scenario (independent of the plant's finite-volume solver):
  ε = a·Q + b·(C_mean − C_s)/C0, C_mean − C_s from the finite-layer series (DOMAIN.md §4)
      for the current step on and off; Q = I·t_on-time (A from the cell, f = 1 here);
  T = ambient + drift·t + swing·sin(2πt/P) + joule lag r_th·I²R_ohm·(1 − e^(−t/τ)).
The grating constants (λ0, p_e, thermal coefficient) are the user's grating data: taken
from the scenario as a datasheet would give them.

Emulated board: naion_fbg_pouch with the interrogator sweeping at 20 Hz instead of 100
(~250 s of device time at speed 20: ~800 samples/s of wall time in all).
"""

from __future__ import annotations

import math

import numpy as np

from hil_tests._util import Collector, events_after
from hil_tests.conftest import BenchSpec
from host_sdk.analysis import strain_and_temperature
from protocol import defs

BENCH = BenchSpec(
    scenario="naion_fbg_pouch",
    speed=20.0,
    seed=5,
    overrides={"fbg": {"rate_hz": 20.0}, "streams": {"fbg": {"rate_hz": 20}}},
)
FARADAY = 96485.33212
BASE_S, STEP_HOLD_S, ON_S, RELAX_S = 10.0, 15.0, 200.0, 20.0
CURRENT_A = 0.015
AMBIENT_STEP_C = 5.0


def _h(tau, d, l_m, n_terms=50):
    """(C_mean − C_s)·D/(J·L) after a constant-flux step at tau = 0 (0 before)."""
    tau = np.asarray(tau, float)
    n = np.arange(1, n_terms + 1)[:, None]
    s = np.sum(np.exp(-(n**2) * math.pi**2 * d * np.clip(tau, 0, None) / l_m**2) / n**2, 0)
    return np.where(tau > 0, 1.0 / 3.0 - 2.0 / math.pi**2 * s, 0.0)


def _bins(t, y, width, min_n):
    """Means of y in consecutive `width`-second bins of t (bins with >= min_n samples)."""
    k = np.floor((t - t[0]) / width).astype(int)
    n = np.bincount(k)
    keep = n >= min_n
    return (np.bincount(k, t)[keep] / n[keep], np.bincount(k, y)[keep] / n[keep])


def test_fbg_strain_and_temperature_recovered(bench, rig, figure):
    truth = bench.truth  # skips on hardware
    emu = bench.emu
    fbg, film, cell = truth["fbg"], truth["film"], truth["cell"]
    th, el = truth["thermal"], truth["electrical"]
    g_sense = next(i for i, g in enumerate(fbg["gratings"]) if g["role"] == "sensing")
    g_ref = next(i for i, g in enumerate(fbg["gratings"]) if g["role"] == "reference")
    rig.configure_stream("fbg", rate_hz=20.0)
    rig.configure_stream("elec", rate_hz=10.0)
    rig.configure_stream("load", rate_hz=10.0, enabled=False)
    amb0 = th["ambient_c"]
    m = rig.event_mark()
    try:
        with Collector(rig, ["fbg"]) as col:
            rig.set_streaming(True)
            bench.sleep_device(BASE_S)
            # the step lands at a held device time: the host's view of device time lags
            # the board by up to a frame's latency (2 s here), and a step sent "now" landed
            # that much later than the host believed, inside the bins compared below
            t_hold = rig.device_time_s + 3.0
            emu.hold(t_hold)
            t_step = bench.wait_held(t_hold)
            emu.set_sensor_fault(ambient_c=amb0 + AMBIENT_STEP_C)
            emu.release()
            bench.sleep_device(STEP_HOLD_S)
            ack = rig.constant_current(current_a=CURRENT_A)
            bench.sleep_device(ON_S)
            rig.stop()
            bench.sleep_device(RELAX_S)
            # the samples before now can still be on their way
            assert rig.wait_data(rig.device_time_s, ["fbg"]), "the fbg stream fell silent"
            rig.set_streaming(False)
    finally:
        emu.set_sensor_fault(ambient_c=amb0)
    i_a = ack.applied["current"]
    t_on = events_after(rig, m, defs.EV_WAVEFORM_START)[0].t_s
    t_off = events_after(rig, m, defs.EV_WAVEFORM_END)[0].t_s
    rec, t, _ = col.records("fbg")
    assert np.all(rec["status"] == 0), "a grating was lost"
    lam_s = rec[f"g{g_sense}"].astype(float) * 1e-15  # fm -> m
    lam_r = rec[f"g{g_ref}"].astype(float) * 1e-15
    base = t < t[0] + 5.0
    lam0_s, lam0_r = lam_s[base].mean(), lam_r[base].mean()
    eps, dT = strain_and_temperature(
        lam_s - lam0_s, lam0_s, lam_r - lam0_r, lam0_r,
        alpha_xi_per_k=fbg["thermal_per_k"], p_e=fbg["p_e"],
    )  # fmt: skip

    # ---- truth --------------------------------------------------------------------------
    d, l_m, c0 = film["d_m2_s"], film["thickness_m"], film["c0_mol_m3"]
    j = i_a / (cell["area_m2"] * film["z"] * FARADAY)
    q = i_a * (np.clip(t, t_on, t_off) - t_on)
    grad = j * l_m / d * (_h(t - t_on, d, l_m) - _h(t - t_off, d, l_m))
    eps_true = fbg["strain_per_c"] * q + fbg["strain_per_gradient"] * grad / c0
    amb = np.where(t > t_step, amb0 + AMBIENT_STEP_C, amb0)
    heat_target = th["r_th_k_per_w"] * i_a**2 * el["r_ohm"]
    on_lag = 1 - np.exp(-np.clip(t - t_on, 0, None) / th["tau_s"])
    off_lag = 1 - np.exp(-np.clip(t - t_off, 0, None) / th["tau_s"])
    heat = heat_target * (on_lag - off_lag)
    temp_true = (
        amb + th["drift_c_per_h"] / 3600 * t
        + th["swing_c"] * np.sin(2 * math.pi * t / th["swing_period_s"]) + heat
    )  # fmt: skip
    dT_true = temp_true - temp_true[base].mean()

    # ---- compare in 2 s bins (40 sweeps each) ------------------------------------------
    # the ambient step lands when the plant polls its control port: skip 2 s around it
    keep = ~((t > t_step - 0.5) & (t < t_step + 2.0))
    tb, e_b = _bins(t[keep], eps[keep] - eps_true[keep], 2.0, 30)
    _, t_b = _bins(t[keep], dT[keep] - dT_true[keep], 2.0, 30)
    e_err = float(np.max(np.abs(e_b)))

    t_err = float(np.max(np.abs(t_b)))
    peak = float(np.max(eps_true))
    at_end = (t > t_off - 3) & (t < t_off - 0.5)
    rel_end = float(np.mean(eps[at_end]) / np.mean(eps_true[at_end]) - 1)
    step_meas = float(np.mean(dT[(t > t_step + 3) & (t < t_on)]))
    figure("fbg_strain_max_error_ue", e_err * 1e6, "µε", peak_ue=peak * 1e6,
           end_rel_error=rel_end, bias_ue=float(np.mean(e_b)) * 1e6,
           sd_ue=float(np.std(e_b)) * 1e6)  # fmt: skip
    figure("fbg_temperature_max_error_k", t_err, "K", step_k=step_meas,
           step_true_k=AMBIENT_STEP_C)  # fmt: skip
    # Tolerances: the 1 pm peak noise gives ~0.22 µε and 0.014 K per 2 s bin (1 sigma,
    # measured); over ~120 bins the largest is ~3.3 sigma, plus a ~0.1 µε bias (the plant's
    # finite-volume surface vs the series, ~1 % of the gradient term). Strain within
    # 1.2 µε in every bin (5 sigma + bias, 5 % of the ~24 µε peak) and within 3 % averaged
    # over the end of the discharge; temperature within 0.07 K in every bin (5 sigma) plus
    # the step's own error (the 5 K step reads about 0.5 % high here, cause not found:
    # the scenario has no quadratic thermal term; that bias, about +0.026 K, is in every
    # bin after the step), and the 5 K step within 1 %.
    assert peak > 20e-6, "the script produced too little strain to test anything"
    assert e_err < 1.2e-6
    assert abs(rel_end) < 0.03
    assert t_err < 0.07 + abs(step_meas - AMBIENT_STEP_C)
    assert abs(step_meas / AMBIENT_STEP_C - 1) < 0.01
    # and without the reference grating the temperature step would read as strain
    naive = (lam_s - lam0_s) / lam0_s / (1 - fbg["p_e"])
    assert np.mean(naive[(t > t_step + 3) & (t < t_on)]) > 20 * e_err
