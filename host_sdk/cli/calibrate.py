"""`stressrig calibrate`: load-cell tare and span from known loads, or FBG reference
wavelengths; writes (or updates) a calibration JSON."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from host_sdk.cli.common import (
    EXIT_ERROR,
    CliError,
    add_command,
    area_m2,
    diameter_m,
    number_list,
    open_rig,
    positive_number,
    positive_seconds,
)

G_M_S2 = 9.80665
EMULATED_MASSES_KG = (0.0, 1.0, 2.0, 5.0)

MORE = """\
On a real rig stressrig asks you to place each load and press Enter (0 first: the tare,
nothing on the load cell). On an emulated board (--port emu://...) the emulated press
opens and places the masses itself (default 0,1,2,5 kg). The fit is refused, and nothing
written, when the readings do not follow the loads or the span is far from the board's
nominal one (--span-tolerance)."""


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "calibrate",
        "Calibrate the load cell (tare + span with known weights) or record FBG reference "
        "wavelengths; writes/updates a calibration JSON.",
        "stressrig calibrate load --port /dev/ttyACM0 --masses-kg 0,1,2,5 "
        "--stack-diameter-m 0.009 --out cal.json",
        more=MORE,
    )
    s.add_argument("what", choices=["load", "fbg"], help="load cell, or FBG references")
    s.add_argument("--port", required=True, help="the board (see PORT below)")
    s.add_argument("--out", default="calibration.json", help="calibration JSON to write")
    s.add_argument("--loads-n", default=None, help="known loads in N, comma separated (0 = tare)")
    s.add_argument("--masses-kg", default=None, help="or known masses in kg, comma separated")
    s.add_argument(
        "--hold-s", type=positive_seconds, default=5.0, help="averaging time per point (s)"
    )
    s.add_argument(
        "--stack-area-m2",
        type=area_m2,
        default=None,
        metavar="A",
        help="pressed (stack) area stored with the calibration, m² (9 mm die: 6.362e-5)",
    )
    s.add_argument(
        "--stack-diameter-m",
        type=diameter_m,
        default=None,
        metavar="D",
        help="or the die/press diameter, m (e.g. 0.009)",
    )
    s.add_argument(
        "--span-tolerance",
        type=positive_number,
        default=0.25,
        metavar="FRACTION",
        help="largest allowed relative difference of the fitted span from the board's "
        "nominal one (default 0.25)",
    )
    s.add_argument(
        "--reference-grating",
        default=None,
        help="strain-free FBG field (e.g. g1) used for temperature compensation",
    )
    s.add_argument(
        "--yes",
        action="store_true",
        help="do not wait for Enter between points (a script places the loads)",
    )


def _loads(args: argparse.Namespace, emulated: bool) -> list[float]:
    if args.loads_n:
        return number_list(args.loads_n, "--loads-n")
    if args.masses_kg:
        return [m * G_M_S2 for m in number_list(args.masses_kg, "--masses-kg")]
    if emulated:
        return [m * G_M_S2 for m in EMULATED_MASSES_KG]
    raise CliError(
        "give --loads-n or --masses-kg (0 first, for the tare), e.g. --masses-kg 0,1,2,5"
    )


def _human_placer(yes: bool) -> Any:
    if not yes and not sys.stdin.isatty():
        raise CliError(
            "calibrate load waits for you to place each load and press Enter, but stdin is "
            "not a terminal: run it in a terminal, or give --yes when a script places the loads"
        )

    def place(load_n: float) -> None:
        if yes:
            return
        try:
            input(
                f"put {load_n:g} N ({load_n / G_M_S2:.4g} kg) on the load cell, then press Enter "
            )
        except EOFError:
            raise CliError("stdin closed before all loads were placed; nothing written") from None

    return place


def _calibrate_load(args: argparse.Namespace, rig: Any, cal: Any) -> None:
    from host_sdk.calibration import (
        CalibrationError,
        emulated_press_loads,
        fit_load_cell,
        measure_known_loads,
        nominal_span,
    )

    emu = rig.emulator
    loads = _loads(args, emu is not None)

    def report(load_n: float, mean: float, n: int) -> None:
        print(f"  {load_n:10.3f} N  -> {mean:14.1f} counts (mean of {n})")

    if emu is not None:
        print("emulated board: the press opens and places the known masses itself")
        counts = emulated_press_loads(rig, loads, args.hold_s, report=report)
    else:
        counts = measure_known_loads(
            rig, loads, args.hold_s, _human_placer(args.yes), report=report
        )
    nominal = nominal_span(rig.hello)
    try:
        lc = fit_load_cell(
            counts, loads, nominal_n_per_count=nominal, span_tolerance=args.span_tolerance
        )
    except CalibrationError as e:
        raise CliError(f"{e}; nothing written", EXIT_ERROR) from None
    cal.load_cell = lc
    vs = f" ({lc.span_n_per_count / nominal - 1:+.2%} vs the board's nominal)" if nominal else ""
    print(
        f"tare {lc.tare_counts:.1f} counts, span {lc.span_n_per_count:.6g} N/count{vs}, "
        f"rms residual {lc.rms_residual_n:.3g} N"
    )


def _calibrate_fbg(args: argparse.Namespace, rig: Any, cal: Any) -> None:
    from host_sdk.calibration import FbgCalibration, mean_of_field

    fbg = rig.streams.get("fbg")
    if fbg is None:
        raise CliError(f"the board has no fbg stream; it has {', '.join(rig.streams)}", 1)
    gratings = [f.name for f in fbg.fields if f.unit in ("nm", "m", "pm")]
    if args.reference_grating and args.reference_grating not in gratings:
        raise CliError(
            f"--reference-grating {args.reference_grating}: no such grating; the board has "
            f"{', '.join(gratings)}"
        )
    rig.configure_stream("fbg", rate_hz=fbg.rate_hz, enabled=True)
    rig.set_streaming(True)
    lam = {}
    for f in fbg.fields:
        if f.name in gratings:
            raw = mean_of_field(rig, "fbg", f.name, args.hold_s)
            k = {"nm": 1e-9, "m": 1.0, "pm": 1e-12}[f.unit]
            lam[f.name] = (raw * f.scale + f.offset) * k
            print(f"  {f.name}: {lam[f.name] * 1e9:.4f} nm")
    cal.fbg = FbgCalibration(lam, args.reference_grating)


def run(args: argparse.Namespace) -> int:
    from host_sdk.calibration import Calibration, CalibrationError

    out = Path(args.out)
    try:
        cal = Calibration.load(out) if out.exists() else Calibration()
    except CalibrationError as e:
        raise CliError(f"{e} (--out names an existing file to update)") from None
    if args.stack_diameter_m is not None:
        cal.stack_area_m2 = math.pi * (args.stack_diameter_m / 2.0) ** 2
    if args.stack_area_m2 is not None:
        cal.stack_area_m2 = args.stack_area_m2
    with open_rig(args.port) as rig:
        cal.unique_id = rig.unique_id
        if args.what == "load":
            _calibrate_load(args, rig, cal)
        else:
            _calibrate_fbg(args, rig, cal)
    cal.created_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cal.save(out)
    print(f"calibration: {out.resolve()}")
    if cal.stack_area_m2 is None:
        print(
            "stressrig calibrate: note: no stack area stored (--stack-diameter-m or "
            "--stack-area-m2): pressure needs it from the protocol or the command line",
            file=sys.stderr,
        )
    return 0
