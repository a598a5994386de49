"""Compatibility: the names the single-module launcher used to define, now in their modules
(scenarios, board_process, ledger, link_faults, outbox, host_ports, proxy, emulator, cli)."""

from host_sdk.emulator.board_process import (
    BOARD_HEAP,
    DEFAULT_HEAP,
    PLANT_HEAP_BYTES,
    RESET_EXIT_CODE,
)
from host_sdk.emulator.cli import build_parser, run_emulator_cli
from host_sdk.emulator.emulator import Emulator, start_emulator, start_emulator_from_url
from host_sdk.emulator.ledger import FrameRecord, LinkLedger
from host_sdk.emulator.scenarios import (
    BOARD_DIR,
    ROOT,
    SCENARIO_DIR,
    deep_merge,
    list_scenarios,
    load_scenario,
)

__all__ = [
    "BOARD_DIR",
    "BOARD_HEAP",
    "DEFAULT_HEAP",
    "PLANT_HEAP_BYTES",
    "RESET_EXIT_CODE",
    "ROOT",
    "SCENARIO_DIR",
    "Emulator",
    "FrameRecord",
    "LinkLedger",
    "build_parser",
    "deep_merge",
    "list_scenarios",
    "load_scenario",
    "run_emulator_cli",
    "start_emulator",
    "start_emulator_from_url",
]
