"""`stressrig watch`: a live web page of one rig (through the SDK) or of whole fleets
(through MQTT): voltage, current, stack pressure, strain, temperature, lost samples."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from host_sdk.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    add_command,
    area_m2,
    parse_streams,
)

MORE = """\
Two sources:
  --port PORT        one rig, opened here (it streams; watching sends no waveform and no
                     STOP, so it never changes a run). The port must be free: a rig run by
                     `stressrig fleet run` is watched through MQTT, or with its --dashboard.
  --mqtt HOST[:PORT] every rig a supervisor publishes to that broker (--fleet NAME: one
                     fleet). A supervisor that dies turns its rigs red (MQTT last will).
The page binds 127.0.0.1 (--bind to change; it is read-only). Open the printed URL.
Ctrl-C (or --duration) ends it with exit code 0; 1 when the rig or broker cannot be
reached, 2 for a bad port or option."""


def add_parsers(sub: Any) -> None:
    s = add_command(
        sub,
        "watch",
        "Serve a live dashboard (web page) of one rig or of fleets over MQTT.",
        "stressrig watch --port emu://nak50_pulsed?speed=1 --http 8765\n"
        "  stressrig watch --mqtt 127.0.0.1:1883 --fleet lab3",
        more=MORE,
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="watch this rig through the SDK (see PORT below)")
    src.add_argument("--mqtt", metavar="HOST[:PORT]", help="watch fleets through this broker")
    s.add_argument("--fleet", default=None, help="with --mqtt: only this fleet")
    s.add_argument("--username", default="", help="with --mqtt: broker user name")
    s.add_argument("--password-file", default="", help="with --mqtt: file holding the password")
    s.add_argument("--tls-ca", default="", help="with --mqtt: CA file for TLS to the broker")
    s.add_argument(
        "--streams",
        default=None,
        metavar="NAME:HZ,...",
        help="with --port: streams and rates, e.g. elec:50,load:10 (default: the board's)",
    )
    s.add_argument(
        "--stack-area-m2",
        type=area_m2,
        default=None,
        metavar="A",
        help="with --port: pressed area, for stack pressure in MPa (else force in N)",
    )
    s.add_argument(
        "--http",
        type=int,
        default=8765,
        metavar="PORT",
        help="web page port (default 8765; 0: any free port)",
    )
    s.add_argument("--bind", default="127.0.0.1", help="web page address (default 127.0.0.1)")
    s.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S wall seconds (default: until Ctrl-C)",
    )


def _mqtt_config(args: argparse.Namespace) -> Any:
    from host_sdk.fleet.config import MqttConfig

    host, _, port = str(args.mqtt).rpartition(":") if ":" in args.mqtt else (args.mqtt, "", "")
    try:
        port_n = int(port) if port else 1883
    except ValueError:
        raise CliError(f"--mqtt {args.mqtt}: give HOST or HOST:PORT, e.g. 127.0.0.1:1883") from None
    return MqttConfig(
        host=host or "127.0.0.1",
        port=port_n,
        username=args.username,
        password_file=args.password_file,
        tls_ca=args.tls_ca,
    )


def run(args: argparse.Namespace) -> int:
    from host_sdk.fleet.dashboard import DashboardServer
    from host_sdk.fleet.hub import FleetHub

    prog = "stressrig watch"
    hub = FleetHub(args.fleet or ("mqtt" if args.mqtt else "rig"))
    source: Any
    if args.mqtt:
        from host_sdk.fleet.mqtt import MqttFeed, MqttUnavailable

        try:
            source = MqttFeed(_mqtt_config(args), hub, args.fleet)
        except MqttUnavailable as e:
            raise CliError(str(e), EXIT_ERROR) from None
        what = f"MQTT {args.mqtt}" + (f", fleet {args.fleet}" if args.fleet else ", all fleets")
    else:
        from host_sdk.fleet.monitor import RigMonitor

        source = RigMonitor(
            args.port, hub, streams=parse_streams(args.streams), stack_area_m2=args.stack_area_m2
        )
        what = source.rig.describe()
    try:
        dash = DashboardServer(hub, host=args.bind, port=args.http)
    except OSError as e:
        source.close()
        raise CliError(f"--http {args.http}: cannot serve the page ({e}); try --http 0") from None
    print(dash.url, flush=True)
    print(f"{prog}: {what}; open {dash.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    code = EXIT_OK
    t_end = None if args.duration is None else time.monotonic() + args.duration
    try:
        while t_end is None or time.monotonic() < t_end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: nothing was cut short, exit 0
    finally:
        dash.close()
        source.close()
    return code
