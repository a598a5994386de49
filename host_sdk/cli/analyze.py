"""`stressrig analyze`: a recording in, per-step analyses, paper figures and summary.json out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from host_sdk.cli.common import CliError, add_command, load_calibration, positive_number

FILM_KEYS = ("d_m2_s", "thickness_m", "c0_mol_m3", "c_crit_mol_m3")
FILM_OPTIONAL = ("contact_fraction", "z", "lateral_rate_per_s")


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "analyze",
        "Analyse a recording step by step: for each protocol step the analyses that apply "
        "(pulse trains: critical stripping capacity vs rest with the planner's prediction; "
        "adaptive rests: the rest lengths the board chose vs the planner's fixed rest; "
        "a staircase: the critical current density; GITT: D per pulse; galvanostatic "
        "steps: stack pressure vs normalized capacity; FBG: strain, stress, temperature), "
        "figures as PNG, PDF and SVG, and summary.json. Says which step gave which number, "
        "and what it did not do and why. Warns on stderr when the experiment did not "
        "complete.",
        "stressrig analyze strip.h5 --film nak50_film.json --out strip_analysis",
        port=False,
    )
    s.add_argument("recording", help="a recording (.h5) written by stressrig")
    s.add_argument("--out", default=None, help="output folder (default: RECORDING_analysis)")
    s.add_argument(
        "--calibration", default=None, help="calibration JSON (instead of the one stored)"
    )
    s.add_argument(
        "--film",
        default=None,
        metavar="FILE.json",
        help="the film for the planner's prediction of pulse series: a JSON object with "
        f"{', '.join(FILM_KEYS)} (SI) and optionally {', '.join(FILM_OPTIONAL)} (an "
        "emulated board's recording uses its scenario's film otherwise)",
    )
    s.add_argument(
        "--gitt-v-over-s-m",
        type=positive_number,
        default=None,
        metavar="M",
        help="V/S (m) for GITT diffusion coefficients (film thickness, or R/3; an emulated "
        "board's film thickness otherwise)",
    )
    s.add_argument(
        "--gitt-geometry",
        choices=("film", "sphere"),
        default="film",
        help="electrode geometry for GITT's validity check and bias (default film)",
    )
    s.add_argument(
        "--fbg-modulus-pa",
        type=positive_number,
        default=72e9,
        metavar="PA",
        help="Young's modulus turning FBG strain into stress σ = Eε (default 72e9: the silica "
        "fibre)",
    )
    s.add_argument(
        "--formats",
        default="png,pdf,svg",
        help="figure formats, comma-separated (default png,pdf,svg; all at 300 dpi)",
    )


def _film(path: str | None) -> Any:
    if path is None:
        return None
    from host_sdk.analysis.planner import FilmMaterial

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CliError(f"--film {path}: cannot read a JSON object ({e})") from None
    missing = [k for k in FILM_KEYS if k not in data]
    unknown = [k for k in data if k not in FILM_KEYS + FILM_OPTIONAL]
    if missing or unknown or not isinstance(data, dict):
        raise CliError(
            f"--film {path}: needs {', '.join(FILM_KEYS)} (SI), may have "
            f"{', '.join(FILM_OPTIONAL)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    values: dict[str, Any] = {k: float(v) if k != "z" else int(v) for k, v in data.items()}
    try:
        return FilmMaterial(**values)
    except (TypeError, ValueError) as e:
        raise CliError(f"--film {path}: {e}") from None


def run(args: argparse.Namespace) -> int:
    from host_sdk.recording.analyze import analyze_recording

    cal = load_calibration(args.calibration)
    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad or not formats:
        raise CliError(f"--formats {args.formats!r}: allowed png, pdf, svg (comma-separated)")
    out = (
        Path(args.out)
        if args.out
        else Path(str(Path(args.recording).with_suffix("")) + "_analysis")
    )
    summary = analyze_recording(
        args.recording,
        out,
        calibration=cal,
        v_over_s_m=args.gitt_v_over_s_m,
        geometry=args.gitt_geometry,
        film=_film(args.film),
        fbg_modulus_pa=args.fbg_modulus_pa,
        formats=formats,
    )
    for p in summary["recording"]["problems"] + summary.get("warnings", []):
        print(f"stressrig analyze: warning: {p}", file=sys.stderr)
    for e in summary.get("analysis_errors", []):
        print(f"stressrig analyze: error: {e}", file=sys.stderr)
    emu = summary["experiment"].get("emulated")
    if emu:
        print(f"note: {emu['caveat']}")
    for line in summary["report"]:
        print(line)
    print(f"figures: {', '.join(summary['plots'])}")
    print(f"summary: {(out / 'summary.json').resolve()}")
    return 0
