"""`stressrig export`: a recording to the Battery Data Format, CSV or Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from host_sdk.cli.common import add_command, load_calibration

MORE = """\
formats:
  bdf          one table on the electrical stream's time base, Battery Data Format
               columns (Test Time / s, Voltage / V, Current / A, Applied Pressure / Pa,
               capacities, step and cycle counts, temperature, strain), as RUN.bdf.csv
               with RUN.bdf.metadata.json (areas, start time, calibration, outcome)
  bdf-parquet  the same as RUN.bdf.parquet
  csv/parquet  one file per stream (raw counts + physical + calibrated force/pressure),
               plus events, gaps and RUN_metadata.json"""


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "export",
        "Export a recording: one Battery Data Format table (default), or CSV/Parquet "
        "files per stream; the calibration is applied.",
        "stressrig export run.h5 --format bdf --out run_export",
        port=False,
        more=MORE,
    )
    s.add_argument("recording", help="a recording (.h5) written by stressrig")
    s.add_argument("--format", choices=["bdf", "bdf-parquet", "csv", "parquet"], default="bdf")
    s.add_argument(
        "--calibration", default=None, help="calibration JSON (instead of the one stored)"
    )
    s.add_argument("--out", default=None, help="output folder (default: next to the file)")


def run(args: argparse.Namespace) -> int:
    from host_sdk.recording import export_recording, load_recording

    cal = load_calibration(args.calibration)
    rec = load_recording(args.recording)
    for problem in rec.problems:
        print(f"stressrig export: warning: {problem}", file=sys.stderr)
    line = rec.outcome_line()
    if line:
        print(f"stressrig export: warning: {line}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.recording).parent
    for written in export_recording(rec, out, args.format, calibration=cal):
        print(written)
    return 0
