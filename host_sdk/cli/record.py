"""`stressrig record` and `stressrig run`: record streams to HDF5, running a protocol."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from host_sdk.cli.common import (
    EXIT_BOARD_STOPPED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    CliError,
    add_command,
    area_m2,
    diameter_m,
    load_calibration,
    note,
    open_rig,
    parse_streams,
    positive_seconds,
    warn,
)

STREAMS_TEXT = """\
--streams and a protocol's [streams]: --streams wins. The streams it names run at its
rates for the whole protocol (steps do not change them), the others are off; stressrig
says on stderr what it replaced.

The stack (pressed) area turns the load cell's force into stack pressure: the protocol's
[cell] stack_area_m2 / stack_diameter_m, --stack-area-m2 / --stack-diameter-m, or the
calibration's. Without one, force is recorded and reported in N, never a wrong pressure."""


def _add_common(s: argparse.ArgumentParser) -> None:
    s.add_argument("--port", required=True, help="the board (see PORT below)")
    s.add_argument("--out", default=None, help="recording file (.h5); default: timestamped")
    s.add_argument(
        "--streams",
        default=None,
        metavar="NAME:HZ,...",
        help="streams to record and their rates, e.g. elec:100,load:10 (the others are off; "
        "wins over a protocol's [streams])",
    )
    s.add_argument("--calibration", default=None, help="calibration JSON to store and apply")
    s.add_argument(
        "--stack-area-m2",
        type=area_m2,
        default=None,
        metavar="A",
        help="pressed (stack) area for stack pressure, m² (9 mm die: 6.362e-5)",
    )
    s.add_argument(
        "--stack-diameter-m",
        type=diameter_m,
        default=None,
        metavar="D",
        help="or the die/press diameter, m (e.g. 0.009)",
    )
    s.add_argument(
        "--reference-grating",
        default=None,
        metavar="FIELD",
        help="strain-free FBG field (e.g. g1) for temperature compensation",
    )
    s.add_argument("--operator", default="", help="who ran it (stored in the recording)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument(
        "--fresh-cell",
        choices=("ask", "continue", "stop"),
        default="ask",
        help="a protocol step with fresh_cell = true on a real rig: ask the operator to put "
        "in a new cell (default; stops when stdin is not a terminal), continue with the "
        "same cell, or stop the run there. An emulated board resets its simulated cell.",
    )


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "record",
        "Record streams to HDF5 for a duration, optionally running a protocol.",
        "stressrig record --port emu://nak50_pulsed --duration 60 "
        "--streams elec:100,load:10 --stack-diameter-m 0.012 --out run.h5",
        exit_codes=True,
        more=STREAMS_TEXT,
    )
    s.add_argument("--protocol", help="also run this protocol file (TOML)")
    s.add_argument(
        "--duration",
        type=positive_seconds,
        default=None,
        help="seconds of wall time to record (> 0; default: until the protocol ends)",
    )
    _add_common(s)
    s = add_command(
        sub,
        "run",
        "Run an experiment protocol (TOML) and record it.",
        "stressrig run examples/seed004_staircase.toml --port emu://nak50_pulsed "
        "--out staircase.h5",
        exit_codes=True,
        more=STREAMS_TEXT,
    )
    s.add_argument("protocol", help="protocol file (TOML), see examples/")
    _add_common(s)


def _default_out(stem: str) -> Path:
    return Path(f"{stem}_{time.strftime('%Y%m%d_%H%M%S')}.h5")


def _cell(args: argparse.Namespace, proto: Any, cal: Any) -> dict[str, Any]:
    """The cell's areas: the command line wins over the protocol and the calibration."""
    import math

    cell: dict[str, Any] = {}
    if proto is not None:
        if proto.area_m2 is not None:
            cell["electrode_area_m2"] = proto.area_m2
        if proto.cell.get("label"):
            cell["label"] = str(proto.cell["label"])
        if proto.stack_area_m2 is not None:
            cell["stack_area_m2"] = proto.stack_area_m2
            cell["stack_area_source"] = "protocol [cell]"
    if "stack_area_m2" not in cell and cal is not None and cal.stack_area_m2:
        cell["stack_area_m2"] = cal.stack_area_m2
        cell["stack_area_source"] = "calibration"
    given = args.stack_area_m2
    if args.stack_diameter_m is not None:
        from_d = math.pi * (args.stack_diameter_m / 2.0) ** 2
        if given is not None and abs(from_d / given - 1.0) > 0.01:
            raise CliError(
                f"--stack-area-m2 {given:g} disagrees with --stack-diameter-m "
                f"{args.stack_diameter_m:g} ({from_d:.4g} m²); give one of them"
            )
        given = from_d
    if given is not None:
        old = cell.get("stack_area_m2")
        if old is not None and abs(old / given - 1.0) > 1e-6:
            note(
                f"stressrig {args.command}",
                f"stack area {given:.4g} m² from the command line replaces {old:.4g} m² "
                f"({cell.get('stack_area_source')})",
            )
        cell["stack_area_m2"] = given
        cell["stack_area_source"] = "command line"
    return cell


def run(args: argparse.Namespace) -> int:
    from host_sdk.protocols import load_protocol

    prog = f"stressrig {args.command}"
    proto = load_protocol(args.protocol) if getattr(args, "protocol", None) else None
    duration = getattr(args, "duration", None)
    if args.command == "record" and proto is None and duration is None:
        raise CliError("give --duration SECONDS (> 0) or --protocol FILE; e.g. --duration 600")
    streams = parse_streams(args.streams)
    if proto is not None and streams is not None:
        proto, notes = proto.with_streams(streams)
        for text in notes:
            note(prog, f"--streams wins: {text}")
    cal = load_calibration(args.calibration)
    cell = _cell(args, proto, cal)
    ref = args.reference_grating or (proto.reference_grating if proto else None)
    out = Path(args.out) if args.out else _default_out(proto.name if proto else "recording")
    from host_sdk.cli.session import no_stack_area_warning, record_session

    with open_rig(args.port) as rig:
        if streams is not None:
            unknown = sorted(set(streams) - set(rig.streams))
            if unknown:
                raise CliError(
                    f"--streams: the board has no {', '.join(unknown)} stream; it has "
                    f"{', '.join(rig.streams)}"
                )
        if "stack_area_m2" not in cell and no_stack_area_warning(rig, streams):
            warn(
                prog,
                "no stack area (the pressed area for stack pressure): the load cell is "
                "recorded as force in N. Give [cell] stack_diameter_m in the protocol or "
                "--stack-diameter-m / --stack-area-m2",
            )
        res = record_session(
            rig,
            out,
            protocol=proto,
            duration_s=duration,
            streams=streams if proto is None else None,
            calibration=cal.to_dict() if cal is not None else None,
            cell=cell,
            reference_grating=ref,
            progress=not args.no_progress,
            meta={"command": sys.argv[1:], "operator": args.operator},
            fresh_cell=args.fresh_cell,
        )
    print(json.dumps(res.summary, indent=2, default=str))
    print(f"recording: {out.resolve()}")
    outcome = res.outcome
    if outcome.completed:
        return EXIT_OK
    print(
        f"{prog}: {outcome.line()}; recording kept: {out} (it stores this outcome)",
        file=sys.stderr,
    )
    if outcome.interrupted:
        return EXIT_TERMINATED if "SIGTERM" in outcome.cause else EXIT_INTERRUPTED
    if outcome.board_stopped:
        return EXIT_BOARD_STOPPED
    return EXIT_ERROR
