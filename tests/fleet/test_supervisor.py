"""The supervisor: rigs at once, each with its own recording; a failing rig does not disturb
the others; a killed supervisor is taken over by the next one, which marks the gap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host_sdk import cli
from host_sdk.fleet.config import FleetError, load_fleet
from host_sdk.fleet.state import load_state
from host_sdk.fleet.supervisor import Supervisor
from host_sdk.recording import load_recording

ROOT = Path(__file__).resolve().parents[2]

PROTOCOL = """
[protocol]
name = "t"
[cell]
area_m2 = 3.85e-5
stack_diameter_m = 0.012
[safety]
watchdog_s = {watchdog}
[streams]
elec = {{ rate_hz = 50 }}
load = {{ rate_hz = 10 }}
temp = {{ rate_hz = 1 }}
fbg = {{ enabled = false }}
[[steps]]
kind = "rest"
duration_s = 2.0
[[steps]]
kind = "pulse_train"
current_a_m2 = 10.0
t_on_s = 1.0
t_off_s = 1.0
count = {count}
[[steps]]
kind = "rest"
duration_s = 2.0
"""


def write_fleet(
    folder: Path, ports: dict[str, str], *, count: int = 10, watchdog: float = 60.0, extra: str = ""
) -> Path:
    (folder / "p.toml").write_text(PROTOCOL.format(count=count, watchdog=watchdog))
    text = f'[fleet]\nname = "t"\nout_dir = "runs"\nprotocol = "p.toml"\n{extra}\n'
    for name, port in ports.items():
        text += f'[[rig]]\nname = "{name}"\nport = "{port}"\n'
    path = folder / "fleet.toml"
    path.write_text(text)
    return path


def wait_for(what: str, cond: Callable[[], Any], limit_s: float = 120.0) -> Any:
    """Poll until `cond()` is truthy (a readiness wait with a generous limit, never a
    timing assertion)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_step(cfg: Any, rig: str, step: int) -> Callable[[], bool]:
    def check() -> bool:
        st = load_state(cfg.state_dir, rig)
        return bool(st and st.phase == "running" and st.step_index == step)

    return check


def test_fleet_file_errors_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(PROTOCOL.format(count=2, watchdog=5))
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[fleet]\nprotocol = "p.toml"\nfoo = 1\n[mqtt]\nhost = "10.1.2.3"\ncontrol = true\n'
        '[[rig]]\nname = "a"\nport = "/dev/x"\n[[rig]]\nname = "a"\n'
    )
    with pytest.raises(FleetError) as e:
        load_fleet(bad)
    text = str(e.value)
    assert "rig[1].name: 'a' is used twice" in text
    assert "rig[1].port: missing" in text
    assert "mqtt.control: remote control through the broker at 10.1.2.3 needs" in text
    assert cli.main(["fleet", "run", str(bad)]) == 2


def test_rigs_run_at_once_and_a_failing_rig_disturbs_no_other(emulated, tmp_path: Path) -> None:
    emus = {
        name: emulated(seed=40 + k, speed=5) for k, name in enumerate(("ok", "reboot", "latch"))
    }
    cfg = load_fleet(write_fleet(tmp_path, {n: e.port for n, e in emus.items()}))
    sup = Supervisor(cfg)
    try:
        sup.start()
        for name in ("reboot", "latch"):
            wait_for(f"{name} in step 1", in_step(cfg, name, 1))
        emus["reboot"].reset_board()
        emus["latch"].set_sensor_fault(thermistor="open")
        while sup.running():
            sup.step()
            time.sleep(0.1)
    finally:
        sup.close()
    outcome = {n: w.outcome for n, w in sup.workers.items()}
    assert outcome["ok"] is not None and outcome["ok"].completed
    assert outcome["reboot"] is not None and outcome["reboot"].stopped_by == "boot"
    assert outcome["latch"] is not None and outcome["latch"].stopped_by == "sensor_fault"
    assert sup.exit_code() == 3
    for name, w in sup.workers.items():
        rec = load_recording(w.state.recording)
        assert rec.unique_id == w.state.unique_id and rec.outcome is not None
        assert rec.outcome["stopped_by"] == outcome[name].stopped_by  # type: ignore[union-attr]
    good = load_recording(sup.workers["ok"].state.recording)
    assert sum(good.lost_samples().values()) == 0
    assert [s.decode() for s in good.steps["kind"]] == ["rest", "pulse_train", "rest"]


def _stressrig(*args: str, out: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from host_sdk.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=open(out, "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_a_killed_supervisor_is_taken_over_and_the_gap_marked(emulated, tmp_path: Path) -> None:
    emu = emulated(seed=50, speed=4)
    from host_sdk.fleet.identity import scan_boards

    uid = {s.device: s.unique_id for s in scan_boards()}[emu.port]
    fleet = write_fleet(tmp_path, {"cell": f"uid:{uid}"}, count=8)
    cfg = load_fleet(fleet)
    first = _stressrig("fleet", "run", str(fleet), "--no-table", out=tmp_path / "first.log")
    try:
        wait_for("step 1", in_step(cfg, "cell", 1))
        # freeze the board's world a little later (device time), so the step cannot end
        # while no supervisor runs, however slow this machine is
        emu.hold(emu.device_time_s() + 0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    second = _stressrig("fleet", "run", str(fleet), "--no-table", out=tmp_path / "second.log")
    try:
        wait_for(
            "the takeover",
            lambda: (
                (st := load_state(cfg.state_dir, "cell"))
                and st.attaches == 2
                and st.phase == "running"
            ),
        )
        emu.release()
        rc = second.wait(120)
    finally:
        if second.poll() is None:
            second.kill()
    log = (tmp_path / "second.log").read_text()
    assert rc == 0, log
    st = load_state(cfg.state_dir, "cell")
    assert st is not None and st.phase == "completed" and len(st.gaps) == 1
    rec = load_recording(st.recording)
    assert rec.complete and rec.outcome is not None and rec.outcome["completed"]
    assert [int(i) for i in rec.steps["index"]] == [0, 1, 2]
    assert any(b"supervisor reattached" in m for m in rec.markers["text"])
    gaps = {int(g["stream_id"]): g for g in rec.gaps if int(g["kind"]) == 1}  # link_down
    for name, s in rec.streams.items():
        if not len(s):
            continue
        idx = s.records["sample_index"]
        jumps = np.flatnonzero(np.diff(idx) != 1)
        assert np.all(np.diff(s.t_s) > 0), name  # one device clock across both supervisors
        assert len(jumps) <= 1, name
        if len(jumps):  # the samples sent while no supervisor listened: counted exactly
            g = gaps[s.stream_id]
            assert int(g["first_index"]) == idx[jumps[0]] + 1
            assert int(g["count"]) == idx[jumps[0] + 1] - idx[jumps[0]] - 1
    assert json.loads((cfg.state_dir / "cell.json").read_text())["attaches"] == 2
