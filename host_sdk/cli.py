"""`stressrig`: the bench command. One subcommand per job; `stressrig CMD --help` explains
each with an example. Ports are serial devices, socket://HOST:PORT, or emu://SCENARIO."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

EPILOG_PORT = (
    "PORT is a serial device (/dev/ttyACM0, COM3), socket://HOST:PORT, or an emulated board "
    "emu://SCENARIO?seed=1 (scenarios: stressrig emulate --list; speed=N caps the emulated "
    "clock at N x wall time, default max)."
)


def _fmt(text: str) -> str:
    return text.strip("\n")


def _add(sub: Any, name: str, help_: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help_,
        description=help_,
        epilog=f"example:\n  {example}\n\n{EPILOG_PORT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stressrig",
        description="Battery stress rig: control the board, record, analyse. "
        "Run `stressrig demo` for the whole path on an emulated board.",
        epilog="examples:\n  stressrig demo --out demo_out\n  stressrig ports\n"
        "  stressrig record --port emu://nak50_pulsed --duration 30 --out run.h5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what the client does")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = _add(sub, "ports", "List serial ports and the known boards.", "stressrig ports --probe")
    s.add_argument(
        "--probe",
        action="store_true",
        help="ask each serial port for a HELLO (2 s each) to find stressrig boards",
    )

    s = _add(
        sub,
        "emulate",
        "Run an emulated board behind a pty (and optionally TCP).",
        "stressrig emulate --scenario nak50_pulsed --speed 50 --tcp 5555",
    )
    s.add_argument(
        "emu_args",
        nargs=argparse.REMAINDER,
        help="--scenario NAME --speed N|max --cpu ideal|rp2040 --seed S --tcp PORT --list "
        "(stressrig emulate --help for all)",
    )

    s = _add(
        sub,
        "info",
        "Show a board's HELLO (ids, firmware, streams, limits) and STATUS.",
        "stressrig info --port /dev/ttyACM0",
    )
    s.add_argument("--port", required=True)
    s.add_argument("--json", action="store_true", help="print JSON")

    for name, help_, example in (
        (
            "record",
            "Record streams to HDF5 for a duration, optionally running a protocol.",
            "stressrig record --port emu://nak50_pulsed --duration 60 "
            "--streams elec:100,load:10 --out run.h5",
        ),
        (
            "run",
            "Run an experiment protocol (TOML) and record it.",
            "stressrig run examples/seed004_staircase.toml --port emu://nak50_pulsed "
            "--out staircase.h5",
        ),
    ):
        s = _add(sub, name, help_, example)
        if name == "run":
            s.add_argument("protocol", help="protocol file (TOML), see examples/")
        else:
            s.add_argument("--protocol", help="also run this protocol file (TOML)")
            s.add_argument(
                "--duration",
                type=float,
                default=None,
                help="seconds of wall time to record (default: until the protocol ends, or Ctrl-C)",
            )
        s.add_argument("--port", required=True)
        s.add_argument("--out", default=None, help="recording file (.h5); default: timestamped")
        s.add_argument(
            "--streams",
            default=None,
            help="NAME:RATE_HZ list, e.g. elec:100,load:10 (others disabled)",
        )
        s.add_argument("--calibration", default=None, help="calibration JSON to store")
        s.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = _add(
        sub,
        "calibrate",
        "Calibrate the load cell (tare + span with known weights) or "
        "record FBG reference wavelengths; writes/updates a calibration JSON.",
        "stressrig calibrate load --port /dev/ttyACM0 --loads-n 0,49.03,98.07 "
        "--area-m2 6.362e-5 --out cal.json",
    )
    s.add_argument("what", choices=["load", "fbg"])
    s.add_argument("--port", required=True)
    s.add_argument("--out", default="calibration.json")
    s.add_argument(
        "--loads-n",
        default=None,
        help="known loads in N, comma separated (0 = tare); or use --masses-kg",
    )
    s.add_argument("--masses-kg", default=None, help="known masses in kg, comma separated")
    s.add_argument("--hold-s", type=float, default=5.0, help="averaging time per point (s)")
    s.add_argument("--area-m2", type=float, default=None, help="stack area for pressure")
    s.add_argument(
        "--reference-grating",
        default=None,
        help="strain-free FBG field (e.g. g1) used for temperature compensation",
    )
    s.add_argument(
        "--yes",
        action="store_true",
        help="do not wait for Enter between points (scripted/emulated loads)",
    )

    s = _add(
        sub,
        "analyze",
        "Analyse a recording: PNG plots and summary.json.",
        "stressrig analyze run.h5 --out run_analysis",
    )
    s.add_argument("recording")
    s.add_argument("--out", default=None, help="output folder (default: RECORDING_analysis)")
    s.add_argument("--calibration", default=None, help="calibration JSON (overrides stored)")
    s.add_argument(
        "--gitt-v-over-s-m",
        type=float,
        default=None,
        help="V/S (m) for GITT diffusion coefficients (film thickness, or R/3)",
    )

    s = _add(
        sub,
        "export",
        "Export a recording to CSV or Parquet (one file per stream).",
        "stressrig export run.h5 --format parquet --out run_export",
    )
    s.add_argument("recording")
    s.add_argument("--format", choices=["csv", "parquet"], default="csv")
    s.add_argument("--out", default=None, help="output folder (default: next to the file)")

    s = _add(
        sub,
        "flash",
        "Build the firmware for a board and copy it with mpremote.",
        "stressrig flash --port /dev/ttyACM0 --board rp2040_pico",
    )
    s.add_argument("--port", required=True)
    s.add_argument("--board", required=True, help="board name (a folder of boards/)")
    s.add_argument("--dry-run", action="store_true", help="print the commands only")

    s = _add(
        sub,
        "demo",
        "Emulated board + short seed-004-style pulsed experiment: record, "
        "analyse, write plots and summary.json.",
        "stressrig demo --out demo_out",
    )
    s.add_argument("--out", default="stressrig_demo", help="output folder")
    s.add_argument(
        "--speed",
        default=None,
        help="most device seconds per wall second of the emulated board, or max (default)",
    )
    s.add_argument("--seed", type=int, default=1)
    return p


# ---- helpers ------------------------------------------------------------------------------
def _parse_streams(text: str | None) -> dict[str, dict[str, Any]] | None:
    if not text:
        return None
    out: dict[str, dict[str, Any]] = {}
    for item in text.split(","):
        name, _, rate = item.partition(":")
        out[name.strip()] = {"rate_hz": float(rate)} if rate else {}
    return out


def _open_rig(port: str) -> Any:
    from host_sdk.client import Rig

    return Rig.open(port)


def _live_figures(rig: Any) -> dict[str, str]:
    """Latest figures for the progress bar (set by the callback of `_install_live`)."""
    return dict(getattr(rig, "_live", {}))


def _install_live(rig: Any, area_m2: float | None = None) -> None:
    """Keep the latest voltage (V), pressure (MPa, or force in N without an area) and FBG
    strain (µε against the first reading, uncompensated) in `rig._live`."""
    streams = rig.streams
    rig._live = {}
    p_e = 0.22

    def field_of(stream: str, units: tuple[str, ...]) -> Any:
        s = streams.get(stream)
        for f in s.fields if s is not None else ():
            if f.unit in units and f.name != "t_us":
                return f
        return None

    fv, fl, fb = field_of("elec", ("V",)), field_of("load", ("N",)), field_of("fbg", ("nm",))
    lam0: list[float] = []

    def cb(block: Any) -> None:
        last = block.records[-1]
        if block.stream == "elec" and fv is not None:
            rig._live["V"] = f"{float(last[fv.name]) * fv.scale + fv.offset:.3f}"
        elif block.stream == "load" and fl is not None:
            force = float(last[fl.name]) * fl.scale + fl.offset
            if area_m2:
                rig._live["MPa"] = f"{force / area_m2 / 1e6:.2f}"
            else:
                rig._live["N"] = f"{force:.1f}"
        elif block.stream == "fbg" and fb is not None:
            lam = float(last[fb.name]) * fb.scale + fb.offset
            if not lam0 and lam > 0:
                lam0.append(lam)
            if lam0:
                rig._live["µε"] = f"{(lam - lam0[0]) / lam0[0] / (1 - p_e) * 1e6:.1f}"

    rig.on_block(cb)


def record_session(
    rig: Any,
    out: Path,
    *,
    protocol: Any = None,
    duration_s: float | None = None,
    streams: dict[str, dict[str, Any]] | None = None,
    calibration: dict[str, Any] | None = None,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record from an open rig (running `protocol` if given); returns a summary dict."""
    from tqdm import tqdm

    from host_sdk.protocols import run_protocol
    from host_sdk.recording import Recorder

    if streams:
        for name, info in rig.streams.items():
            cfg = streams.get(name)
            rig.configure_stream(
                name,
                rate_hz=float((cfg or {}).get("rate_hz", info.rate_hz)),
                enabled=cfg is not None,
            )
    rec = Recorder.attach(
        rig,
        out,
        protocol=protocol.to_dict() if protocol else None,
        calibration=calibration,
        meta=meta,
    )
    area = (calibration or {}).get("area_m2") or (protocol.area_m2 if protocol else None)
    _install_live(rig, area)
    stop = threading.Event()
    result: dict[str, Any] = {}
    runner: threading.Thread | None = None
    if protocol is not None:

        def run() -> None:
            try:
                r = run_protocol(rig, protocol, recorder=rec, stop=stop)
                result["protocol"] = {
                    "completed": r.completed,
                    "stopped_by": r.stopped_by,
                    "steps": [vars(s) for s in r.steps],
                }
            except Exception as e:  # noqa: BLE001 - reported to the user below
                result["error"] = f"{type(e).__name__}: {e}"

        runner = threading.Thread(target=run, name="protocol", daemon=True)
        runner.start()
    else:
        rig.set_streaming(True)
    t0 = time.monotonic()
    total = duration_s if duration_s else None
    bar = tqdm(
        total=total,
        unit="s",
        disable=not progress,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s {postfix}"
        if total
        else "{desc} {elapsed} {postfix}",
        desc=str(out.name),
    )
    try:
        while True:
            time.sleep(0.25)
            elapsed = time.monotonic() - t0
            live = _live_figures(rig)
            lost = sum(rig.lost_samples.values())
            bar.set_postfix_str(
                f"t_dev={rig.device_time_s:.1f}s "
                + " ".join(f"{v}{k}" for k, v in live.items())
                + f" lost={lost}"
            )
            bar.n = min(elapsed, total) if total else elapsed
            bar.refresh()
            if total is not None and elapsed >= total:
                break
            if runner is not None and not runner.is_alive():
                break
    except KeyboardInterrupt:
        result["interrupted"] = True
    finally:
        stop.set()
        if runner is not None:
            runner.join(timeout=10)
        bar.close()
        with_stats = {
            "lost_samples": rig.lost_samples,
            "reconnects": rig.reconnects,
            "board_reboots": rig.boots,
        }
        rec.close(**with_stats)
    result.update(path=str(out), records=dict(rec.records_written), **with_stats)
    return result


