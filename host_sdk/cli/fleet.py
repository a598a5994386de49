"""`stressrig fleet`: run a protocol on many rigs at once (run), see where they are
(status), and start or abort one rig of a running supervisor (start, abort)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from host_sdk.cli.common import (
    EXIT_CODES_TEXT,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    Parser,
)

FLEET_TEXT = """\
FLEET.toml names the rigs, their ports and protocols (examples/fleets/fleet_emulated.toml):
  [fleet]
  name = "lab3"                 # MQTT topics stressrig/lab3/...
  out_dir = "runs/lab3"         # recordings <rig>_<start>.h5; state in runs/lab3/.fleet/
  protocol = "../examples/seed004_staircase.toml"
  [mqtt]                        # optional: state, events, live points to a broker
  host = "127.0.0.1"
  [[rig]]
  name = "cell01"
  port = "uid:e711daa69d4c"     # by unique id (stressrig ports), whatever its port name

Each rig runs in its own thread with its own recording; a rig that fails (no board,
unplugged, latched, rebooted) is reported in the table and the others go on.

A killed supervisor (kill -9, host crash) can be started again with the same command: it
takes over every rig whose protocol is still running on its board, appends to the same
recording and marks the gap (exact sample counts; a marker says how long it was away).
The board keeps running only as long as its watchdog allows: set the protocol's
[safety] watchdog_s (up to 600 s) to the time a restart may take. emu:// ports run inside
the supervisor and die with it: use stressrig emulate and uid: or pty ports to try it.
Ctrl-C aborts every rig (current off, recordings closed)."""


def add_parsers(sub: Any) -> None:
    f = sub.add_parser(
        "fleet",
        help="Run a protocol on many rigs at once; status, start, abort.",
        description="Run a protocol on many rigs at once, each with its own recording.",
        epilog="examples:\n  stressrig fleet run examples/fleets/fleet_emulated.toml\n"
        "  stressrig fleet run lab3.toml --dashboard 8765     # live page on localhost\n"
        "  stressrig fleet status lab3.toml\n  stressrig fleet abort lab3.toml cell07 "
        "--reason 'cell swelling'\n\n" + FLEET_TEXT + "\n\n" + EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fs = f.add_subparsers(
        dest="fleet_command", metavar="run|status|start|abort", parser_class=Parser
    )
    r = fs.add_parser(
        "run",
        help="run (or take over) every rig of FLEET.toml",
        description="Run the fleet's protocols, one thread and one recording per rig; take "
        "over runs a killed supervisor left. One status table; exit code: 0 all completed, "
        "3 a board stopped a run, 1 an error on a rig, 130 Ctrl-C.",
        epilog="example:\n"
        "  stressrig fleet run examples/fleets/fleet_emulated.toml --dashboard 8765",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("fleet", help="fleet file (TOML)")
    r.add_argument(
        "--rig",
        action="append",
        default=None,
        metavar="NAME",
        help="only this rig (repeat for more)",
    )
    r.add_argument(
        "--restart",
        action="store_true",
        help="start new runs (new recordings) even where a run ended or was left "
        "running by a killed supervisor",
    )
    r.add_argument(
        "--dashboard",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the live dashboard on http://127.0.0.1:PORT/ (0: any free port)",
    )
    r.add_argument("--no-mqtt", action="store_true", help="ignore the file's [mqtt]")
    r.add_argument(
        "--stay",
        action="store_true",
        help="keep running after every rig ended (for start commands); Ctrl-C ends",
    )
    r.add_argument("--no-table", action="store_true", help="no status table (log lines only)")
    s = fs.add_parser(
        "status",
        help="the rigs' state files: phase, step, recording",
        epilog="example:\n  stressrig fleet status lab3.toml --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("fleet", help="fleet file (TOML)")
    s.add_argument("--json", action="store_true")
    for name, text in (
        ("start", "start one rig of a running supervisor"),
        ("abort", "abort one rig (or all) of a running supervisor"),
    ):
        c = fs.add_parser(
            name,
            help=text,
            description=text + " (same check as over MQTT)",
            epilog=f"example:\n  stressrig fleet {name} lab3.toml cell07",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        c.add_argument("fleet", help="fleet file (TOML)")
        c.add_argument("rig", help="rig name" + (" or all" if name == "abort" else ""))
        if name == "start":
            c.add_argument("--restart", action="store_true", help="a new run after one ended")
        else:
            c.add_argument("--reason", default="", help="why (stored in the recording)")


def _load(path: str) -> Any:
    from host_sdk.fleet.config import FleetError, load_fleet

    try:
        return load_fleet(path)
    except FleetError as e:
        raise CliError(str(e), EXIT_USAGE) from None


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "fleet_command", None)
    if cmd is None:
        raise CliError("give a fleet command: run, status, start or abort (stressrig fleet --help)")
    cfg = _load(args.fleet)
    if cmd == "run":
        return _run(args, cfg)
    if cmd == "status":
        return _status(args, cfg)
    from host_sdk.fleet.commands import send_via_spool

    argv = [cmd, args.rig]
    if cmd == "start" and args.restart:
        argv.append("--restart")
    if cmd == "abort" and args.reason:
        argv += ["--reason", args.reason]
    reply = send_via_spool(cfg.state_dir, argv)
    print(reply.message, file=sys.stdout if reply.code == 0 else sys.stderr)
    return reply.code


def _status(args: argparse.Namespace, cfg: Any) -> int:
    from host_sdk.fleet.hub import TERMINAL_PHASES
    from host_sdk.fleet.state import load_state
    from host_sdk.fleet.table import render

    states = {}
    for spec in cfg.rigs:
        st = load_state(cfg.state_dir, spec.name)
        d = st.to_dict() if st else {"rig": spec.name, "port": spec.port, "phase": "never run"}
        for bulky in ("steps_done", "markers"):
            d.pop(bulky, None)
        pid = int(d.get("supervisor_pid") or 0)
        if st is not None and st.phase not in TERMINAL_PHASES and not _alive(pid):
            d["alive"] = False
            d["message"] = (
                f"its supervisor (pid {pid}) is gone; `stressrig fleet run {args.fleet}` "
                "takes the run over while the board still runs it"
            )
        states[spec.name] = d
    if args.json:
        print(json.dumps(states, indent=1, default=str))
    else:
        print(render(states, {}))
    return 0


def _alive(pid: int) -> bool:
    import os

    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(args: argparse.Namespace, cfg: Any) -> int:
    from host_sdk.fleet.hub import FleetHub
    from host_sdk.fleet.supervisor import Supervisor
    from host_sdk.fleet.table import StatusTable

    prog = "stressrig fleet run"
    unknown = sorted(set(args.rig or []) - {r.name for r in cfg.rigs})
    if unknown:
        raise CliError(
            f"--rig {', '.join(unknown)}: not in {args.fleet}; rigs: "
            f"{', '.join(r.name for r in cfg.rigs)}"
        )
    hub = FleetHub(cfg.name)
    try:
        sup = Supervisor(cfg, hub)
    except RuntimeError as e:
        raise CliError(str(e), EXIT_ERROR) from None
    extras: list[Any] = []
    code: int | None = None
    try:
        if cfg.mqtt is not None and not args.no_mqtt:
            from host_sdk.fleet.mqtt import MqttBridge, MqttUnavailable

            try:
                extras.append(MqttBridge(cfg.mqtt, hub, sup))
            except MqttUnavailable as e:
                raise CliError(f"{e} (or run with --no-mqtt)", EXIT_ERROR) from None
        if args.dashboard is not None:
            from host_sdk.fleet.dashboard import DashboardServer

            dash = DashboardServer(hub, port=args.dashboard)
            extras.append(dash)
            print(f"{prog}: dashboard on {dash.url}", file=sys.stderr, flush=True)
        table = StatusTable(enabled=not args.no_table)
        sup.start(args.rig, restart=args.restart)
        try:
            while sup.running() or args.stay:
                sup.step()
                table.draw(hub.states(), sup.latest_points())
                time.sleep(0.5)
        except KeyboardInterrupt as e:
            code = EXIT_TERMINATED if str(e) == "SIGTERM" else EXIT_INTERRUPTED
            print(
                f"{prog}: {'SIGTERM' if code == EXIT_TERMINATED else 'Ctrl-C'}: aborting "
                "every rig (current off, recordings closed)",
                file=sys.stderr,
                flush=True,
            )
            for w in sup.workers.values():
                w.request_abort("Ctrl-C" if code == EXIT_INTERRUPTED else "SIGTERM", True)
            sup.join()
        sup.step()
        table.draw(hub.states(), sup.latest_points(), final=True)
    finally:
        sup.close()
        for x in reversed(extras):
            x.close()
    for name, info in sup.summary().items():
        o = info["outcome"] or {}
        print(f"{name}: {info['phase']}: {o.get('cause', '')}  recording: {info['recording']}")
    return code if code is not None else sup.exit_code()
