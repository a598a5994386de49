"""`stressrig ports`: serial ports, the known boards, the emulated boards."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from host_sdk.cli.common import add_command


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub, "ports", "List serial ports and the known boards.", "stressrig ports --probe"
    )
    s.add_argument(
        "--probe",
        action="store_true",
        help="ask each serial port for a HELLO (2 s each) to find stressrig boards",
    )


def run(args: argparse.Namespace) -> int:
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
            except Exception as e:  # noqa: BLE001 - a port that is no board: say so, go on
                line += f"  (no stressrig board: {type(e).__name__}: {e})"
        print(line)
    root = Path(__file__).resolve().parents[2] / "boards"
    boards = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    print("known boards (stressrig flash --board NAME):", ", ".join(boards) or "(none)")
    try:
        from host_sdk.emulator import list_scenarios

        print("emulated boards (--port emu://NAME):", ", ".join(list_scenarios()))
    except ImportError:
        pass
    return 0
