"""Calibrations applied on the host: raw counts in the recording, SI out.

A `Calibration` holds the load-cell tare and span (from known loads), the cell area, and
the FBG reference wavelengths (strain-free, at the reference temperature). It is saved as
JSON, stored in each recording's metadata, and can be swapped later to re-analyse a
recording. Without one, the scale/offset/unit the board announced in its HELLO is used.

`si_channels(recording, calibration)` returns the SI time series the analysis needs:
force_n, pressure_pa, voltage_v, current_a, temperature_c, wavelength_m[<grating>],
strain (reference-compensated when a reference grating is named).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Calibration",
    "FbgCalibration",
    "LoadCellCalibration",
    "fit_load_cell",
    "mean_of_field",
    "si_channels",
]

P_E = 0.22  # effective photo-elastic coefficient of silica fibre
THERMAL_PER_K = 7.25e-6  # α + ξ of a bare silica FBG (DOMAIN.md: 11.24 pm/K at 1550 nm)


@dataclass
class LoadCellCalibration:
    """F = (counts − tare_counts) · span_n_per_count."""

    tare_counts: float
    span_n_per_count: float
    points: list[tuple[float, float]] = field(default_factory=list)  # (counts, load_n)
    rms_residual_n: float = 0.0

    def force_n(self, counts: np.ndarray) -> np.ndarray:
        return (np.asarray(counts, dtype=np.float64) - self.tare_counts) * self.span_n_per_count


@dataclass
class FbgCalibration:
    """Strain-free reference wavelength per grating field, and the optical constants."""

    reference_wavelengths_m: dict[str, float]
    reference_grating: str | None = None  # a strain-free grating used for temperature
    p_e: float = P_E
    thermal_per_k: float = THERMAL_PER_K


@dataclass
class Calibration:
    load_cell: LoadCellCalibration | None = None
    fbg: FbgCalibration | None = None
    area_m2: float | None = None
    unique_id: str = ""
    created_utc: str = ""
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Calibration:
        d = dict(d or {})
        lc = d.get("load_cell")
        fb = d.get("fbg")
        return cls(
            load_cell=LoadCellCalibration(
                float(lc["tare_counts"]),
                float(lc["span_n_per_count"]),
                [tuple(p) for p in lc.get("points", [])],  # type: ignore[misc]
                float(lc.get("rms_residual_n", 0.0)),
            )
            if lc
            else None,
            fbg=FbgCalibration(
                {k: float(v) for k, v in fb["reference_wavelengths_m"].items()},
                fb.get("reference_grating"),
                float(fb.get("p_e", P_E)),
                float(fb.get("thermal_per_k", THERMAL_PER_K)),
            )
            if fb
            else None,
            area_m2=float(d["area_m2"]) if d.get("area_m2") is not None else None,
            unique_id=str(d.get("unique_id", "")),
            created_utc=str(d.get("created_utc", "")),
            notes=str(d.get("notes", "")),
        )

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def fit_load_cell(counts: list[float], loads_n: list[float]) -> LoadCellCalibration:
    """Least-squares tare and span from mean readings at known loads (≥ 2 points)."""
    x = np.asarray(counts, dtype=np.float64)
    f = np.asarray(loads_n, dtype=np.float64)
    if x.size < 2 or x.size != f.size:
        raise ValueError("need at least two (counts, load) points, e.g. 0 N and a known weight")
    if np.ptp(x) == 0:
        raise ValueError("all readings are equal: is the load cell connected?")
    span, off = np.polyfit(x, f, 1)
    tare = -off / span
    res = (x - tare) * span - f
    return LoadCellCalibration(
        float(tare),
        float(span),
        [(float(a), float(b)) for a, b in zip(x, f, strict=True)],
        float(np.sqrt(np.mean(res**2))),
    )


def mean_of_field(rig: Any, stream: str, field_name: str, duration_s: float) -> float:
    """Mean raw value of one field over `duration_s` of device time (rig must stream)."""
    values: list[np.ndarray] = []
    t_start: float | None = None
    deadline = time.monotonic() + duration_s * 10 + 10
    for block in rig.blocks(timeout_s=5.0):
        if block.stream != stream:
            continue
        if t_start is None:
            t_start = float(block.t_s[0])
        values.append(np.asarray(block.records[field_name], dtype=np.float64))
        if float(block.t_s[-1]) - t_start >= duration_s or time.monotonic() > deadline:
            break
    if not values:
        raise TimeoutError(f"no {stream} samples arrived; is the stream enabled?")
    return float(np.mean(np.concatenate(values)))


# ---- applying calibrations to a recording ------------------------------------------------
def _field_by_unit(stream: Any, units: tuple[str, ...]) -> list[dict[str, Any]]:
    return [f for f in stream.fields if f["unit"] in units and f["name"] != "t_us"]


def si_channels(rec: Any, cal: Calibration | None = None) -> dict[str, Any]:
    """SI time series of a loaded Recording: {name: (t_s, values)} and `wavelength_m`
    {grating: (t_s, m)}. Uses `cal` (or the recording's stored calibration) first, then
    the scale/offset of the HELLO."""
    if cal is None:
        cal = Calibration.from_dict(rec.calibration) if rec.calibration else Calibration()
    out: dict[str, Any] = {}
    area = cal.area_m2
    if area is None and rec.protocol and isinstance(rec.protocol.get("file"), dict):
        area = rec.protocol["file"].get("cell", {}).get("area_m2")
    load = rec.streams.get("load")
    if load is not None and len(load):
        force: np.ndarray | None
        if cal.load_cell is not None:
            force = cal.load_cell.force_n(load.records["counts"])
        else:
            fs = _field_by_unit(load, ("N",))
            force = load.physical(fs[0]["name"]) if fs else None
        if force is not None:
            out["force_n"] = (load.t_s, force)
            if area:
                out["pressure_pa"] = (load.t_s, force / float(area))
    elec = rec.streams.get("elec")
    if elec is not None and len(elec):
        for unit, name in (("V", "voltage_v"), ("A", "current_a")):
            fs = _field_by_unit(elec, (unit,))
            if fs:
                out[name] = (elec.t_s, elec.physical(fs[0]["name"]))
    temp = rec.streams.get("temp")
    if temp is not None and len(temp):
        fs = _field_by_unit(temp, ("degC",))
        if fs:
            out["temperature_c"] = (temp.t_s, temp.physical(fs[0]["name"]))
    fbg = rec.streams.get("fbg")
    if fbg is not None and len(fbg):
        waves: dict[str, np.ndarray] = {}
        for f in _field_by_unit(fbg, ("nm", "m", "pm")):
            k = {"nm": 1e-9, "m": 1.0, "pm": 1e-12}[f["unit"]]
            waves[f["name"]] = fbg.physical(f["name"]) * k
        if waves:
            out["wavelength_m"] = {g: (fbg.t_s, w) for g, w in waves.items()}
            fc = cal.fbg
            lam0 = (fc.reference_wavelengths_m if fc else {}) or {
                g: float(np.median(w[: max(1, min(len(w), 20))])) for g, w in waves.items()
            }
            p_e = fc.p_e if fc else P_E
            ref = fc.reference_grating if fc else None
            rel = {g: (w - lam0[g]) / lam0[g] for g, w in waves.items() if g in lam0}
            strains = {}
            for g, r in rel.items():
                if g == ref:
                    continue
                comp = r - rel[ref] if ref in rel else r
                strains[g] = (fbg.t_s, comp / (1.0 - p_e))
            out["strain"] = strains
            if ref in rel:
                thermal = fc.thermal_per_k if fc else THERMAL_PER_K
                out["fbg_delta_t_k"] = (fbg.t_s, rel[ref] / thermal)
    return out
