"""`stressrig`: the bench command. One subcommand per job, one module each in this package;
`stressrig CMD --help` explains each with an example. Exit codes tell the truth about the
experiment (host_sdk.cli.common: 0 completed, 1 error, 2 bad input, 3 the board stopped
the run, 130 interrupted), and every error is one line on stderr."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import ModuleType
from typing import Any

from host_sdk.cli import (
    analyze,
    analyze_many,
    calibrate,
    demo,
    emulate,
    export,
    flash,
    fleet,
    info,
    ports,
    record,
    watch,
)
from host_sdk.cli.common import (
    EXIT_CODES_TEXT,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    Parser,
)
from host_sdk.cli.session import record_session

__all__ = ["build_parser", "main", "record_session"]

# command -> module with add_parsers(sub) and run(args)
MODULES: dict[str, ModuleType] = {
    "ports": ports,
    "emulate": emulate,
    "info": info,
    "record": record,
    "run": record,
    "calibrate": calibrate,
    "analyze": analyze,
    "export": export,
    "flash": flash,
    "demo": demo,
    "fleet": fleet,
    "watch": watch,
    "analyze-many": analyze_many,
}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="stressrig",
        description="Battery stress rig: control the board, record, analyse. "
        "Run `stressrig demo` for the whole path on an emulated board.",
        epilog="examples:\n  stressrig demo --out demo_out\n  stressrig ports\n"
        "  stressrig record --port emu://nak50_pulsed --duration 30 --out run.h5\n\n"
        + EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what the client does")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    added: set[int] = set()
    for module in MODULES.values():
        if id(module) not in added:
            module.add_parsers(sub)
            added.add(id(module))
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (the current off, the recording closed)."""


def _on_sigterm(_sig: int, _frame: Any) -> None:
    raise _Terminated("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulate"]:  # the emulator's own parser and help
        return emulate.run_emulate(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _on_sigterm)
    from host_sdk.calibration import CalibrationError
    from host_sdk.client import RigError
    from host_sdk.protocols import ProtocolError
    from host_sdk.recording import RecordingError
    from host_sdk.transport import PortInUse, PortNotFound

    prog = f"stressrig {args.command}"
    try:
        return int(MODULES[args.command].run(args))
    except CliError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return e.code
    except (ProtocolError, PortNotFound, RecordingError, CalibrationError) as e:
        # the input named on the command line is wrong: a file, a port, a URL
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (RigError, PortInUse) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except _Terminated:
        print(f"{prog}: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
