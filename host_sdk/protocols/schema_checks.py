"""The checker's basics: collect every error (as `path: message`) instead of stopping at
the first, check a number against its field's range, flag unknown fields, and check the
tables shared by the file and its steps (streams, cutoff)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from host_sdk.protocols.schema_fields import CUTOFF_FIELDS, RANGES, STREAM_NAMES, range_text

__all__ = ["Checker"]


class Checker:
    """Collects the errors of one file; the schema_* check functions report through it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.blocks: dict[str, dict[str, float]] = {}  # repeat/for_each path -> its until

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def number(self, path: str, name: str, value: Any) -> float | None:
        lo, hi, lo_incl, _unit, integer = RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.err(path, f"{value!r} is not a number; allowed: {range_text(name)}")
            return None
        if integer and not (isinstance(value, int) or float(value).is_integer()):
            self.err(path, f"{value!r} is not an integer; allowed: {range_text(name)}")
            return None
        v = float(value)
        ok = (v >= lo if lo_incl else v > lo) and v <= hi and math.isfinite(v)
        if not ok:
            self.err(path, f"{value!r} is out of range; allowed: {range_text(name)}")
            return None
        return v

    def unknown(self, path: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                self.err(
                    f"{path}.{key}" if path else key,
                    f"unknown field; allowed here: {', '.join(allowed)}",
                )

    def streams(self, path: str, table: Any) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if not isinstance(table, Mapping):
            self.err(path, f"{table!r} must be a table of streams ({', '.join(STREAM_NAMES)})")
            return out
        for name, cfg in table.items():
            p = f"{path}.{name}"
            if name not in STREAM_NAMES:
                self.err(p, f"unknown stream; allowed: {', '.join(STREAM_NAMES)}")
                continue
            if not isinstance(cfg, Mapping):
                self.err(p, "must be a table like { rate_hz = 100, enabled = true }")
                continue
            self.unknown(p, cfg, ("rate_hz", "enabled"))
            if "rate_hz" in cfg:
                self.number(f"{p}.rate_hz", "rate_hz", cfg["rate_hz"])
            if "enabled" in cfg and not isinstance(cfg["enabled"], bool):
                self.err(f"{p}.enabled", f"{cfg['enabled']!r} must be true or false")
            out[name] = dict(cfg)
        return out

    def cutoff(self, path: str, table: Any) -> None:
        if not isinstance(table, Mapping):
            self.err(path, "must be a table like { v_max_v = 3.0 }")
            return
        self.unknown(path, table, CUTOFF_FIELDS)
        vals = {k: self.number(f"{path}.{k}", k, v) for k, v in table.items() if k in RANGES}
        lo, hi = vals.get("v_min_v"), vals.get("v_max_v")
        if lo is not None and hi is not None and lo >= hi:
            self.err(path, f"v_min_v = {lo:g} must be below v_max_v = {hi:g}")
