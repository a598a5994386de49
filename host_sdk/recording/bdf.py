"""Export to the Battery Data Format (BDF, Battery Data Alliance): one table, one row per
sample of the time base, columns "Quantity / Unit" in SI, plus a metadata sidecar.

    Test Time / s, Unix Time / s, Voltage / V, Current / A, Step Count / 1,
    Cycle Count / 1, Charging/Discharging/Net/Step Capacity / Ah,
    Applied Pressure / Pa (calibrated force over the stack area), Surface Temperature T1 /
    degC, and, named in BDF's style and declared in the sidecar: Stack Force / N,
    Bragg Wavelength <g> / nm, Strain <g> / 1, FBG Temperature Change / K.

Files: `<stem>.bdf.csv` or `<stem>.bdf.parquet`, and `<stem>.bdf.metadata.json` (the cell's
areas, the start time, board, calibration, outcome; custom columns under
battinfo_dataset.dataset.variable_measured). The time base is the electrical stream
(other streams are interpolated onto it, never across their gaps; see views.on_time_base).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from host_sdk.calibration import Calibration, si_channels
from host_sdk.recording.views import capacities_ah, on_time_base, step_and_cycle, time_base

__all__ = ["BDF_FORMATS", "bdf_table", "export_bdf"]

BDF_FORMATS = {"bdf": "csv", "bdf-csv": "csv", "bdf-parquet": "parquet"}

# columns outside BDF's list: declared in the sidecar, as its custom-measurement proposal asks
CUSTOM = {
    "Stack Force / N": "Force on the stack from the load cell (host calibration applied)",
    "FBG Temperature Change / K": "Temperature change seen by the strain-free reference FBG",
}


def _unix_start(rec: Any) -> float | None:
    if not getattr(rec, "start_known", False) or not rec.start_utc:
        return None
    try:
        return _dt.datetime.fromisoformat(rec.start_utc).timestamp()
    except ValueError:
        return None


def bdf_table(
    rec: Any, calibration: Calibration | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The BDF columns (in order) and the sidecar metadata of a loaded Recording."""
    ch = si_channels(rec, calibration)
    base, t = time_base(rec)
    cols: dict[str, np.ndarray] = {}
    notes = list(ch.get("notes", []))
    custom: dict[str, str] = {}
    if not t.size:
        notes.append("the recording holds no samples")
        return {"Test Time / s": t}, _sidecar(rec, ch, base, notes, custom)
    cols["Test Time / s"] = t - t[0]
    start = _unix_start(rec)
    if start is not None:
        cols["Unix Time / s"] = start + t

    def put(label: str, key: str) -> np.ndarray | None:
        if key not in ch:
            return None
        ts, v = ch[key]
        cols[label] = on_time_base(ts, v, t)
        return cols[label]

    put("Voltage / V", "voltage_v")
    current = put("Current / A", "current_a")
    step, cycle, t_step = step_and_cycle(rec, t)
    if np.any(step):
        cols["Step Count / 1"] = step
        cols["Cycle Count / 1"] = cycle
    if current is not None:
        cap = capacities_ah(t, current)
        cols["Charging Capacity / Ah"] = cap["charging"]
        cols["Discharging Capacity / Ah"] = cap["discharging"]
        cols["Net Capacity / Ah"] = cap["net"]
        if np.any(step):
            at_start = np.interp(t_step, t, cap["net"])
            cols["Step Capacity / Ah"] = cap["net"] - at_start
    if put("Applied Pressure / Pa", "pressure_pa") is None and "force_n" in ch:
        notes.append("no Applied Pressure column: " + "; ".join(ch.get("notes", [])))
    if put("Stack Force / N", "force_n") is not None:
        custom["Stack Force / N"] = CUSTOM["Stack Force / N"]
    put("Surface Temperature T1 / degC", "temperature_c")
    for g, (ts, lam) in (ch.get("wavelength_m") or {}).items():
        label = f"Bragg Wavelength {g} / nm"
        cols[label] = on_time_base(ts, lam * 1e9, t)
        custom[label] = f"Bragg wavelength of FBG {g} ({rec.grating_roles.get(g, 'role unknown')})"
    for g, (ts, eps) in (ch.get("strain") or {}).items():
        label = f"Strain {g} / 1"
        cols[label] = on_time_base(ts, eps, t)
        custom[label] = f"Strain at FBG {g} (p_e from the calibration; compensated when a "
        custom[label] += "reference grating is named)"
    if "fbg_delta_t_k" in ch:
        ts, dtk = ch["fbg_delta_t_k"]
        cols["FBG Temperature Change / K"] = on_time_base(ts, dtk, t)
        custom["FBG Temperature Change / K"] = CUSTOM["FBG Temperature Change / K"]
    return cols, _sidecar(rec, ch, base, notes, custom)


def _sidecar(
    rec: Any, ch: dict[str, Any], base: str, notes: list[str], custom: dict[str, str]
) -> dict[str, Any]:
    variables = []
    for label, text in custom.items():
        name, _, unit = label.rpartition(" / ")
        variables.append({"name": name, "unit_text": unit, "description": text})
    proto = rec.protocol or {}
    return {
        "battinfo_dataset": {
            "dataset": {
                "name": f"stressrig recording {rec.path.stem}",
                "description": str(proto.get("name") or "stressrig recording"),
                "variable_measured": variables,
            }
        },
        "stressrig": {
            "recording": str(rec.path),
            "board_id": rec.board_id,
            "unique_id": rec.unique_id,
            "firmware_version": rec.firmware_version,
            "sdk_version": rec.sdk_version,
            "start_utc": rec.start_utc if rec.start_known else None,
            "time_base": f"samples of the {base} stream; other streams interpolated onto it",
            "current_sign": "positive: out of the working electrode (stripping/discharge)",
            "electrode_area_m2": rec.cell.get("electrode_area_m2"),
            "stack_area_m2": ch.get("stack_area_m2"),
            "stack_area_source": ch.get("stack_area_source"),
            "cell_label": rec.cell.get("label"),
            "calibration": rec.calibration,
            "outcome": rec.outcome,
            "protocol": proto.get("name"),
            "lost_samples": rec.lost_samples(),
            "notes": notes,
        },
    }


def export_bdf(
    rec: Any, out_dir: str | Path, fmt: str = "bdf", calibration: Calibration | None = None
) -> list[Path]:
    """Write `<stem>.bdf.csv` (or .bdf.parquet) and `<stem>.bdf.metadata.json`."""
    from host_sdk.recording.export import write_csv, write_parquet

    kind = BDF_FORMATS.get(fmt)
    if kind is None:
        raise ValueError(f"BDF format {fmt!r}: use one of {', '.join(BDF_FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols, meta = bdf_table(rec, calibration)
    table = out / f"{rec.path.stem}.bdf.{kind}"
    (write_csv if kind == "csv" else write_parquet)(table, cols)
    side = out / f"{rec.path.stem}.bdf.metadata.json"
    side.write_text(json.dumps(meta, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return [table, side]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
