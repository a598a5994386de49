"""`stressrig` CLI: --help of every subcommand explains with an example; offline commands;
every bad input answered with one line and exit code 2 (no traceback)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from host_sdk import cli, wire
from host_sdk.recording import Recorder

SUBCOMMANDS = ["ports", "info", "record", "run", "calibrate", "analyze", "export", "flash", "demo"]
OFFLINE = ["analyze", "export", "demo"]  # no PORT: no PORT footnote


@pytest.mark.parametrize("sub", [*SUBCOMMANDS, "emulate"])
def test_help_explains_with_an_example(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"stressrig {sub}" in out and "example" in out
    assert ("PORT is" in out) == (sub not in [*OFFLINE, "emulate"])


def test_emulate_help_describes_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["emulate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "same seed gives the same sensor data" in out  # --seed
    assert "bit-banged GPIO" in out  # --hx711
    assert "MicroPython heap for the firmware" in out  # --heap


@pytest.mark.parametrize("sub", ["record", "run"])
def test_exit_codes_are_documented(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([sub, "--help"])
    out = capsys.readouterr().out
    for line in ("0    completed", "2    bad input", "3    the board stopped the run", "130"):
        assert line in out


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
    assert cli.main(["info", "--port", "/dev/nonexistent-stressrig"]) == 2
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
        rec["voltage"] = np.arange(1000)
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
    assert cli.main(["run", str(p), "--port", "/dev/null-x"]) == 2
    err = capsys.readouterr().err
    assert "steps[0].duration_s: -1 is out of range" in err


def _one_clear_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _exit(argv: list[str]) -> int:
    """cli.main's return value, or argparse's exit code."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return int(e.code or 0)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["record", "--port", "emu://x", "--duration", "-5"], ["--duration", "> 0"]),
        (["record", "--port", "emu://x", "--duration", "0"], ["--duration", "> 0"]),
        (["record", "--port", "emu://x", "--duration", "ten"], ["--duration", "not a number"]),
        (["record", "--port", "emu://x"], ["--duration", "--protocol"]),
        (["demo", "--speed", "-5"], ["--speed", "> 0 or 'max'"]),
        (["emulate", "--speed", "-5"], ["--speed", "> 0 or 'max'"]),
        (["emulate", "--scenario", "nope"], ["nope", "nak50_pulsed", "gain_solid_state"]),
        (["info", "--port", "emu://nak50_pulsed?load_sps=2"], ["load_sps", "10, 80"]),
        (["info", "--port", "emu://nak50_pulsed?bogus=1"], ["unknown", "bogus", "speed"]),
        (["info", "--port", "emu://nope"], ["nope", "nak50_pulsed"]),
        (
            ["record", "--port", "emu://nak50_pulsed", "--duration", "1", "--streams", "elec:x"],
            ["--streams", "elec:x", "Hz > 0"],
        ),
        (
            ["record", "--port", "emu://nak50_pulsed", "--duration", "1", "--streams", "volt:5"],
            ["--streams", "'volt'", "elec"],
        ),
        (["calibrate", "load", "--port", "emu://x", "--hold-s", "-1"], ["--hold-s", "> 0"]),
        (["record", "--port", "emu://x", "--stack-area-m2", "5"], ["--stack-area-m2", "(0, 1]"]),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    argv: list[str], needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit(argv) == 2
    _one_clear_line(capsys, *needles)


def test_analyze_with_a_missing_or_broken_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.h5"
    _recording(path)
    assert cli.main(["analyze", str(path), "--calibration", str(tmp_path / "nope.json")]) == 2
    _one_clear_line(capsys, "nope.json", "no such file")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["analyze", str(path), "--calibration", str(bad)]) == 2
    _one_clear_line(capsys, "bad.json", "not JSON")
    assert cli.main(["analyze", str(tmp_path / "missing.h5")]) == 2
    _one_clear_line(capsys, "missing.h5", "no such file")


def test_pulse_train_with_count_0_is_refused_before_the_board() -> None:
    from host_sdk.client import Link, Rig

    rig = Rig(Link(opener=lambda: None))  # never connected: the SDK refuses on its own
    with pytest.raises(ValueError, match="count 0 is out of range; allowed: 1 to 65535"):
        rig.pulse_train(amplitude_a=1e-4, t_on_s=1.0, t_off_s=1.0, count=0)
    with pytest.raises(ValueError, match="count must be an integer"):
        rig.gitt(amplitude_a=1e-4, t_pulse_s=1.0, t_rest_s=1.0, count=2.5)  # type: ignore[arg-type]
