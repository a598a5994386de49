"""`stressrig info`: a board's HELLO (ids, firmware, streams, limits) and STATUS."""

from __future__ import annotations

import argparse
import json
from typing import Any

from host_sdk.cli.common import add_command, open_rig


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "info",
        "Show a board's HELLO (ids, firmware, streams, limits) and STATUS.",
        "stressrig info --port /dev/ttyACM0",
    )
    s.add_argument("--port", required=True, help="the board (see PORT below)")
    s.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from host_sdk.recording.writer import hello_to_dict

    with open_rig(args.port) as rig:
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
