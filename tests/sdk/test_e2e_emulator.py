"""End to end against the emulated board (real firmware on the MicroPython unix port)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("host_sdk.emulator") is None:  # pragma: no cover
    pytest.skip("host_sdk.emulator is not available yet", allow_module_level=True)

from host_sdk import cli  # noqa: E402
from host_sdk.client import CommandRefused, Cutoffs, Rig  # noqa: E402
from host_sdk.protocols import parse_protocol, run_protocol  # noqa: E402
from host_sdk.recording import Recorder, load_recording  # noqa: E402
from protocol import defs  # noqa: E402

URL = "emu://nak50_pulsed?speed=10&seed=3"


def _wait(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def rig() -> Rig:
    try:
        r = Rig.open(URL)
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    yield r
    r.close()


def test_hello_and_status(rig: Rig) -> None:
    assert rig.board_id == "emulated" and rig.unique_id
    assert {"load", "fbg", "elec", "temp"} <= set(rig.streams)
    st = rig.status()
    assert st.state_name in ("idle", "running", "latched")


def test_out_of_range_is_refused_with_reason(rig: Rig) -> None:
    with pytest.raises(CommandRefused) as e:
        rig.constant_current(current_a=1.0, cutoffs=Cutoffs(max_duration_s=1.0))
    assert e.value.reason_name == "out_of_range" and e.value.text


def test_record_and_load_back(rig: Rig, tmp_path: Path) -> None:
    rig.configure_stream("elec", rate_hz=100)
    rig.configure_stream("load", rate_hz=10)
    rig.set_streaming(True)
    path = tmp_path / "e2e.h5"
    rec = Recorder.attach(rig, path)
    time.sleep(2.0)
    rec.close()
    data = load_recording(path)
    assert data.intact
    elec = data.streams["elec"]
    assert len(elec) > 500  # 2 s wall at speed 20 and 100 Hz ~ 4000
    idx = elec.records["sample_index"]
    assert np.all(np.diff(idx) == 1)
    assert np.all(np.diff(elec.t_s) > 0)
    # device timestamps are the emulator's business (it lags under CPU load): loose check
    assert 0.005 < np.median(np.diff(elec.t_s)) < 0.02
    assert data.lost_samples()["elec"] == 0


def test_protocol_runs_with_events(rig: Rig, tmp_path: Path) -> None:
    proto = parse_protocol(
        {
            "cell": {"area_m2": 3.85e-5},
            "safety": {"watchdog_s": 30.0},
            "streams": {"elec": {"rate_hz": 50}},
            "steps": [
                {"kind": "rest", "duration_s": 2.0},
                {
                    "kind": "pulse_train",
                    "current_a_m2": 5.0,
                    "t_on_s": 1.0,
                    "t_off_s": 1.0,
                    "count": 3,
                    "cutoff": {"v_max_v": 3.0},
                },
            ],
        }
    )
    rec = Recorder.attach(rig, tmp_path / "p.h5", protocol=proto.to_dict())
    result = run_protocol(rig, proto, recorder=rec)
    rec.close()
    assert result.completed
    assert [s.end_cause for s in result.steps] == ["completed", "completed"]
    assert result.steps[1].t_end_s - result.steps[1].t_start_s == pytest.approx(6.0, abs=0.5)
    data = load_recording(tmp_path / "p.h5")
    edges = data.events[data.events["code"] == defs.EV_EDGE]
    assert len(edges) >= 5
    assert data.markers.size == 2


def test_board_reset_reconnects_and_marks_gap(rig: Rig, tmp_path: Path) -> None:
    rig.configure_stream("elec", rate_hz=100)
    rig.set_streaming(True)
    rec = Recorder.attach(rig, tmp_path / "reset.h5")
    time.sleep(0.5)
    boots = rig.boots
    rig.emulator.reset_board()
    assert _wait(lambda: rig.boots > boots)
    n0 = rig.last_index.get(defs.STREAM_ELEC, 0)
    assert _wait(lambda: rig.last_index.get(defs.STREAM_ELEC, 0) > n0 + 50)
    rec.close()
    data = load_recording(tmp_path / "reset.h5")
    assert any(int(g["kind"]) == 2 for g in data.gaps)  # board_reset
    assert np.all(np.diff(data.streams["elec"].t_s) > 0)


def test_port_loss_reconnects(rig: Rig) -> None:
    rig.configure_stream("elec", rate_hz=100)
    rig.set_streaming(True)
    n = rig.reconnects
    rig.emulator.unplug(1.0)
    assert _wait(lambda: rig.reconnects > n, 15.0)
    assert any(g.kind == "link_down" for g in rig.gaps)
    rig.heartbeat()


def test_cli_record_with_protocol(tmp_path: Path) -> None:
    p = tmp_path / "short.toml"
    p.write_text(
        "[cell]\narea_m2 = 3.85e-5\n[streams]\nelec = { rate_hz = 50 }\n"
        '[[steps]]\nkind = "rest"\nduration_s = 5.0\n'
    )
    out = tmp_path / "cli.h5"
    assert cli.main(["run", str(p), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    data = load_recording(out)
    assert data.protocol is not None and len(data.streams["elec"]) > 100


def test_demo_writes_outputs(tmp_path: Path) -> None:
    from host_sdk.demo import run_demo

    summary = run_demo(tmp_path, rests_s=(0.5,), quiet=True)
    for name in ("recording.h5", "summary.json", "voltage_current.png", "protocol.toml"):
        assert (tmp_path / name).exists(), name
    rows = json.loads((tmp_path / "summary.json").read_text())["pulsed_stripping"]
    assert rows[0]["end_cause"] == "v_max" and rows[0]["capacity_mah_cm2"] > 0
    assert summary["recording"]["problems"] == []
