"""The `derate` table of a current step (host_sdk/derate.py, firmware/loops/derate.py):

    derate = { limit_mpa_per_s = 0.05, resume_mpa_per_s = 0.02, scale = 0.5, window_n = 16 }

While the stack pressure changes faster than `limit_mpa_per_s` (either way) the board runs
the step's current at `scale` of its amplitude, back to full below `resume_mpa_per_s`
(default half the limit). `window_n` load readings make the rate estimate (default 16; its
delay is about (window_n - 1) / 2 readings). Needs the [cell] stack area. With
`signal = "strain"` the FBG strain rate is judged instead (limits in µε/s;
host_sdk/protocols/strain_schema.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from host_sdk.protocols.strain_schema import DERATE_STRAIN_FIELDS, check_derate_strain

DERATE_FIELDS = ("limit_mpa_per_s", "resume_mpa_per_s", "scale", "window_n")
DERATE_KINDS = ("constant", "pulse_train", "gitt", "staircase", "adaptive_pulses")
# name: (lo, hi, lo inclusive, unit, integer), as schema_fields.RANGES
DERATE_RANGES: dict[str, tuple[float, float, bool, str, bool]] = {
    "limit_mpa_per_s": (0.0, 1000.0, False, "MPa/s", False),
    "resume_mpa_per_s": (0.0, 1000.0, True, "MPa/s", False),
    "scale": (0.0, 1.0, True, "", False),
    "window_n": (3, 64, True, "readings", True),
}


class _Checker(Protocol):
    def err(self, path: str, msg: str) -> None: ...
    def number(self, path: str, name: str, value: Any) -> float | None: ...
    def unknown(self, path: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None: ...


def check_derate(c: _Checker, path: str, table: Any, kind: str) -> dict[str, Any]:
    """Validated derate parameters (errors go to the checker, naming field and range)."""
    if kind not in DERATE_KINDS:
        c.err(path, f"only on current steps ({', '.join(DERATE_KINDS)}), not on {kind}")
        return {}
    if not isinstance(table, Mapping):
        c.err(path, "must be a table like { limit_mpa_per_s = 0.05, scale = 0.5 }")
        return {}
    c.unknown(path, table, DERATE_FIELDS + DERATE_STRAIN_FIELDS)
    out: dict[str, Any] = {"scale": 0.5, "window_n": 16}
    signal = table.get("signal", "pressure")
    if signal not in ("pressure", "strain"):
        c.err(f"{path}.signal", f"{signal!r}; allowed: pressure, strain")
    for k in ("scale", "window_n"):
        if k in table:
            v = c.number(f"{path}.{k}", k, table[k])
            if v is not None:
                out[k] = int(v) if k == "window_n" else v
    if out["scale"] >= 1.0:
        c.err(f"{path}.scale", f"{out['scale']:g}; allowed: 0 <= scale < 1 (a derating)")
    if signal == "strain":
        check_derate_strain(c, path, table, out)
        return out
    for k in DERATE_STRAIN_FIELDS[1:]:
        if k in table:
            c.err(f"{path}.{k}", 'only with signal = "strain"')
    if "limit_mpa_per_s" not in table:
        c.err(f"{path}.limit_mpa_per_s", "missing (required in derate)")
    for k in ("limit_mpa_per_s", "resume_mpa_per_s"):
        if k in table:
            v = c.number(f"{path}.{k}", k, table[k])
            if v is not None:
                out[k] = v
    lim = out.get("limit_mpa_per_s")
    if lim is not None:
        out.setdefault("resume_mpa_per_s", lim / 2)
        if out["resume_mpa_per_s"] >= lim:
            c.err(
                f"{path}.resume_mpa_per_s",
                f"{out['resume_mpa_per_s']:g} MPa/s; allowed: below limit_mpa_per_s = {lim:g}",
            )
    return out
