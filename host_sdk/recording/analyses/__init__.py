"""Per-step analyses of a recording, one module per kind of experiment. Each is
`analyze(ctx, report)`: it looks at the steps it applies to, adds numbers and figures to
the report, and refuses with a reason what it cannot do on these data."""

from __future__ import annotations

from collections.abc import Callable

from . import fbg, galvanostatic, gitt, press_hold, rests, staircase, stripping
from .common import Context, Report

ANALYSES: list[tuple[str, Callable[[Context, Report], None]]] = [
    ("pulsed stripping", stripping.analyze),
    ("adaptive rests", rests.analyze),
    ("staircase", staircase.analyze),
    ("gitt", gitt.analyze),
    ("pressure vs normalized capacity", galvanostatic.analyze),
    ("pressure held vs open loop", press_hold.analyze),
    ("fbg", fbg.analyze),
]

__all__ = [
    "ANALYSES",
    "Context",
    "Report",
    "fbg",
    "galvanostatic",
    "gitt",
    "press_hold",
    "rests",
    "staircase",
    "stripping",
]
