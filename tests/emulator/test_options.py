"""Emulator options: speed ("max"), cpu model, emu:// URL parameters, `stressrig emulate`
arguments. Checked before anything is started."""

from __future__ import annotations

import math

import pytest

from host_sdk.emulator.board_process import BoardSettings
from host_sdk.emulator.cli import build_parser
from host_sdk.emulator.options import emulator_options_from_url, parse_cpu, parse_speed
from host_sdk.transport import Link, PortNotFound


def test_speed_is_a_positive_number_or_max() -> None:
    assert parse_speed("max") == math.inf
    assert parse_speed("MAX") == math.inf
    assert parse_speed(2.5) == 2.5
    assert parse_speed("50") == 50.0
    for bad in (0, -1, "0", "-2", "nan", "fast", ""):
        with pytest.raises(ValueError, match=r"speed must be a number > 0 or 'max'"):
            parse_speed(bad)  # type: ignore[arg-type]


def test_cpu_is_a_known_model() -> None:
    assert parse_cpu("ideal") == "ideal" and parse_cpu("rp2040") == "rp2040"
    with pytest.raises(ValueError, match="cpu must be one of ideal, rp2040"):
        parse_cpu("z80")


def test_url_with_speed_max_and_cpu() -> None:
    name, opts = emulator_options_from_url("emu://nak50_pulsed?speed=max&cpu=rp2040&seed=3")
    assert name == "nak50_pulsed"
    assert opts == {"speed": math.inf, "cpu": "rp2040", "seed": 3}


def test_url_without_speed_runs_at_max() -> None:
    assert emulator_options_from_url("emu://gain_solid_state")[1] == {"speed": math.inf}


def test_url_parameters_map_to_start_emulator() -> None:
    name, opts = emulator_options_from_url(
        "emu://gain_solid_state?speed=20&tcp=0&hx711=bitbang&heap=200k&load_sps=10"
        "&fbg_hz=1&drop_rate=1e-4&stall_every_s=10&stall_s=0.5"
    )
    assert name == "gain_solid_state"
    assert opts["speed"] == 20.0 and opts["tcp_port"] == 0 and opts["hx711"] == "bitbang"
    assert opts["heap"] == "200k"
    assert opts["faults"] == {"drop_rate": 1e-4, "stall_every_s": 10.0, "stall_s": 0.5}
    assert opts["overrides"] == {
        "loadcell": {"rate_sps": 10},
        "fbg": {"rate_hz": 1.0},
        "streams": {"load": {"rate_hz": 10}, "fbg": {"rate_hz": 1.0}},
    }


def test_unknown_url_parameter_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError) as e:
        emulator_options_from_url("emu://nak50_pulsed?sped=5")
    msg = str(e.value)
    assert "'sped'" in msg and "speed" in msg and "cpu" in msg and "drop_rate" in msg


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("speed=0", "speed must be a number > 0 or 'max'"),
        ("speed=-3", "speed must be a number > 0 or 'max'"),
        ("speed=", "speed must be a number > 0 or 'max'"),
        ("cpu=z80", "cpu must be one of ideal, rp2040"),
        ("seed=x", "seed must be an integer"),
        ("tcp=70000", "tcp must be an integer from 0 to 65535"),
        ("hx711=spi", "hx711 must be one of pio, bitbang"),
        ("drop_rate=2", "drop_rate must be a number >= 0, <= 1"),
        ("fbg_hz=0", "fbg_hz must be a number > 0"),
        ("load_sps=0", "load_sps must be one of 10, 80"),
        ("load_sps=2", "load_sps must be one of 10, 80"),
        ("stall_s=-1", "stall_s must be a number >= 0"),
        ("heap=0k", "heap must be a size > 0"),
    ],
)
def test_bad_url_values_are_refused_with_the_allowed_range(query: str, says: str) -> None:
    with pytest.raises(ValueError) as e:
        emulator_options_from_url(f"emu://nak50_pulsed?{query}")
    assert says in str(e.value)
    assert query.split("=")[0] in str(e.value)


def test_transport_reports_a_bad_emu_url_without_starting_a_board() -> None:
    link = Link("emu://nak50_pulsed?speed=0")
    with pytest.raises(PortNotFound, match="speed must be a number > 0"):
        link.open()
    assert link.emulator is None


def test_board_environment_for_max_speed_and_cpu() -> None:
    settings = BoardSettings("x.json", math.inf, "rp2040", 1, 0, "pio", "160k")
    env = settings.env()
    assert env["STRESSRIG_EMU_SPEED"] == "0"  # unlimited
    assert env["STRESSRIG_EMU_CPU"] == "rp2040"
    assert BoardSettings("x.json", 2.5, "ideal", 1, 0, "pio", "160k").env()[
        "STRESSRIG_EMU_SPEED"
    ] == repr(2.5)


def test_emulate_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    ns = build_parser().parse_args(["--speed", "max", "--cpu", "rp2040", "--seed", "4"])
    assert ns.speed == math.inf and ns.cpu == "rp2040" and ns.seed == 4
    assert build_parser().parse_args([]).speed == 1.0
    for bad in (["--speed", "0"], ["--cpu", "z80"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)
    err = capsys.readouterr().err
    assert "speed must be a number > 0 or 'max'" in err and "z80" in err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for text in ("--speed N|max", "rp2040", "examples:", "--seed", "--hx711", "--heap"):
        assert text in out
