"""`analyze_recording` per step (issue 13): each kind of step gets its seed's figure and
numbers, and what does not apply is refused with a reason. Synthetic recordings (real
HDF5 files, physics-made samples), a few tenths of a second each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host_sdk.analysis import (
    FARADAY_C_MOL,
    FilmMaterial,
    PiecewiseCurrent,
    critical_capacity_map_c_m2,
    slab_surface_mol_m3,
)
from host_sdk.recording.analyze import analyze_recording
from protocol import defs
from tests.analysis.synthetic import Step, waveform_events, write

AREA = 3.85e-5
FILM = FilmMaterial(1e-9, 100e-6, 1000.0, 0.0, contact_fraction=0.05)
I_A_M2 = 10.0


def _protocol(steps: list[dict]) -> dict:
    return {
        "source": "test.toml",
        "name": "t",
        "file": {"protocol": {"name": "t"}, "cell": {"area_m2": AREA}, "steps": steps},
    }


def _stripping(tmp: Path, rests: list[float], fresh: bool, url: str = "socket://x:1") -> Path:
    """One pulse-train series per rest; their charges are the planner's own capacities."""
    caps = critical_capacity_map_c_m2(FILM, I_A_M2, [1.0], rests)[0]
    proto_steps, steps, events, t_v, v_v, i_v = [], [], [], [], [], []
    t = 0.0
    for k, (rest, cap) in enumerate(zip(rests, caps, strict=True)):
        proto_steps.append({"kind": "rest", "duration_s": 1.0, "fresh_cell": fresh})
        steps.append(Step(2 * k, "rest", "fresh cell", t, t + 1.0, "completed"))
        t += 1.0
        n = int(np.ceil(cap / I_A_M2))  # pulses of 1 s, the last one cut at the cutoff
        proto_steps.append(
            {
                "kind": "pulse_train",
                "label": f"rest {rest:g} s",
                "current_a_m2": I_A_M2,
                "t_on_s": 1.0,
                "t_off_s": rest,
                "count": 65535,
                "cutoff": {"v_max_v": 3.0},
            }
        )
        edges = []
        for p in range(n):
            on = t + p * (1.0 + rest)
            edges += [(on, I_A_M2 * AREA), (on + 1.0, 0.0)]
            ts = np.linspace(on, on + 1.0, 11)
            t_v.append(ts)
            v_v.append(0.3 + 2.7 * ((p + 1) / n) ** 4 * (ts - on))
            i_v.append(np.full(ts.size, I_A_M2 * AREA))
        t_end = edges[-1][0]
        events += waveform_events(
            t, defs.CMD_PULSE_TRAIN, edges[:-1], t_end, defs.CAUSE_V_MAX, cap * AREA
        )
        steps.append(Step(2 * k + 1, "pulse_train", f"rest {rest:g} s", t, t_end, "v_max"))
        t = t_end + 1.0
    elec = (np.concatenate(t_v), np.concatenate(v_v), np.concatenate(i_v))
    load = (np.arange(0.0, t, 0.5), np.full(int(np.ceil(t / 0.5)), 1131.0))
    return write(
        tmp / "strip.h5",
        protocol=_protocol(proto_steps),
        steps=steps,
        events=events,
        elec=elec,
        load=load,
        cell={"electrode_area_m2": AREA, "stack_area_m2": 1.131e-4},
        url=url,
    )


