"""`python -m host_sdk.emulator --scenario NAME [--speed N] [--seed S] [--tcp PORT]`."""

import sys

from host_sdk.emulator.launcher import run_emulator_cli

if __name__ == "__main__":
    sys.exit(run_emulator_cli(sys.argv[1:]))
