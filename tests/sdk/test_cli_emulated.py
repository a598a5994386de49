"""The CLI against the emulated board: exit codes that tell the truth about how a run ended
(and recordings that say it too), calibration with known masses, one program per port, and
Ctrl-C that stops the run without hitting the emulated board.

No wall-clock assertions: every wait is on a condition with a generous timeout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest

if importlib.util.find_spec("host_sdk.emulator") is None:  # pragma: no cover
    pytest.skip("host_sdk.emulator is not available", allow_module_level=True)

from host_sdk import cli  # noqa: E402
from host_sdk.client import Rig  # noqa: E402
from host_sdk.emulator import load_scenario, start_emulator  # noqa: E402
from host_sdk.recording import load_recording  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
URL = "emu://nak50_pulsed?seed=5&load_sps=10&fbg_hz=1"
STRESSRIG = [sys.executable, "-c", "import sys; from host_sdk.cli import main; sys.exit(main())"]


def _wait(cond: Callable[[], bool], timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")


def _protocol(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.toml"
    p.write_text(
        "[cell]\narea_m2 = 3.85e-5\nstack_diameter_m = 0.012\n[streams]\nelec = { rate_hz = 20 }\n"
        + text
    )
    return p


class Opened:
    """The rigs the CLI opens in this process (to reach their emulator), and options for
    opening them (e.g. heartbeat_s=None: the host goes silent)."""

    def __init__(self) -> None:
        self.rigs: list[Rig] = []
        self.options: dict[str, Any] = {}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[Opened]:
    state = Opened()

    def open_rig(port: str, **kw: Any) -> Rig:
        rig = Rig.open(port, **{**kw, **state.options})
        state.rigs.append(rig)
        return rig

    import host_sdk.cli.record as record_cmd

    monkeypatch.setattr(record_cmd, "open_rig", open_rig)
    yield state


def _outcome(path: Path) -> dict[str, Any]:
    rec = load_recording(path)
    assert rec.complete and rec.outcome is not None
    return rec.outcome


# ---- defect 1: aborted runs do not exit 0, and the recording says why ---------------------------
def test_watchdog_latched_run_exits_3_and_the_recording_says_why(
    tmp_path: Path, opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    opened.options["heartbeat_s"] = None  # the host goes silent: no heartbeat
    proto = _protocol(
        tmp_path,
        '[safety]\nwatchdog_s = 1.0\n[[steps]]\nkind = "pulse_train"\ncurrent_a_m2 = 5.0\n'
        "t_on_s = 1.0\nt_off_s = 1.0\ncount = 1000\n",
    )
    out = tmp_path / "wd.h5"
    code = cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3, err
    line = [x for x in err.splitlines() if "the board stopped the run" in x]
    assert line and "watchdog" in line[0] and "step 0" in line[0] and str(out) in line[0]
    outcome = _outcome(out)
    assert outcome["completed"] is False and outcome["stopped_by"] == "watchdog"
    assert outcome["step_index"] == 0 and outcome["t_dev_s"] > 0


def test_voltage_window_latch_exits_3(
    tmp_path: Path, opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    proto = _protocol(
        tmp_path,
        '[safety]\nv_min_v = -1.0\nv_max_v = 0.1\n[[steps]]\nkind = "pulse_train"\n'
        "current_a_m2 = 10.0\nt_on_s = 1.0\nt_off_s = 1.0\ncount = 100\n"
        "cutoff = { v_max_v = 3.0 }\n",  # the window (0.1 V) is met first: a latch
    )
    out = tmp_path / "vmax.h5"
    code = cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "voltage above the safety window" in err
    assert _outcome(out)["stopped_by"] == "v_max"


def test_board_reboot_during_a_run_exits_3(
    tmp_path: Path, opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    proto = _protocol(tmp_path, '[[steps]]\nkind = "rest"\nduration_s = 500000.0\n')
    out = tmp_path / "boot.h5"

    def reset_when_running() -> None:
        rigs = opened.rigs
        # the rest step has started (its waveform_start): device time alone can pass 2 s
        # before the step starts, as timesync replies carry the device clock too
        _wait(
            lambda: bool(rigs) and any(e.name == "waveform_start" for e in rigs[0].events),
            what="the run to start",
        )
        rigs[0].emulator.reset_board()

    t = threading.Thread(target=reset_when_running, daemon=True)
    t.start()
    code = cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"])
    t.join(timeout=60)
    assert code == 3, capsys.readouterr().err
    assert _outcome(out)["stopped_by"] == "boot"


def test_completed_run_exits_0_and_says_completed(tmp_path: Path) -> None:
    proto = _protocol(tmp_path, '[[steps]]\nkind = "rest"\nduration_s = 3.0\n')
    out = tmp_path / "ok.h5"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    outcome = _outcome(out)
    assert outcome["completed"] is True and outcome["stopped_by"] == "completed"
    rec = load_recording(out)
    assert rec.cell["stack_area_m2"] == pytest.approx(1.131e-4, rel=1e-3)
    assert rec.streams["elec"].rate_hz == 20.0


# ---- defect 3: calibration with known masses on the emulated press ------------------------------
def test_calibrate_load_recovers_the_hidden_span(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = load_scenario("nak50_pulsed")["loadcell"]
    out = tmp_path / "cal.json"
    port = "emu://nak50_pulsed?seed=7"
    assert cli.main(["calibrate", "load", "--port", port, "--hold-s", "2", "--out", str(out)]) == 0
    lc = json.loads(out.read_text())["load_cell"]
    span_err = lc["span_n_per_count"] / truth["span_n_per_count"] - 1.0
    assert abs(span_err) < 1e-3, span_err
    assert abs(lc["tare_counts"] - truth["tare_counts"]) < 50  # 0.01 N
    assert "the press opens" in capsys.readouterr().out


def test_calibrate_refuses_loads_that_never_reached_the_load_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the emulated board behind its plain pty: nobody places the masses, every point reads
    # the stack preload (what wrote -3.34 N/count before)
    out = tmp_path / "cal.json"
    with start_emulator("nak50_pulsed", speed="max", seed=3) as emu:
        argv = ["calibrate", "load", "--port", emu.port, "--masses-kg", "0,1,2", "--yes"]
        code = cli.main([*argv, "--hold-s", "1", "--out", str(out)])
    assert code == 1
    assert "were the loads on the load cell?" in capsys.readouterr().err
    assert not out.exists()


def test_calibrate_without_a_terminal_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    with start_emulator("nak50_pulsed", speed="max", seed=3) as emu:
        argv = ["calibrate", "load", "--port", emu.port, "--masses-kg", "0,1"]
        assert cli.main([*argv, "--out", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stdin is not a terminal" in err[0] and "--yes" in err[0]


# ---- defect 6: one program per port -----------------------------------------------------------
def _records_on_disk(path: Path) -> int:
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["streams/elec/time"].shape[0])
    except (OSError, KeyError):
        return 0


def test_a_second_program_is_refused_and_told_who_holds_the_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from host_sdk.transport import PortInUse

    out = tmp_path / "held.h5"
    with start_emulator("nak50_pulsed", speed=20, seed=2) as emu:
        holder = subprocess.Popen(
            [*STRESSRIG, "record", "--port", emu.port, "--duration", "600", "--no-progress"]
            + ["--streams", "elec:100", "--out", str(out)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait(lambda: _records_on_disk(out) > 100, what="the first program to record")
            assert cli.main(["info", "--port", emu.port]) == 1
            err = capsys.readouterr().err
            assert f"in use by pid {holder.pid}" in err and "record --port" in err
            with pytest.raises(PortInUse, match=f"pid {holder.pid}"):
                Rig.open(emu.port)
            n = _records_on_disk(out)
            _wait(lambda: _records_on_disk(out) > n + 200, what="the first program to go on")
        finally:
            holder.send_signal(signal.SIGTERM)
            _, stderr = holder.communicate(timeout=120)
    assert holder.returncode == 143, stderr
    rec = load_recording(out)
    assert sum(rec.lost_samples().values()) == 0  # the refused program took nothing
    assert rec.outcome is not None and rec.outcome["stopped_by"] == "interrupted"


def test_one_port_twice_in_one_program_is_refused() -> None:
    from host_sdk.transport import PortInUse

    with start_emulator("nak50_pulsed", speed="max", seed=2) as emu, Rig.open(emu.port):
        with pytest.raises(PortInUse, match="already open in this program"):
            Rig.open(emu.port)


# ---- defect 7: Ctrl-C reaches the CLI, not the emulated board -----------------------------------
def test_ctrl_c_on_an_emu_port_exits_130_and_fakes_no_reboot(tmp_path: Path) -> None:
    out = tmp_path / "ctrlc.h5"
    proc = subprocess.Popen(
        [*STRESSRIG, "record", "--port", URL, "--duration", "600", "--no-progress"]
        + ["--streams", "elec:50,load:10", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        _wait(lambda: _records_on_disk(out) > 200, what="the recording to start")
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted: Ctrl-C" in err
    rec = load_recording(out)
    assert rec.outcome is not None and rec.outcome["stopped_by"] == "interrupted"
    kinds = {int(k) for k in rec.gaps["kind"]}
    assert 2 not in kinds, "a board_reset gap: the emulated board got the Ctrl-C"
    assert sum(rec.lost_samples().values()) == 0


# ---- defects 2, 5: the demo's stack pressure, and its BDF export -------------------------------
def test_demo_reports_the_stack_pressure_and_exports_bdf(tmp_path: Path) -> None:
    import pandas as pd

    from host_sdk.demo import run_demo

    summary = run_demo(tmp_path, rests_s=(0.5,), quiet=True)
    sp = json.loads((tmp_path / "summary.json").read_text())["stack_pressure"]
    assert sp == summary["stack_pressure"]
    assert sp["first_mpa"] == pytest.approx(10.0, rel=0.01)  # nak50: 10 MPa on 1.131 cm²
    assert sp["stack_area_m2"] == pytest.approx(1.131e-4, rel=1e-3)
    assert sp["calibration"] == "host"
    assert cli.main(["export", str(tmp_path / "recording.h5"), "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "recording.bdf.csv")
    p = df["Applied Pressure / Pa"].dropna()
    assert len(p) > 100 and p.iloc[0] == pytest.approx(1e7, rel=0.01)
    assert {"Test Time / s", "Voltage / V", "Current / A", "Step Count / 1"} <= set(df.columns)