def test_pulse_series_give_capacity_vs_rest_with_prediction_and_limit(tmp_path: Path) -> None:
    rests = [0.0, 0.5, 1.0, 2.0, 5.0]
    s = analyze_recording(_stripping(tmp_path, rests, fresh=True), tmp_path / "a", film=FILM)
    (a,) = [x for x in s["analyses"] if x["analysis"] == "critical stripping capacity vs rest"]
    assert a["steps"] == [1, 3, 5, 7, 9]
    rows = a["numbers"]["series"]
    assert [r["rest_s"] for r in rows] == rests and all(r["on_fresh_cell"] for r in rows)
    planner = a["numbers"]["planner"]
    got = [r["capacity_mah_cm2"] for r in rows]
    np.testing.assert_allclose(planner["capacity_mah_cm2"], got, rtol=1e-6)  # f4 charges
    assert planner["theoretical_mah_cm2"] == pytest.approx(
        FILM.theoretical_capacity_c_m2 / 36_000, rel=1e-12
    )
    assert {"capacity_vs_rest", "pulse_series", "voltage_current"} <= set(
        f["name"] for f in s["figures"]
    )
    for f in s["figures"]:  # vector beside raster, each with its caption
        assert {Path(p).suffix for p in f["files"]} == {".png", ".pdf", ".svg"}
        assert f["caption"]
    assert s["pulsed_stripping"][0]["end_cause"] == "v_max"
    why = {r["analysis"]: r["reason"] for r in s["refused"]}
    assert "not a galvanostatic step" in why["pressure vs normalized capacity"]
    assert any("critical stripping capacity" in line for line in s["report"])
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["analyses"]


def test_series_on_one_cell_are_marked_and_no_film_is_refused(tmp_path: Path) -> None:
    s = analyze_recording(
        _stripping(tmp_path, [0.5, 1.0, 2.0], fresh=False), tmp_path / "a", formats=("png",)
    )
    rows = s["pulsed_stripping"]
    assert [r["on_fresh_cell"] for r in rows] == [True, False, False]
    why = {r["analysis"]: r["reason"] for r in s["refused"]}
    assert "--film" in why["planner prediction"]
    assert "fresh cells" in why["plateau of capacity vs rest"]


def test_staircase_gives_the_critical_current_density(tmp_path: Path) -> None:
    j = np.arange(1, 16) * 0.05  # mA cm⁻²: 0.05 … 0.75, the cutoff in the last level
    amps = j * 10 * AREA
    eta = 0.2 * j + 20.0 * np.clip(j - 0.5, 0.0, None) ** 1.5
    t_on = 10.0 + 40.0 * np.arange(j.size)
    ts, vs, cur = [], [], []
    for t0, a, e in zip(t_on, amps, eta, strict=True):
        tt = np.arange(t0 - 5.0, t0 + 35.0, 0.5)
        on = (tt > t0) & (tt <= t0 + 5.0)
        ts.append(tt)
        vs.append(np.where(on, 0.01 + e * np.clip(tt - t0, 0, 5) / 5.0, 0.01))
        cur.append(np.where(on, a, 0.0))
    edges = [p for t0, a in zip(t_on, amps, strict=True) for p in ((t0, a), (t0 + 5.0, 0.0))]
    t_end = t_on[-1] + 5.0
    events = waveform_events(5.0, defs.CMD_STAIRCASE, edges[:-1], t_end, defs.CAUSE_V_MAX, 0.1)
    steps = [Step(0, "staircase", "0.05 -> 1 mA/cm2", 5.0, t_end, "v_max")]
    proto = _protocol(
        [
            {
                "kind": "staircase",
                "start_a_m2": 0.5,
                "step_a_m2": 0.5,
                "stop_a_m2": 10.0,
                "dwell_s": 40.0,
                "on_s": 5.0,
            }
        ]
    )
    path = write(
        tmp_path / "st.h5",
        protocol=proto,
        steps=steps,
        events=events,
        elec=(np.concatenate(ts), np.concatenate(vs), np.concatenate(cur)),
        cell={"electrode_area_m2": AREA},
    )
    s = analyze_recording(path, tmp_path / "a", formats=("png",))
    (n,) = s["staircase"]
    assert n["ccd_ma_cm2"] == pytest.approx(0.75)
    assert n["last_complete_level_ma_cm2"] == pytest.approx(0.70)
    assert 0.5 < n["onset_unstable_ma_cm2"] <= 0.65
    assert n["stable_slope_v_per_ma_cm2"] == pytest.approx(0.2, rel=0.02)


