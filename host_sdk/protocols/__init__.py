"""Experiment protocol files (TOML): schema and validation, and running them on a rig."""

from host_sdk.protocols.outcome import BOARD_STOPS, CAUSE_TEXT, Outcome
from host_sdk.protocols.runner import RunResult, StepResult, check_against_board, run_protocol
from host_sdk.protocols.schema import (
    STEP_KINDS,
    Protocol,
    ProtocolError,
    Step,
    load_protocol,
    parse_protocol,
    stack_area_of,
)

__all__ = [
    "BOARD_STOPS",
    "CAUSE_TEXT",
    "Outcome",
    "STEP_KINDS",
    "Protocol",
    "ProtocolError",
    "RunResult",
    "Step",
    "StepResult",
    "check_against_board",
    "load_protocol",
    "parse_protocol",
    "run_protocol",
    "stack_area_of",
]
