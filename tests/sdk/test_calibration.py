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
        stack_area_m2=1e-4,
    )
    ch = si_channels(load_recording(path), cal)
    assert np.allclose(ch["force_n"][1], 500.0)
    assert np.allclose(ch["pressure_pa"][1], 5e6)
    # DOMAIN.md: sensing +150 pm, reference +100 pm at 1550 nm -> 41.4 µε
    assert ch["strain"]["g0"][1][0] * 1e6 == pytest.approx(41.4, abs=0.05)


# ---- the fit refuses points that cannot calibrate ---------------------------------------------
@pytest.mark.parametrize(
    ("counts", "loads", "nominal", "match"),
    [
        ([5000.0, 5000.2, 4999.9], [0.0, 9.8, 19.6], 2e-4, "hardly change"),  # loads not on it
        ([5000.0, 5001.0], [0.0, 0.0], None, "all 0 N"),  # one load only
        ([7.0, 7.0], [0.0, 9.8], None, "all readings are equal"),
        ([0.0, 50_000.0, 50_000.0, 250_000.0], [0.0, 10.0, 20.0, 50.0], None, "on a line"),
        ([0.0, -50_000.0], [0.0, 10.0], 2e-4, "nominal"),  # sign flipped
    ],
)
def test_fit_refuses_points_that_do_not_calibrate(
    counts: list[float], loads: list[float], nominal: float | None, match: str
) -> None:
    from host_sdk.calibration import CalibrationError

    with pytest.raises(CalibrationError, match=match):
        fit_load_cell(counts, loads, nominal_n_per_count=nominal)


def test_fit_accepts_a_span_near_the_nominal_one() -> None:
    lc = fit_load_cell([100.0, 49_100.0], [0.0, 9.8], nominal_n_per_count=2e-4)
    assert lc.span_n_per_count == pytest.approx(2e-4)
    assert lc.tare_counts == pytest.approx(100.0)


def test_calibration_file_errors_say_what_is_wrong(tmp_path: Path) -> None:
    from host_sdk.calibration import CalibrationError

    with pytest.raises(CalibrationError, match="no such file"):
        Calibration.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(CalibrationError, match="not JSON"):
        Calibration.load(tmp_path / "bad.json")
    # an old file's single "area_m2" was the electrode area: never a stack area
    (tmp_path / "old.json").write_text('{"area_m2": 3.85e-5}')
    old = Calibration.load(tmp_path / "old.json")
    assert old.stack_area_m2 is None and old.electrode_area_m2 == 3.85e-5


def test_grating_roles_stored_in_the_recording_compensate_without_a_calibration(
    tmp_path: Path,
) -> None:
    fields = (
        wire.FieldInfo("t_us", "us"),
        wire.FieldInfo("status", ""),
        wire.FieldInfo("g0", "nm", 1e-6),
        wire.FieldInfo("g1", "nm", 1e-6),
    )
    fbg = wire.StreamInfo(1, "fbg", 10.0, True, "<IBii", fields)
    hello = wire.reference_hello(streams=(fbg,))
    n = 50
    f = np.zeros(n, fbg.dtype)
    f["g0"] = round(1550.0 * 1e6)
    f["g1"] = round(1550.0 * 1e6)
    f["g0"][25:] = round(1550.150 * 1e6)  # sensing +150 pm
    f["g1"][25:] = round(1550.100 * 1e6)  # reference +100 pm (temperature)
    path = tmp_path / "roles.h5"
    with Recorder(path, hello, reference_grating="g1") as r:
        r.add_block(
            SimpleNamespace(stream="fbg", records=f, t_s=np.arange(n) / 10.0, first_index=0)
        )
    rec = load_recording(path)
    assert rec.grating_roles == {"g0": "sensing", "g1": "reference"}
    ch = si_channels(rec)  # no calibration file: the recording knows the reference
    assert list(ch["strain"]) == ["g0"]
    assert ch["strain"]["g0"][1][-1] * 1e6 == pytest.approx(41.4, abs=0.05)  # DOMAIN.md
    assert not ch["notes"]