def test_gitt_gives_d_per_pulse_against_state_of_charge(tmp_path: Path) -> None:
    d, ll, c0 = 1e-13, 10e-6, 10_000.0
    t_on = 100.0 + 1210.0 * np.arange(4)
    hist = PiecewiseCurrent(np.ravel(np.column_stack((t_on, t_on + 10.0))), [1.0, 0.0] * 4)
    # 0.1 s around each pulse, 2 s in the long rests
    fine = [np.arange(a - 5.0, a + 60.0, 0.1) for a in t_on]
    coarse = [np.arange(a + 60.0, a + 1205.0, 2.0) for a in t_on]
    t = np.sort(np.concatenate([np.arange(0.0, 95.0, 2.0), *fine, *coarse]))
    cs = slab_surface_mol_m3(t, hist, d, ll, c0)
    i = hist.current(t) * 1e-4
    v = 3.0 + 0.5 * (cs - c0) / c0 - i * 5.0
    edges = [p for a in t_on for p in ((a, 1e-4), (a + 10.0, 0.0))]
    events = waveform_events(99.0, defs.CMD_GITT, edges, t[-1], defs.CAUSE_COMPLETED, 4e-3)
    proto = _protocol(
        [{"kind": "gitt", "current_a": 1e-4, "t_pulse_s": 10.0, "t_rest_s": 1200.0, "count": 4}]
    )
    path = write(
        tmp_path / "g.h5",
        protocol=proto,
        steps=[Step(0, "gitt", "", 99.0, t[-1], "completed")],
        events=events,
        elec=(t, v, i),
    )
    refused = analyze_recording(path, tmp_path / "r", formats=("png",))
    assert (
        "V/S"
        in {r["analysis"]: r["reason"] for r in refused["refused"]}["GITT diffusion coefficient"]
    )
    s = analyze_recording(path, tmp_path / "a", v_over_s_m=ll, formats=("png",))
    pulses = s["gitt"]["pulses"]
    assert len(pulses) == 4 and all(p["assumptions_ok"] for p in pulses)
    np.testing.assert_allclose([p["d_m2_s"] for p in pulses], d, rtol=0.01)
    np.testing.assert_allclose([p["soc"] for p in pulses], [0.125, 0.375, 0.625, 0.875])


def _creep_mpa(t: np.ndarray) -> np.ndarray:
    """The press settling: 0.8 MPa per e-fold of time since it was loaded a day ago."""
    return -0.8 * np.log(1.0 + (t + 86_400.0) / 1800.0)


