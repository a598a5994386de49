"""The plant in CPython: numerics against DOMAIN.md's check tables, mass balance,
determinism, the rest-time effect and the pressure phases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from boards.emulated.plant import FARADAY, Plant, XorShift

SCEN = Path(__file__).resolve().parents[2] / "boards" / "emulated" / "scenarios"


def load(name: str) -> dict:
    return json.loads((SCEN / f"{name}.json").read_text())


def slab(thickness_m: float, n: int = 24) -> dict:
    return {
        "cell": {"area_m2": 1.0},
        "film": {
            "thickness_m": thickness_m,
            "d_m2_s": 1e-9,
            "c0_mol_m3": 1000.0,
            "n_cells": n,
            "first_cell_m": 0.5e-6,
            "dt0_s": 1e-3,
        },
        "electrical": {"ocv_vs_theta": [[0, 0], [1, 1]], "r_ohm": 0.0},
    }


def test_finite_slab_matches_domain_table() -> None:
    p = Plant(slab(100e-6))
    p.set_current(10.0, 0)
    for t, want in ((1, 996.30176), (5, 991.37821), (10, 986.18108), (50, 944.72390)):
        p.advance(t * 1_000_000)
        assert p.surface_conc() == pytest.approx(want, abs=0.05)


def test_pulse_train_superposition_matches_domain_table() -> None:
    p = Plant(slab(2e-3, 40))
    want = {1: 996.3018, 2: 998.4681, 3: 995.1263, 5: 994.2533, 6: 996.6879}
    for t in range(6):
        p.set_current(10.0 if t % 2 == 0 else 0.0, t * 1_000_000)
        p.advance((t + 1) * 1_000_000)
        if t + 1 in want:
            assert p.surface_conc() == pytest.approx(want[t + 1], abs=0.03)


@pytest.mark.parametrize("name", ["nak50_pulsed", "naion_fbg_pouch", "gain_solid_state"])
def test_mass_balance(name: str) -> None:
    sc = load(name)
    p = Plant(sc)
    film = p.film
    m0 = film.moles_per_area()
    amp = 0.5 * sc["source"]["max_current_a"]
    t = 0
    for k in range(40):
        p.set_current(amp if k % 2 == 0 else -0.3 * amp, t)
        t += 700_000 + 13_000 * k
        p.advance(t)
    removed = film.removed_mol_m2
    assert film.moles_per_area() + removed == pytest.approx(m0, rel=1e-9, abs=1e-12)
    assert removed == pytest.approx(p.charge_c / (sc["cell"]["area_m2"] * FARADAY), rel=1e-12)


def test_how_often_the_sensors_read_does_not_change_the_cell() -> None:
    """The film is solved exactly between current edges: reading every 200 us, at odd
    times or only at the end of each pulse gives the same state (to rounding)."""
    sc = load("nak50_pulsed")
    amps = 10.0 * sc["cell"]["area_m2"]

    def run(read_every_us: int) -> list[float]:
        p = Plant(sc, seed=1)
        out = []
        t = 0
        for k in range(8):
            p.set_current(amps if k % 2 == 0 else 0.0, t)
            end = t + 1_000_000 + 7_919 * k
            while read_every_us and t + read_every_us < end:
                t += read_every_us
                p.advance(t)
                p.voltage()
            t = end
            p.advance(t)
            out += [p.surface_conc(), p.film.column_mean(), p.voltage(), p.charge_c]
        return out

    sparse = run(0)
    for every in (200, 1_013, 33_331):
        assert run(every) == pytest.approx(sparse, rel=1e-12, abs=1e-9)


def test_prng_and_plant_are_deterministic() -> None:
    a, b = XorShift(7), XorShift(7)
    assert [a.next() for _ in range(100)] == [b.next() for _ in range(100)]
    g = XorShift(3)
    xs = [g.gauss() for _ in range(4000)]
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    assert abs(mean) < 0.06 and abs(sd - 1.0) < 0.05

    def run() -> list[float]:
        p = Plant(load("nak50_pulsed"), seed=5)
        out = []
        t = 0
        for k in range(20):
            p.set_current(3.85e-4 if k % 2 == 0 else 0.0, t)
            t += 1_000_000
            p.advance(t)
            out.append(p.voltage())
        return out

    assert run() == run()


def _capacity_mah_cm2(sc: dict, rest_s: float) -> float:
    p = Plant(sc)
    i = 10.0 * sc["cell"]["area_m2"]  # 1 mA/cm2
    t = 0
    for _ in range(5000):
        p.set_current(i, t)
        t += 1_000_000
        p.advance(t)
        if p.voltage() >= 3.0:
            break
        p.set_current(0.0, t)
        t += int(rest_s * 1e6)
        p.advance(t)
    return p.charge_c / sc["cell"]["area_m2"] / 36000.0


def test_cutoff_sooner_with_short_rests_and_levels_off() -> None:
    sc = load("nak50_pulsed")
    caps = [_capacity_mah_cm2(sc, r) for r in (0.1, 1.0, 2.0, 5.0, 10.0)]
    assert caps == sorted(caps)
    assert caps[1] > 5 * caps[0]
    assert caps[4] - caps[3] < 0.15 * caps[3]  # plateau between 5 and 10 s
    theor = (
        (sc["film"]["c0_mol_m3"] - sc["film"]["c_crit_mol_m3"])
        * sc["film"]["thickness_m"]
        * FARADAY
        / 36000.0
    )
    assert caps[4] < theor


def test_voltage_drops_sooner_at_high_current() -> None:
    sc = load("nak50_pulsed")
    vs = []
    for i_a_m2 in (5.0, 10.0):
        p = Plant(sc)
        p.set_current(i_a_m2 * sc["cell"]["area_m2"], 0)
        p.advance(2_000_000)
        vs.append(p.voltage())
    assert vs[1] > vs[0]


def test_gain_pressure_phases_match_seed_001() -> None:
    sc = load("gain_solid_state")
    p = Plant(sc)
    rise = p.pressure_rise_pa
    assert rise(0.58) / 1e6 == pytest.approx(0.61, abs=0.01)
    assert rise(0.82) / 1e6 == pytest.approx(1.07, abs=0.01)
    assert rise(1.0) / 1e6 == pytest.approx(1.23, abs=0.01)
    assert (rise(0.8) - rise(0.6)) / 0.2 / 1e6 == pytest.approx(1.91, abs=0.02)
    # lithiation (negative current) raises the pressure; the preload creeps down slowly
    q_end = sc["pressure"]["q_end_c"]
    i = -2e-3
    t_end = int(q_end / -i * 1e6)
    p0 = p.pressure_pa()
    p.set_current(i, 0)
    p.advance(t_end)
    assert p.normalized_capacity() == pytest.approx(1.0, rel=1e-3)
    creep = sc["pressure"]["creep_mpa"] * 1e6
    tau = sc["pressure"]["creep_tau_s"]
    age = sc["pressure"]["age_at_start_s"]
    dcreep = creep * (math.log(1 + (age + t_end * 1e-6) / tau) - math.log(1 + age / tau))
    assert p.pressure_pa() - p0 == pytest.approx(1.23e6 - dcreep, rel=1e-3)
    assert p.force_n() == pytest.approx(p.pressure_pa() * 63.62e-6, rel=1e-3)


def test_long_rest_keeps_relaxing_when_read_often() -> None:
    """A rest read every few ms (as the firmware's sensors do) must relax the film to the
    series solution's uniform level, however many solver steps that takes."""
    L, d, i, t_on = 10e-6, 5e-14, 1.0, 20.0
    p = Plant(
        {
            "cell": {"area_m2": 1.0},
            "film": {"thickness_m": L, "d_m2_s": d, "c0_mol_m3": 1000.0, "dt0_s": 1e-3},
            "electrical": {"ocv_vs_theta": [[0, 0], [1, 1]], "r_ohm": 0.0},
        }
    )
    p.set_current(i, 0)
    p.set_current(0.0, int(t_on * 1e6))
    t = int(t_on * 1e6)
    for _ in range(200_000):  # 2 000 s of rest in 10 ms reads: far past 1 000 steps
        t += 10_000
        p.advance(t)
    uniform = 1000.0 - i * t_on / (FARADAY * L)
    tau1 = L * L / (math.pi**2 * d)  # 203 s: 2 000 s is ~10 tau1, so within 1e-4 relative
    assert 2000.0 > 9 * tau1
    assert p.surface_conc() == pytest.approx(uniform, rel=1e-4)
