"""`stressrig demo`: the whole path on an emulated board."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from host_sdk.cli.common import add_command


def _speed(text: str) -> str:
    from host_sdk.emulator import parse_speed

    try:
        parse_speed(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "demo",
        "Emulated board + short seed-004-style pulsed experiment: calibrate the load cell, "
        "record, analyse, write plots and summary.json.",
        "stressrig demo --out demo_out",
        port=False,
    )
    s.add_argument("--out", default="stressrig_demo", help="output folder")
    s.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="N|max",
        help="most device seconds per wall second of the emulated board (> 0), or max (default)",
    )
    s.add_argument("--seed", type=int, default=1, help="seed of the emulated sensor noise")


def run(args: argparse.Namespace) -> int:
    from host_sdk.demo import run_demo

    run_demo(Path(args.out), speed=args.speed, seed=args.seed)
    return 0
