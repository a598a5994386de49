"""Where the emulated board lives, and its scenarios: the plant's hidden truth, one JSON file
each in boards/emulated/scenarios/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BOARD_DIR = ROOT / "boards" / "emulated"
SCENARIO_DIR = BOARD_DIR / "scenarios"


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def scenario_path(name: str) -> Path:
    """The file of a scenario given by name ("nak50_pulsed") or by path."""
    p = Path(name)
    return p if p.suffix else SCENARIO_DIR / f"{name}.json"


def load_scenario(name: str) -> dict[str, Any]:
    """A scenario dict (the plant's hidden truth) by name or path."""
    with open(scenario_path(name)) as f:
        data: dict[str, Any] = json.load(f)
    return data


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `changes` merged in, nested dicts merged key by key."""
    out = dict(base)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out
