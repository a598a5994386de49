"""Samples that are not measurements never reach the analysis (issue 13): HX711 glitch
words and FBG sweeps that lost a grating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host_sdk.calibration import si_channels
from host_sdk.recording.reader import Recording, StreamData

SPAN_N, TARE = 2e-4, 84_213


def _recording(streams: dict[str, StreamData]) -> Recording:
    return Recording(
        path=Path("mem.h5"),
        streams=streams,
        gaps=np.empty(0),
        events=np.empty(0),
        markers=np.empty(0),
        hello={},
        calibration={},
        protocol=None,
        firmware_version="",
        board_id="emulated",
        unique_id="x",
        meta={},
        complete=True,
        cell={"stack_area_m2": 1.131e-4},
    )


def _load_stream(n: int, glitch_at: list[int]) -> StreamData:
    dt = np.dtype(
        [
            ("t_us", "<u4"),
            ("counts", "<i4"),
            ("status", "u1"),
            ("t_dev_s", "<f8"),
            ("sample_index", "<i8"),
        ]
    )
    rec = np.zeros(n, dtype=dt)
    rec["t_dev_s"] = np.arange(n) / 10.0
    force = 1131.0 + 30.0 * np.sin(np.arange(n) / 500.0)  # 10 MPa on 1.131 cm², breathing
    rec["counts"] = np.round(force / SPAN_N + TARE)
    rec["counts"][glitch_at] = 0x7FFFFF  # the HX711's all-ones word
    rec["status"][glitch_at] = 0x01  # LOAD_GLITCH
    fields = [
        {"name": "counts", "unit": "N", "scale": SPAN_N, "offset": -TARE * SPAN_N},
        {"name": "status", "unit": "", "scale": 1.0, "offset": 0.0},
    ]
    return StreamData("load", 0, rec, fields, 10.0)


def test_load_cell_glitch_samples_are_left_out() -> None:
    glitches = [1000, 40_000, 80_000, 120_000, 158_000]  # 5 words in 158 401 samples
    rec = _recording({"load": _load_stream(158_401, glitches)})
    ch = si_channels(rec)
    t, f = ch["force_n"]
    assert f.size == 158_401 - 5 and t.size == f.size
    assert np.max(f) == pytest.approx(1161.0, abs=0.5)  # not 1.7 kN from a glitch word
    assert np.max(ch["pressure_pa"][1]) < 10.3e6
    assert any("5 load-cell samples left out" in n for n in ch["notes"])


def _fbg_stream(n: int, lost_sensing: list[int], lost_ref: list[int]) -> StreamData:
    dt = np.dtype(
        [
            ("t_us", "<u4"),
            ("status", "u1"),
            ("g0", "<i4"),
            ("g1", "<i4"),
            ("t_dev_s", "<f8"),
            ("sample_index", "<i8"),
        ]
    )
    rec = np.zeros(n, dtype=dt)
    rec["t_dev_s"] = np.arange(n) / 10.0
    strain = 50e-6 * np.sin(np.arange(n) / 50.0)
    rec["g0"] = np.round(1550e6 * (1 + 0.78 * strain))  # fm
    rec["g1"] = 1535_000_000
    rec["g0"][lost_sensing] = 0
    rec["g1"][lost_ref] = 0
    rec["status"][lost_sensing] |= 1
    rec["status"][lost_ref] |= 2
    fields = [
        {"name": "status", "unit": "", "scale": 1.0, "offset": 0.0},
        {"name": "g0", "unit": "nm", "scale": 1e-6, "offset": 0.0},
        {"name": "g1", "unit": "nm", "scale": 1e-6, "offset": 0.0},
    ]
    return StreamData("fbg", 1, rec, fields, 10.0, {"g0": "sensing", "g1": "reference"})


def test_fbg_sweeps_that_lost_a_grating_are_left_out() -> None:
    rec = _recording({"fbg": _fbg_stream(2000, [100, 700], [300])})
    ch = si_channels(rec)
    t, eps = ch["strain"]["g0"]
    assert eps.size == 2000 - 3  # a sweep without either grating cannot be compensated
    assert np.max(np.abs(eps)) < 60e-6  # not −1/(1 − p_e): the 0 of a lost grating
    assert ch["wavelength_m"]["g0"][1].min() > 1549e-9
    t_ref, dt_k = ch["fbg_delta_t_k"]
    assert dt_k.size == 1999 and np.max(np.abs(dt_k)) < 1e-6