# ---- commands -----------------------------------------------------------------------------
def cmd_ports(args: argparse.Namespace) -> int:
    from host_sdk.transport import available_ports

    ports = available_ports()
    print("serial ports:")
    for dev, desc in ports or [("(none)", "")]:
        line = f"  {dev:24s} {desc}"
        if args.probe and dev != "(none)":
            try:
                from host_sdk.client import Link, Rig

                r = Rig(
                    Link(dev), connect_timeout_s=2.0, heartbeat_s=None, check_versions=False
                ).connect()
                line += f"  -> {r.board_id} {r.unique_id} fw {r.firmware_version}"
                r.close()
            except Exception as e:  # noqa: BLE001
                line += f"  (no stressrig board: {type(e).__name__})"
        print(line)
    root = Path(__file__).resolve().parent.parent / "boards"
    boards = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    print("known boards (stressrig flash --board NAME):", ", ".join(boards) or "(none)")
    try:
        from host_sdk.emulator import list_scenarios

        print("emulated boards (--port emu://NAME):", ", ".join(list_scenarios()))
    except ImportError:
        pass
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    from host_sdk.emulator import run_emulator_cli

    rest = [a for a in args.emu_args if a != "--"]
    return int(run_emulator_cli(rest) or 0)


def cmd_info(args: argparse.Namespace) -> int:
    from host_sdk.recording.writer import hello_to_dict

    with _open_rig(args.port) as rig:
        hello = hello_to_dict(rig.hello)
        status = rig.status()
        if args.json:
            print(json.dumps({"hello": hello, "status": vars(status)}, indent=2, default=str))
            return 0
        fw = ".".join(map(str, rig.firmware_version))
        print(
            f"board {rig.board_id}  unique id {rig.unique_id}  firmware {fw}  "
            f"protocol {rig.hello.protocol_version}  on {rig.link.describe()}"
        )
        for s in rig.hello.streams:
            fields = ", ".join(f"{f.name}[{f.unit}]" for f in s.fields)
            print(
                f"  stream {s.id} {s.name:5s} {s.rate_hz:8.2f} Hz "
                f"{'on ' if s.enabled else 'off'} {s.record_format:8s} {fields}"
            )
        print("  limits: " + ", ".join(f"{k}={v:g}" for k, v in sorted(rig.hello.limits.items())))
        print(
            f"  status: {status.state_name}, setpoint {status.setpoint_a:g} A, uptime "
            f"{status.uptime_ms / 1000:.1f} s, heap free {status.heap_free} B"
        )
    return 0


