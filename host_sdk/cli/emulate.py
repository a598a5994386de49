"""`stressrig emulate`: the emulator's own command line (host_sdk.emulator.cli: its --help
has the examples and every option), with its inputs checked here first."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from host_sdk.cli.common import EXIT_USAGE

SUMMARY = "Run an emulated board behind a pty (and optionally TCP)."


def add_parsers(sub: Any) -> None:
    # listed in `stressrig --help`; `stressrig emulate ...` itself goes to the emulator's
    # parser (main() passes it through), so its help is not written twice
    sub.add_parser("emulate", help=SUMMARY + " (stressrig emulate --help for its options)")


def run_emulate(argv: list[str]) -> int:
    from host_sdk.emulator import list_scenarios, run_emulator_cli
    from host_sdk.emulator.cli import build_parser

    parser = build_parser()

    def one_line(message: str) -> NoReturn:
        parser.exit(EXIT_USAGE, f"stressrig emulate: {message} (see stressrig emulate --help)\n")

    parser.error = one_line  # type: ignore[method-assign]
    ns = parser.parse_args([a for a in argv if a != "--"])
    if not getattr(ns, "list", False):
        name = str(ns.scenario)
        if name not in list_scenarios() and not os.path.isfile(name):
            one_line(
                f"--scenario {name}: no such scenario; allowed: {', '.join(list_scenarios())} "
                "(or a scenario JSON file)"
            )
    try:
        return int(run_emulator_cli(ns) or 0)
    except (OSError, RuntimeError, ValueError) as e:
        print(f"stressrig emulate: the emulated board did not start: {e}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:  # pragma: no cover - main() passes it through
    return run_emulate(sys.argv[2:])
