"""`stressrig` CLI: --help of every subcommand explains with an example; offline commands."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from host_sdk import cli, wire
from host_sdk.recording import Recorder

SUBCOMMANDS = ["ports", "info", "record", "run", "calibrate", "analyze", "export", "flash", "demo"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_explains_with_an_example(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"stressrig {sub}" in out and "example:" in out


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for sub in SUBCOMMANDS + ["emulate"]:
        assert sub in out


def test_emulate_help_is_the_emulators(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("host_sdk.emulator")
    with pytest.raises(SystemExit) as e:
        cli.main(["emulate", "--help"])
    assert e.value.code == 0
    assert "--scenario" in capsys.readouterr().out


def test_ports_lists_known_boards(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ports"]) == 0
    out = capsys.readouterr().out
    assert "serial ports:" in out and "emulated" in out


def test_unknown_port_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--port", "/dev/nonexistent-stressrig"]) == 1
    assert "Ports on this machine" in capsys.readouterr().err


def test_flash_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flash", "--port", "/dev/ttyACM0", "--board", "rp2040_pico", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "firmware/build.py --board rp2040_pico" in out and "mpremote connect" in out


def _recording(path: Path) -> None:
    hello = wire.reference_hello()
    elec = hello.stream_named("elec")
    with Recorder(path, hello) as r:
        rec = np.zeros(1000, dtype=elec.dtype)
        rec["v_counts"] = np.arange(1000)
        r.add_block(
            SimpleNamespace(stream="elec", records=rec, t_s=np.arange(1000) / 100.0, first_index=0)
        )


def test_export_and_analyze_offline(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _recording(path)
    assert cli.main(["export", str(path), "--format", "parquet", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "run_elec.parquet").exists()
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "a")]) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["recording"]["streams"]["elec"]["records"] == 1000
    assert (tmp_path / "a" / "voltage_current.png").exists()


def test_invalid_protocol_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.toml"
    p.write_text('[[steps]]\nkind = "rest"\nduration_s = -1\n')
    assert cli.main(["run", str(p), "--port", "/dev/null-x"]) == 1
    err = capsys.readouterr().err
    assert "steps[0].duration_s: -1 is out of range" in err