def test_galvanostatic_steps_give_pressure_phases_per_direction(tmp_path: Path) -> None:
    # seed 001: a long rest under the preload, then lithiation (I < 0) and delithiation;
    # the press creeps all along, and the rest's creep law is taken out of each step
    knots_q, knots_p = [0.0, 0.58, 0.82, 1.0], [0.0, 0.23, 0.69, 0.85]
    t_rest = np.arange(0.0, 7200.0, 10.0)
    steps = [Step(0, "rest", "rest under preload", 0.0, 7200.0, "completed")]
    events, ts, vs, cs = [], [t_rest], [np.full(t_rest.size, 3.4)], [np.zeros(t_rest.size)]
    tl, fl = [t_rest], [(15.0 + _creep_mpa(t_rest)) * 1e6 * 6.362e-5]
    t = 7200.0
    for k, (amps, label) in enumerate(
        [(-1e-4, "lithiation"), (1e-4, "delithiation"), (-1e-4, "mixed")], start=1
    ):
        tt = np.arange(t, t + 7200.0, 10.0)
        q = (tt - t) / 7200.0
        cur = np.full(tt.size, amps)
        if label == "mixed":
            cur[tt.size // 2 :] *= -1.0
        rise = np.interp(q, knots_q, knots_p) if amps < 0 else 0.4 * q
        ts.append(tt), vs.append(3.5 + 0.1 * q), cs.append(cur)
        tl.append(tt), fl.append((15.0 + rise + _creep_mpa(tt)) * 1e6 * 6.362e-5)
        events += waveform_events(
            t, defs.CMD_CONSTANT, [(t, amps)], t + 7190.0, defs.CAUSE_V_MAX, 0.72
        )
        steps.append(Step(k, "constant", label, t, t + 7190.0, "v_max"))
        t += 7200.0
    proto = _protocol(
        [{"kind": "rest", "duration_s": 7200.0}]
        + [
            {"kind": "constant", "current_a": a, "cutoff": {"v_max_v": 4.2}}
            for a in (-1e-4, 1e-4, -1e-4)
        ]
    )
    path = write(
        tmp_path / "p.h5",
        protocol=proto,
        steps=steps,
        events=events,
        elec=(np.concatenate(ts), np.concatenate(vs), np.concatenate(cs)),
        load=(np.concatenate(tl), np.concatenate(fl)),
        cell={"electrode_area_m2": 6.362e-5, "stack_area_m2": 6.362e-5},
    )
    s = analyze_recording(path, tmp_path / "a", formats=("png",))
    phases = s["pressure_phases"]
    assert "rest under preload" in phases["creep"]
    assert phases["creep_law"]["b_pa"] == pytest.approx(-0.8e6, rel=0.01)
    (lith,) = phases["I < 0"]
    np.testing.assert_allclose(lith["breaks_q"], [0.58, 0.82], atol=0.02)
    np.testing.assert_allclose(lith["rates_mpa_per_q"], [0.397, 1.917, 0.889], rtol=0.03)
    assert lith["total_rise_mpa"] == pytest.approx(0.85, abs=0.01)
    (deli,) = phases["I > 0"]
    assert deli["rates_mpa_per_q"] == pytest.approx([0.4], rel=0.01)
    why = [r for r in s["refused"] if r["steps"] == [3]]
    assert why and "changes sign" in why[0]["reason"]


def test_fbg_gives_shift_strain_stress_and_temperature(tmp_path: Path) -> None:
    t = np.arange(0.0, 7200.0, 1.0)
    strain = 50e-6 * np.sin(t / 600.0)
    dT = 2.0 * t / 7200.0
    g1 = 1530e-9 * (1 + 7.25e-6 * dT)
    g0 = 1550e-9 * (1 + 0.78 * strain + 7.25e-6 * dT)
    path = write(
        tmp_path / "f.h5",
        protocol=None,
        steps=[],
        events=[],
        fbg=(t, g0, g1),
        elec=(t, np.full(t.size, 3.7), np.zeros(t.size)),
    )
    s = analyze_recording(path, tmp_path / "a", fbg_modulus_pa=10e9, formats=("png",))
    f = s["fbg"]
    assert f["temperature_compensated"]
    assert f["strain_max"] == pytest.approx(50e-6, rel=0.03)  # λ₀: the first 20 sweeps
    assert f["stress_max_mpa"] == pytest.approx(10e9 * f["strain_max"] / 1e6, rel=1e-9)
    assert f["delta_t_fbg_k"][1] == pytest.approx(2.0, abs=0.01)
    assert "fbg_strain_stress" in [x["name"] for x in s["figures"]]


def test_theoretical_capacity_of_an_exchanging_film_is_the_whole_film() -> None:
    ex = FilmMaterial(2e-9, 5e-6, 19_350.0, 3_440.0, 0.002, 1, 0.5)
    assert ex.theoretical_capacity_c_m2 == pytest.approx(FARADAY_C_MOL * 5e-6 * 15_910.0)
    assert FILM.theoretical_capacity_c_m2 == pytest.approx(0.05 * FARADAY_C_MOL * 100e-6 * 1000)
