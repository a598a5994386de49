"""`stressrig analyze-many`: the per-recording analysis of many recordings on Dask, one
summary table (Parquet) and comparison figures."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

from host_sdk.cli.common import EXIT_ERROR, EXIT_OK, CliError, add_command

MORE = """\
Each recording gets the analysis of `stressrig analyze` (its plots and summary.json in
OUT/<name>_analysis/), run as one Dask task per file: on a local cluster (one worker
process per core, --workers N) or on an existing cluster (--scheduler tcp://HOST:8786;
its workers need stressrig installed and the files at the same paths). Then:
  OUT/summary.parquet       one row per recording (board, cell, outcome, charge, voltage,
                            stack pressure, lost samples, problems)
  OUT/pulse_trains.parquet  one row per pulse train (rest, charge, critical capacity)
  OUT/capacity_vs_rest.png  critical capacity vs rest for every cell; OUT/overview.png
  OUT/bad_files.txt         files that could not be analysed, and why
A bad file is listed on stderr and the others go on. Exit code: 0 every file analysed,
1 some could not be (the table holds the others), 2 no file matched."""


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "analyze-many",
        "Analyse many recordings on Dask: one Parquet summary table and comparison figures.",
        "stressrig analyze-many 'runs/*.h5' --out runs_analysis",
        port=False,
        more=MORE,
    )
    s.add_argument("recordings", nargs="+", help="recordings or glob patterns (quote them)")
    s.add_argument("--out", default="analysis_many", help="output folder (default analysis_many)")
    s.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local cluster size (default: one per core)",
    )


def _expand(patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pat in patterns:
        hits = sorted(glob.glob(pat)) if any(c in pat for c in "*?[") else [pat]
        files += [h for h in hits if Path(h).is_file()]
    return list(dict.fromkeys(files))


def run(args: argparse.Namespace) -> int:
    from host_sdk.fleet.many import analyze_many

    prog = "stressrig analyze-many"
    files = _expand(args.recordings)
    if not files:
        raise CliError(
            f"no recording matches {' '.join(args.recordings)}; give .h5 files or a "
            "quoted pattern such as 'runs/*.h5'"
        )
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: give 1 or more")

    def progress(k: int, n: int, r: dict[str, Any]) -> None:
        if not r["ok"]:
            print(f"{prog}: bad file {r['path']}: {r['error']}", file=sys.stderr, flush=True)
        if k == n or k % 20 == 0:
            print(f"{prog}: {k}/{n} analysed", file=sys.stderr, flush=True)

    try:
        res = analyze_many(
            files, args.out, scheduler=args.scheduler, workers=args.workers, progress=progress
        )
    except OSError as e:  # the scheduler cannot be reached
        raise CliError(f"--scheduler {args.scheduler}: {e}", EXIT_ERROR) from None
    print(
        f"{len(res.rows)} recordings analysed on {res.workers} Dask workers in {res.seconds:.1f} s"
    )
    for key, path in res.files.items():
        print(f"{key}: {path.resolve()}")
    if res.bad:
        print(
            f"{prog}: {len(res.bad)} file(s) could not be analysed (listed in "
            f"{res.files['bad_files']}):",
            file=sys.stderr,
        )
        for bad_path, why in res.bad:
            print(f"  {bad_path}: {why}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
