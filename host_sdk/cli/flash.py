"""`stressrig flash`: build the firmware for a board and copy it with mpremote."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from host_sdk.cli.common import add_command


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "flash",
        "Build the firmware for a board and copy it with mpremote.",
        "stressrig flash --port /dev/ttyACM0 --board rp2040_pico",
    )
    s.add_argument("--port", required=True, help="the board (see PORT below)")
    s.add_argument("--board", required=True, help="board name (a folder of boards/)")
    s.add_argument("--dry-run", action="store_true", help="print the commands only")


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


def run(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2]
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
                return 1
    return 0
