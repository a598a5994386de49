"""`stressrig analyze`: a recording in, PNG plots and summary.json out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from host_sdk.cli.common import add_command, load_calibration, positive_number


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "analyze",
        "Analyse a recording: PNG plots and summary.json (stack pressure, stripping "
        "capacities, FBG strain, GITT). Warns on stderr when the experiment did not complete.",
        "stressrig analyze run.h5 --calibration cal.json --out run_analysis",
        port=False,
    )
    s.add_argument("recording", help="a recording (.h5) written by stressrig")
    s.add_argument("--out", default=None, help="output folder (default: RECORDING_analysis)")
    s.add_argument(
        "--calibration", default=None, help="calibration JSON (instead of the one stored)"
    )
    s.add_argument(
        "--gitt-v-over-s-m",
        type=positive_number,
        default=None,
        metavar="M",
        help="V/S (m) for GITT diffusion coefficients (film thickness, or R/3)",
    )


def run(args: argparse.Namespace) -> int:
    from host_sdk.recording.analyze import analyze_recording

    cal = load_calibration(args.calibration)
    out = (
        Path(args.out)
        if args.out
        else Path(str(Path(args.recording).with_suffix("")) + "_analysis")
    )
    summary = analyze_recording(
        args.recording, out, calibration=cal, v_over_s_m=args.gitt_v_over_s_m
    )
    for p in summary["recording"]["problems"] + summary.get("warnings", []):
        print(f"stressrig analyze: warning: {p}", file=sys.stderr)
    print(f"plots: {', '.join(summary['plots'])}")
    print(f"summary: {(out / 'summary.json').resolve()}")
    return 0
