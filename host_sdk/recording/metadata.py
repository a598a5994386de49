"""What a recording says about itself besides the samples: versions, the HELLO as JSON,
the calibration's numbers one by one, the FBG gratings' roles."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "calibration_attrs",
    "grating_roles",
    "hello_to_dict",
    "iso_utc",
    "now_iso",
    "sdk_version",
    "set_attrs",
    "to_json",
]


def sdk_version() -> str:
    try:
        return metadata.version("stressrig")
    except metadata.PackageNotFoundError:
        return "unknown"


def hello_to_dict(hello: Any) -> dict[str, Any]:
    """JSON-able dict of a wire.Hello (or a dict already)."""
    if isinstance(hello, Mapping):
        return dict(hello)
    d = dataclasses.asdict(hello)
    d["limits"] = dict(hello.limits)
    d["firmware_version"] = list(hello.firmware_version)
    return d


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default)


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def iso_utc(t_unix: float) -> str:
    return _dt.datetime.fromtimestamp(t_unix, _dt.UTC).isoformat()


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


def set_attrs(obj: Any, attrs: Mapping[str, Any]) -> None:
    for k, v in attrs.items():
        if v is None:
            continue
        obj.attrs[k] = v if isinstance(v, str | int | float | bool | np.generic) else to_json(v)


def calibration_attrs(cal: Mapping[str, Any]) -> dict[str, Any]:
    """The calibration's numbers one by one (and whole as JSON)."""
    out: dict[str, Any] = {"json": to_json(dict(cal))}
    lc = cal.get("load_cell") or {}
    if lc:
        out["load_cell_tare_counts"] = float(lc["tare_counts"])
        out["load_cell_span_n_per_count"] = float(lc["span_n_per_count"])
        out["load_cell_rms_residual_n"] = float(lc.get("rms_residual_n", 0.0))
        out["load_cell_formula"] = "force_N = (counts - tare_counts) * span_n_per_count"
    for key in ("stack_area_m2", "electrode_area_m2", "created_utc", "unique_id"):
        if cal.get(key) not in (None, ""):
            out[key] = cal[key]
    fb = cal.get("fbg") or {}
    if fb:
        out["fbg_reference_grating"] = str(fb.get("reference_grating") or "")
        for g, lam in (fb.get("reference_wavelengths_m") or {}).items():
            out[f"fbg_lambda0_m_{g}"] = float(lam)
    return out


def grating_roles(
    stream: Any, calibration: Mapping[str, Any] | None, reference: str | None
) -> dict[str, str]:
    """Role of each FBG field: "reference" (strain-free, temperature only) or "sensing"."""
    fb = (calibration or {}).get("fbg") or {}
    ref = reference or fb.get("reference_grating")
    names = [f.name for f in stream.fields if f.unit in ("nm", "m", "pm")]
    if not ref:
        return dict.fromkeys(names, "unknown")
    return {n: ("reference" if n == ref else "sensing") for n in names}
