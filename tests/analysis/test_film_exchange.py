"""The film with contact spots and lateral exchange (seed 004's model) in the SDK's solver
agrees with the emulated board's plant, which solves the same model its own way (modes
by Jacobi rotations on its own geometric grid, read out by linear extrapolation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from host_sdk.analysis import FilmScenario, PulseTrain
from host_sdk.analysis.filmexact import surface_at_times

SCENARIOS = Path(__file__).resolve().parents[2] / "boards" / "emulated" / "scenarios"


def test_exchanging_film_matches_the_emulated_plant() -> None:
    from boards.emulated.plant import Plant

    sc = json.loads((SCENARIOS / "nak50_pulsed.json").read_text())
    fm, area = sc["film"], sc["cell"]["area_m2"]
    train = PulseTrain(10.0, 1.0, 1.0)
    times = np.arange(0.5, 60.0, 0.5)
    plant = Plant(sc, 1)
    want, edge = [], 0.0
    for t in times:
        while edge <= t:
            plant.set_current(float(train.current(edge + 1e-6)) * area, int(round(edge * 1e6)))
            edge += 1.0
        plant.advance(int(round(t * 1e6)))
        want.append(plant.surface_conc())
    scen = FilmScenario(
        fm["d_m2_s"],
        fm["thickness_m"],
        train,
        fm["c0_mol_m3"],
        fm["contact_fraction"],
        1,
        fm["lateral_rate_per_s"],
    )
    got = surface_at_times([scen], [times], n_cells=100)[0]
    depletion = fm["c0_mol_m3"] - min(want)
    assert depletion > 10_000.0  # the contact spots deplete deeply within seconds
    assert np.max(np.abs(got - np.asarray(want))) < 3e-4 * depletion