def _default_out(stem: str) -> Path:
    return Path(f"{stem}_{time.strftime('%Y%m%d_%H%M%S')}.h5")


def cmd_record(args: argparse.Namespace) -> int:
    from host_sdk.protocols import load_protocol

    proto = load_protocol(args.protocol) if getattr(args, "protocol", None) else None
    if args.command == "record" and proto is None and not args.duration:
        print("stressrig record: give --duration (s) or --protocol", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else _default_out(proto.name if proto else "recording")
    cal = None
    if args.calibration:
        try:
            cal = json.loads(Path(args.calibration).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"stressrig {args.command}: calibration {args.calibration}: {e}", file=sys.stderr)
            return 2
    with _open_rig(args.port) as rig:
        res = record_session(
            rig,
            out,
            protocol=proto,
            duration_s=getattr(args, "duration", None),
            streams=_parse_streams(args.streams),
            calibration=cal,
            progress=not args.no_progress,
            meta={"command": sys.argv[1:]},
        )
    print(json.dumps(res, indent=2, default=str))
    print(f"recording: {out.resolve()}")
    return 1 if "error" in res else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from host_sdk.calibration import Calibration, FbgCalibration, fit_load_cell, mean_of_field

    out = Path(args.out)
    cal = Calibration.load(out) if out.exists() else Calibration()
    with _open_rig(args.port) as rig:
        cal.unique_id = rig.unique_id
        if args.area_m2:
            cal.area_m2 = args.area_m2
        if args.what == "load":
            if args.loads_n:
                loads = [float(x) for x in args.loads_n.split(",")]
            elif args.masses_kg:
                loads = [float(x) * 9.80665 for x in args.masses_kg.split(",")]
            else:
                print("give --loads-n or --masses-kg (first 0 for the tare)", file=sys.stderr)
                return 2
            load = rig.streams["load"]
            field = next(f.name for f in load.fields if f.name != "t_us")
            rig.configure_stream("load", rate_hz=load.rate_hz, enabled=True)
            rig.set_streaming(True)
            counts = []
            for f_n in loads:
                if not args.yes:
                    input(f"put {f_n:g} N on the load cell, then press Enter ")
                c = mean_of_field(rig, "load", field, args.hold_s)
                print(f"  {f_n:10.3f} N  -> {c:14.1f} counts")
                counts.append(c)
            cal.load_cell = fit_load_cell(counts, loads)
            print(
                f"tare {cal.load_cell.tare_counts:.1f} counts, span "
                f"{cal.load_cell.span_n_per_count:.6g} N/count, rms residual "
                f"{cal.load_cell.rms_residual_n:.3g} N"
            )
        else:
            fbg = rig.streams["fbg"]
            rig.configure_stream("fbg", rate_hz=fbg.rate_hz, enabled=True)
            rig.set_streaming(True)
            lam = {}
            for f in fbg.fields:
                if f.unit in ("nm", "m", "pm"):
                    raw = mean_of_field(rig, "fbg", f.name, args.hold_s)
                    k = {"nm": 1e-9, "m": 1.0, "pm": 1e-12}[f.unit]
                    lam[f.name] = (raw * f.scale + f.offset) * k
                    print(f"  {f.name}: {lam[f.name] * 1e9:.4f} nm")
            cal.fbg = FbgCalibration(lam, args.reference_grating)
    cal.created_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cal.save(out)
    print(f"calibration: {out.resolve()}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from host_sdk.calibration import Calibration
    from host_sdk.recording.analyze import analyze_recording

    out = (
        Path(args.out)
        if args.out
        else Path(str(Path(args.recording).with_suffix("")) + "_analysis")
    )
    cal = Calibration.load(args.calibration) if args.calibration else None
    summary = analyze_recording(
        args.recording, out, calibration=cal, v_over_s_m=args.gitt_v_over_s_m
    )
    for p in summary["recording"]["problems"]:
        print(f"warning: {p}", file=sys.stderr)
    print(f"plots: {', '.join(summary['plots'])}")
    print(f"summary: {(out / 'summary.json').resolve()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from host_sdk.recording import export_recording, load_recording

    rec = load_recording(args.recording)
    for problem in rec.problems:
        print(f"warning: {problem}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.recording).parent
    for written in export_recording(rec, out, args.format):
        print(written)
    return 0


def _leave_binary_mode(port: str) -> None:
    """If stressrig firmware answers on `port`, switch its current off and send ENTER_REPL
    so mpremote finds the REPL (the binary protocol ignores Ctrl-C by design)."""
    from host_sdk.client import Rig

    try:
        rig = Rig.open(
            port, connect_timeout_s=2.0, heartbeat_s=None, check_versions=False, reconnect=False
        )
    except Exception as e:  # noqa: BLE001 - no firmware answering: assume the REPL
        print(
            f"no stressrig firmware answering on {port} ({type(e).__name__}); "
            "assuming the board is at the REPL"
        )
        return
    try:
        rig.ensure_current_off()
        rig.enter_repl()
        print(f"{rig.board_id} {rig.unique_id}: current off, left binary mode (ENTER_REPL)")
    finally:
        rig.close(leave_current_off=False)


def cmd_flash(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    root = Path(__file__).resolve().parent.parent
    build = root / "build" / args.board
    steps = [[sys.executable, str(root / "firmware" / "build.py"), "--board", args.board]]
    mpremote = shutil.which("mpremote") or "mpremote"
    steps.append([mpremote, "connect", args.port, "fs", "cp", "-r", f"{build}/.", ":"])
    steps.append([mpremote, "connect", args.port, "reset"])
    if not args.dry_run:
        _leave_binary_mode(args.port)
    for cmd in steps:
        print("$ " + " ".join(cmd))
        if not args.dry_run:
            r = subprocess.run(cmd, check=False)
            if r.returncode != 0:
                print(
                    f"stressrig flash: step failed ({r.returncode}); if the board runs the "
                    "binary protocol, `stressrig` sends ENTER_REPL first: try again",
                    file=sys.stderr,
                )
                return r.returncode
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from host_sdk.demo import run_demo

    run_demo(Path(args.out), speed=args.speed, seed=args.seed)
    return 0


COMMANDS = {
    "ports": cmd_ports,
    "emulate": cmd_emulate,
    "info": cmd_info,
    "record": cmd_record,
    "run": cmd_record,
    "calibrate": cmd_calibrate,
    "analyze": cmd_analyze,
    "export": cmd_export,
    "flash": cmd_flash,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulate"]:  # pass everything through to the emulator's own parser
        from host_sdk.emulator import run_emulator_cli

        return int(run_emulator_cli(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from host_sdk.client import RigError
    from host_sdk.protocols import ProtocolError
    from host_sdk.recording import RecordingError
    from host_sdk.transport import PortNotFound

    try:
        return COMMANDS[args.command](args)
    except (RigError, ProtocolError, RecordingError, PortNotFound) as e:
        print(f"stressrig {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
