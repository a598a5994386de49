"""Calibration: load-cell fit, JSON round trip, SI channels from a recording."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from host_sdk import wire
from host_sdk.calibration import (
    Calibration,
    FbgCalibration,
    LoadCellCalibration,
    fit_load_cell,
    si_channels,
)
from host_sdk.recording import Recorder, load_recording


def test_fit_load_cell_recovers_tare_and_span() -> None:
    counts = [1000.0, 3000.0, 5000.0]
    loads = [0.0, 20.0, 40.0]
    lc = fit_load_cell(counts, loads)
    assert lc.tare_counts == pytest.approx(1000.0)
    assert lc.span_n_per_count == pytest.approx(0.01)
    assert lc.rms_residual_n < 1e-9
    with pytest.raises(ValueError, match="at least two"):
        fit_load_cell([1.0], [0.0])


def test_calibration_json_round_trip(tmp_path: Path) -> None:
    cal = Calibration(
        LoadCellCalibration(10.0, 0.5, [(10.0, 0.0)]),
        FbgCalibration({"g0": 1.55e-6, "g1": 1.53e-6}, "g1"),
        6.362e-5,
        "u1",
    )
    back = Calibration.load(cal.save(tmp_path / "c.json"))
    assert back == Calibration.from_dict(cal.to_dict())
    assert back.load_cell is not None and back.load_cell.span_n_per_count == 0.5
    assert back.fbg is not None and back.fbg.reference_grating == "g1"


def test_si_channels_pressure_and_compensated_strain(tmp_path: Path) -> None:
    fields = (
        wire.FieldInfo("t_us", "us"),
        wire.FieldInfo("status", ""),
        wire.FieldInfo("g0", "nm", 1e-6),
        wire.FieldInfo("g1", "nm", 1e-6),
    )
    fbg = wire.StreamInfo(1, "fbg", 10.0, True, "<IBii", fields)
    load = wire.reference_streams()[0]
    hello = wire.reference_hello(streams=(load, fbg))
    n = 50
    f = np.zeros(n, fbg.dtype)
    lam_s = 1550.0 + 0.150  # nm: +150 pm on the sensing grating
    lam_r = 1550.0 + 0.100  # +100 pm on the reference
    f["g0"] = round(lam_s * 1e6)
    f["g1"] = round(lam_r * 1e6)
    ld = np.zeros(n, load.dtype)
    ld["counts"] = 2000
    path = tmp_path / "c.h5"
    with Recorder(path, hello) as r:
        t = np.arange(n) / 10.0
        r.add_block(SimpleNamespace(stream="fbg", records=f, t_s=t, first_index=0))
        r.add_block(SimpleNamespace(stream="load", records=ld, t_s=t, first_index=0))
    cal = Calibration(
        LoadCellCalibration(1000.0, 0.5),
        FbgCalibration({"g0": 1550e-9, "g1": 1550e-9}, "g1"),
        area_m2=1e-4,
    )
    ch = si_channels(load_recording(path), cal)
    assert np.allclose(ch["force_n"][1], 500.0)
    assert np.allclose(ch["pressure_pa"][1], 5e6)
    # DOMAIN.md: sensing +150 pm, reference +100 pm at 1550 nm -> 41.4 µε
    assert ch["strain"]["g0"][1][0] * 1e6 == pytest.approx(41.4, abs=0.05)
