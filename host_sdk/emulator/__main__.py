"""`python -m host_sdk.emulator --scenario NAME [--speed N|max] [--cpu ideal|rp2040]
[--seed S] [--tcp PORT]` (the same as `stressrig emulate`)."""

import sys

from host_sdk.emulator.cli import run_emulator_cli

if __name__ == "__main__":
    sys.exit(run_emulator_cli(sys.argv[1:]))
