"""What every `stressrig` command shares: exit codes, the help layout, one-line errors,
checked argument types, opening a rig."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

# ---- exit codes: what a script (`run && analyze`) can rely on --------------------------------
EXIT_OK = 0  # completed: the protocol ran to its end, the recording ran its duration
EXIT_ERROR = 1  # an error: the board did not answer, a command failed, the port is in use
EXIT_USAGE = 2  # bad input: a command-line value, a port URL, a protocol/calibration file
EXIT_BOARD_STOPPED = 3  # the board stopped the run: safety latch, watchdog, reboot, link lost
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT); 143 for SIGTERM
EXIT_TERMINATED = 143

EXIT_CODES_TEXT = """\
exit codes:
  0    completed (the protocol ran to its end; the recording ran its --duration)
  1    error (the board did not answer, a command failed, the port is in use)
  2    bad input (a command-line value, a port URL, a protocol or calibration file)
  3    the board stopped the run (safety latch: watchdog, voltage window, temperature,
       force; a board reboot; the link lost); the recording says why and where
  130  interrupted by Ctrl-C (143: terminated by SIGTERM); the recording is kept"""

PORT_TEXT = (
    "PORT is a serial device (/dev/ttyACM0, COM3), socket://HOST:PORT, a board by its unique "
    "id uid:HEX (stressrig ports lists them; found again after a replug), or an emulated "
    "board emu://SCENARIO?seed=1 (scenarios: stressrig emulate --list; speed=N caps the emulated "
    "clock at N x wall time, default max). One program at a time per port."
)


class CliError(Exception):
    """Ends a command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what was wrong and what is allowed."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def add_command(
    sub: Any,
    name: str,
    help_: str,
    example: str,
    *,
    port: bool = True,
    exit_codes: bool = False,
    more: str = "",
) -> argparse.ArgumentParser:
    """A subcommand whose --help explains with an example (and PORT, exit codes if any)."""
    epilog = f"example:\n  {example}"
    if more:
        epilog += f"\n\n{more}"
    if exit_codes:
        epilog += f"\n\n{EXIT_CODES_TEXT}"
    if port:
        epilog += f"\n\n{PORT_TEXT}"
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


# ---- checked argument types (their messages say what is allowed) ------------------------------
def positive_seconds(text: str) -> float:
    v = _number(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give a number of seconds > 0")
    return v


def positive_number(text: str) -> float:
    v = _number(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give a number > 0")
    return v


def area_m2(text: str) -> float:
    v = _number(text)
    if not 0 < v <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an area; give m² in (0, 1], e.g. 6.362e-5 for a 9 mm die"
        )
    return v


def diameter_m(text: str) -> float:
    v = _number(text)
    if not 0 < v <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a diameter; give metres in (0, 1], e.g. 0.009 for a 9 mm die"
        )
    return v


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def number_list(text: str, what: str, minimum: float = 0.0) -> list[float]:
    """ "0,1,2.5" -> [0.0, 1.0, 2.5]; CliError naming the bad item."""
    out = []
    for item in text.split(","):
        try:
            v = float(item)
        except ValueError:
            raise CliError(
                f"{what}: {item.strip()!r} is not a number; give a comma-separated list "
                "such as 0,1,2,5"
            ) from None
        if not (v >= minimum and math.isfinite(v)):
            raise CliError(f"{what}: {v:g} is not allowed; give numbers >= {minimum:g}")
        out.append(v)
    return out


STREAM_NAMES = ("load", "fbg", "elec", "temp")


def parse_streams(text: str | None) -> dict[str, dict[str, Any]] | None:
    """ "elec:100,load:10" -> {"elec": {"rate_hz": 100.0}, "load": {"rate_hz": 10.0}}."""
    if not text:
        return None
    out: dict[str, dict[str, Any]] = {}
    for item in text.split(","):
        name, _, rate = item.strip().partition(":")
        if name not in STREAM_NAMES:
            raise CliError(
                f"--streams: {name!r} is not a stream; allowed: {', '.join(STREAM_NAMES)} "
                "as NAME:RATE_HZ, e.g. elec:100,load:10"
            )
        if not rate:
            out[name] = {}
            continue
        try:
            hz = float(rate)
        except ValueError:
            hz = math.nan
        if not (hz > 0 and math.isfinite(hz)):
            raise CliError(f"--streams: {name}:{rate} is not allowed; give a rate in Hz > 0")
        out[name] = {"rate_hz": hz}
    return out


def load_calibration(path: str | None) -> Any:
    """The Calibration in `path` (None: none); CliError when missing or not one."""
    if not path:
        return None
    from host_sdk.calibration import Calibration, CalibrationError

    try:
        return Calibration.load(path)
    except CalibrationError as e:
        raise CliError(str(e)) from None


def load_json_file(path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{what} {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise CliError(f"{what} {path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise CliError(f"{what} {path}: a JSON object is needed")
    return data


def open_rig(port: str, **options: Any) -> Any:
    from host_sdk.client import Rig

    return Rig.open(port, **options)


def warn(prog: str, text: str) -> None:
    print(f"{prog}: warning: {text}", file=sys.stderr)


def note(prog: str, text: str) -> None:
    print(f"{prog}: note: {text}", file=sys.stderr)
