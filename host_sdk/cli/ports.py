"""`stressrig ports`: serial ports and running emulated boards, with each board's unique id;
the known boards and the emulator scenarios."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from host_sdk.cli.common import add_command

MORE = """\
Each port that no other program holds is asked for its HELLO (a GET_INFO, about 0.3 s for
an emulated board, a few ms for a real one); a port in use is not touched and shows the
unique id it had when a stressrig program last saw it. Open a board by its id, whatever
its port name is today (and after a replug onto another name):
  stressrig info --port uid:e711daa69d4c
Running emulated boards (stressrig emulate, emu:// URLs) are listed as well."""


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "ports",
        "List serial ports and running emulated boards with each board's unique id.",
        "stressrig ports",
        more=MORE,
    )
    s.add_argument(
        "--no-probe",
        action="store_true",
        help="do not ask the ports (ids come from the last time they were seen)",
    )
    s.add_argument(
        "--probe",
        action="store_true",
        help=argparse.SUPPRESS,  # probing is the default now; kept for old scripts
    )
    s.add_argument("--json", action="store_true", help="print the ports as JSON")


def _describe(b: Any) -> str:
    if b.busy:
        last = f"uid {b.unique_id} when last seen; " if b.unique_id else ""
        return f"{last}in use: {b.busy.split('. One program')[0]}"
    if b.unique_id and not b.cached:
        return f"uid {b.unique_id}  {b.board_id}  firmware {b.firmware}"
    if b.unique_id:
        return f"uid {b.unique_id} (last seen; not asked)"
    return f"no stressrig board ({b.error})" if b.error else ""


def run(args: argparse.Namespace) -> int:
    from host_sdk.fleet.identity import scan_boards

    boards = scan_boards(probe=not args.no_probe)
    if args.json:
        print(json.dumps([b.to_dict() for b in boards], indent=1))
        return 0
    serial_ports = [b for b in boards if b.kind == "serial"]
    emulated = [b for b in boards if b.kind == "emulated"]
    print("serial ports:")
    for b in serial_ports or []:
        print(f"  {b.device:24s} {b.description}  {_describe(b)}".rstrip())
    if not serial_ports:
        print("  (none)")
    print("running emulated boards:")
    for b in emulated:
        print(f"  {b.device}  {_describe(b)}")
    if not emulated:
        print("  (none)")
    ids = [b.unique_id for b in boards if b.unique_id]
    if ids:
        print(f"open one by id: --port uid:{ids[0]}")
    root = Path(__file__).resolve().parents[2] / "boards"
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    print("known boards (stressrig flash --board NAME):", ", ".join(names) or "(none)")
    try:
        from host_sdk.emulator import list_scenarios

        print("emulated boards (--port emu://NAME):", ", ".join(list_scenarios()))
    except ImportError:
        pass
    return 0
