"""The emulated press as a calibration fixture: known masses on the load cell, the press
opened, through the control channel (also when messages arrive back to back), and the
board process out of the terminal's reach (its own session: Ctrl-C is the host's)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from boards.emulated.plant import Plant

SCEN = Path(__file__).resolve().parents[2] / "boards" / "emulated" / "scenarios"
G = 9.80665


def _scenario() -> dict:
    return json.loads((SCEN / "nak50_pulsed.json").read_text())


def test_masses_add_to_the_stack_force_and_an_open_press_removes_it() -> None:
    sc = _scenario()
    p = Plant(sc)
    stack = p.force_n(0.0)
    assert stack == pytest.approx(10e6 * sc["pressure"]["stack_area_m2"])  # 10 MPa preload
    p.applied_n = 2.0 * G
    assert p.force_n(0.0) == pytest.approx(stack + 2.0 * G)
    p.press_open = True
    assert p.force_n(0.0) == pytest.approx(2.0 * G)
    assert p.pressure_pa(0.0) == pytest.approx(10e6)  # the cell's own pressure is untouched


def test_back_to_back_messages_are_all_applied_on_the_board() -> None:
    from host_sdk.calibration import measure_known_loads
    from host_sdk.client import Rig

    truth = _scenario()["loadcell"]
    with Rig.open("emu://nak50_pulsed?seed=4&load_sps=80") as rig:
        emu = rig.emulator
        board_pid = emu._board._proc.pid
        assert os.getsid(board_pid) != os.getsid(0), "the board shares the terminal's session"
        emu.open_press(True)  # two datagrams at once: the board once joined them and
        emu.apply_mass(5.0)  # dropped both
        (counts,) = measure_known_loads(rig, [0.0], 0.5, lambda _f: None)
    want = truth["tare_counts"] + 5.0 * G / truth["span_n_per_count"]
    assert counts == pytest.approx(want, abs=50)  # 25 counts of noise per reading
