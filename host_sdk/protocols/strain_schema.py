"""FBG strain-rate criteria in protocol files (host_sdk/strain_rate.py): the `strain` table of
an adaptive rest's `settle`, and the strain fields of a `derate` table.

    settle = { dvdt_v_per_s = 1e-4, max_s = 600, hold_s = 5,
               strain = { dedt_ue_per_s = 0.05, combine = "both", grating = "g0",
                          reference = "g1", window_s = 10 } }
    derate = { signal = "strain", limit_ue_per_s = 5, resume_ue_per_s = 2, scale = 0.5 }

`combine`: "both" (default: the rest ends once |dV/dt| and |dε/dt| both held), "either" or
"strain_only". `grating` (default g0) and `reference` (a strain-free grating for temperature
compensation; default the protocol's [fbg] reference_grating, else none; "none": none) by
FBG field name or index. `pm_per_ue` is the grating's
sensitivity (default: the board calibration's). The board refuses what it cannot time or
hold, naming the field and range; these checks catch it before a run starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from host_sdk.strain_rate import COMBINE, grating_index

STRAIN_SETTLE_FIELDS = ("dedt_ue_per_s", "combine", "grating", "reference", "pm_per_ue", "window_s")
DERATE_STRAIN_FIELDS = (
    "signal",
    "limit_ue_per_s",
    "resume_ue_per_s",
    "grating",
    "reference",
    "pm_per_ue",
)
# name: (lo, hi, lo inclusive, unit, integer), as schema_fields.RANGES
STRAIN_RANGES: dict[str, tuple[float, float, bool, str, bool]] = {
    "dedt_ue_per_s": (0.0, 1e4, False, "µε/s", False),
    "limit_ue_per_s": (0.0, 1e5, False, "µε/s", False),
    "resume_ue_per_s": (0.0, 1e5, True, "µε/s", False),
    "pm_per_ue": (0.1, 10.0, True, "pm/µε", False),
}


class _Checker(Protocol):
    def err(self, path: str, msg: str) -> None: ...
    def number(self, path: str, name: str, value: Any) -> float | None: ...
    def unknown(self, path: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None: ...


def _gratings(c: _Checker, path: str, table: Mapping[str, Any], out: dict[str, Any]) -> None:
    for k in ("grating", "reference"):
        if k in table:
            try:
                grating_index(table[k], k)
            except ValueError as e:
                c.err(f"{path}.{k}", str(e))
            else:
                out[k] = table[k]
    if "grating" in out and "reference" in out:
        if grating_index(out["grating"]) == grating_index(out["reference"]):
            c.err(f"{path}.reference", "is the sensing grating; name a strain-free one")


def _numbers(c: _Checker, path: str, table: Mapping[str, Any], out: dict[str, Any]) -> None:
    for k in ("dedt_ue_per_s", "limit_ue_per_s", "resume_ue_per_s", "pm_per_ue", "window_s"):
        if k in table:
            v = c.number(f"{path}.{k}", k, table[k])
            if v is not None:
                out[k] = v


def default_reference(params: dict[str, Any], ref: str) -> None:
    """A step's strain criteria without a `reference` use the protocol's [fbg]
    reference_grating (unless that is their sensing grating)."""
    tables = [(params.get("settle") or {}).get("strain")]
    dr = params.get("derate")
    if dr and dr.get("signal") == "strain":
        tables.append(dr)
    for t in tables:
        if t and "reference" not in t:
            try:
                same = grating_index(t.get("grating", 0)) == grating_index(ref, "reference")
            except ValueError:
                continue
            if not same:
                t["reference"] = ref


def check_strain_settle(c: _Checker, path: str, table: Any) -> dict[str, Any]:
    """The `strain` table of a settle: dedt_ue_per_s required."""
    if not isinstance(table, Mapping):
        c.err(path, 'must be a table like { dedt_ue_per_s = 0.05, reference = "g1" }')
        return {}
    c.unknown(path, table, STRAIN_SETTLE_FIELDS)
    if "dedt_ue_per_s" not in table:
        c.err(f"{path}.dedt_ue_per_s", "missing (required in settle.strain)")
    out: dict[str, Any] = {"combine": str(table.get("combine", "both"))}
    if out["combine"] not in COMBINE:
        c.err(f"{path}.combine", f"{table['combine']!r}; allowed: {', '.join(COMBINE)}")
    _numbers(c, path, table, out)
    _gratings(c, path, table, out)
    return out


def check_derate_strain(
    c: _Checker, path: str, table: Mapping[str, Any], out: dict[str, Any]
) -> None:
    """A derate table with signal = "strain": limit_ue_per_s required, resume_ue_per_s
    (default half of it) below it; no pressure limits."""
    out["signal"] = "strain"
    for k in ("limit_mpa_per_s", "resume_mpa_per_s"):
        if k in table:
            c.err(f"{path}.{k}", 'not with signal = "strain" (its limits are limit_ue_per_s ...)')
    if "limit_ue_per_s" not in table:
        c.err(f"{path}.limit_ue_per_s", 'missing (required with signal = "strain")')
    _numbers(c, path, table, out)
    _gratings(c, path, table, out)
    lim = out.get("limit_ue_per_s")
    if lim is not None:
        out.setdefault("resume_ue_per_s", lim / 2)
        if out["resume_ue_per_s"] >= lim:
            c.err(
                f"{path}.resume_ue_per_s",
                f"{out['resume_ue_per_s']:g} µε/s; allowed: below limit_ue_per_s = {lim:g}",
            )
