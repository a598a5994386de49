"""Calibrations applied on the host: raw counts in the recording, SI out.

A `Calibration` holds the load-cell tare and span (from known loads), the cell's areas, and
the FBG reference wavelengths (strain-free, at the reference temperature). It is saved as
JSON, stored in each recording, and can be swapped later to re-analyse a recording. Without
one, the scale/offset/unit the board announced in its HELLO (its nominal calibration) is used.

Two areas, never mixed up: `electrode_area_m2` (what currents in A/m² and capacities per
area refer to) and `stack_area_m2`, the pressed area the load cell's force acts on (a 9 mm
die: 6.362e-5 m²). Stack pressure = force / stack_area_m2; without a stack area there is
no pressure, only force (and the analysis says so).

`si_channels(recording, calibration)` returns the SI time series the analysis needs:
force_n, pressure_pa, voltage_v, current_a, temperature_c, wavelength_m[<grating>],
strain (reference-compensated when a reference grating is named).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Calibration",
    "CalibrationError",
    "emulated_press_loads",
    "FbgCalibration",
    "LoadCellCalibration",
    "fit_load_cell",
    "mean_of_field",
    "measure_known_loads",
    "nominal_span",
    "si_channels",
    "stack_area",
]

P_E = 0.22  # effective photo-elastic coefficient of silica fibre
THERMAL_PER_K = 7.25e-6  # α + ξ of a bare silica FBG (DOMAIN.md: 11.24 pm/K at 1550 nm)
G_M_S2 = 9.80665
SPAN_TOLERANCE = 0.25  # a fitted span further than this from the board's nominal is refused
LOAD_STATUS_BAD = 0x03  # LOAD_GLITCH | LOAD_NOT_READY: not a reading of the load
# ... and a reading at the ADC's full scale (LOAD_SATURATED, wire protocol 2) is a bound,
# not the load: the analysis leaves all three out
LOAD_STATUS_NOT_THE_LOAD = LOAD_STATUS_BAD | 0x04


class CalibrationError(ValueError):
    """Calibration points that cannot give a trustworthy calibration; says why."""


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
    stack_area_m2: float | None = None  # pressed area: stack pressure = force / this
    unique_id: str = ""
    created_utc: str = ""
    notes: str = ""
    electrode_area_m2: float | None = None  # for the record; currents per area use it

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
            stack_area_m2=_opt_float(d.get("stack_area_m2")),
            unique_id=str(d.get("unique_id", "")),
            created_utc=str(d.get("created_utc", "")),
            notes=str(d.get("notes", "")),
            # files before the two areas were told apart had one "area_m2", which the demo
            # filled with the electrode area: never use it for pressure
            electrode_area_m2=_opt_float(d.get("electrode_area_m2", d.get("area_m2"))),
        )

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration JSON; CalibrationError (a ValueError) says what is wrong."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"calibration {p}: no such file") from None
        except OSError as e:
            raise CalibrationError(f"calibration {p}: cannot read it ({e})") from None
        except ValueError as e:
            raise CalibrationError(
                f"calibration {p}: not JSON ({e}); give a file written by stressrig calibrate"
            ) from None
        if not isinstance(data, dict):
            raise CalibrationError(f"calibration {p}: a JSON object is needed, not {data!r:.40}")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"calibration {p}: field {e} is missing or wrong") from None


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def nominal_span(hello: Any) -> float | None:
    """The board's nominal load-cell span (N/count): the scale of its load `counts` field."""
    streams = getattr(hello, "streams", None)
    if streams is None and isinstance(hello, dict):
        streams = hello.get("streams", [])
    for s in streams or ():
        name = s["name"] if isinstance(s, dict) else s.name
        if name != "load":
            continue
        for f in s["fields"] if isinstance(s, dict) else s.fields:
            fname, unit, scale = (
                (f["name"], f["unit"], f["scale"])
                if isinstance(f, dict)
                else (f.name, f.unit, f.scale)
            )
            if fname == "counts" and unit == "N" and float(scale) != 1.0:
                return float(scale)
    return None


def fit_load_cell(
    counts: list[float],
    loads_n: list[float],
    *,
    nominal_n_per_count: float | None = None,
    span_tolerance: float = SPAN_TOLERANCE,
) -> LoadCellCalibration:
    """Least-squares tare and span from mean readings at known loads (≥ 2 loads).

    Refuses (CalibrationError) points that cannot calibrate: fewer than two different
    loads, readings that do not move with the load, readings that do not lie on a line,
    or a span more than `span_tolerance` (relative) from the board's nominal one (when
    given): the loads were not on the cell, or it is another cell than the board expects.
    """
    x = np.asarray(counts, dtype=np.float64)
    f = np.asarray(loads_n, dtype=np.float64)
    if x.size < 2 or x.size != f.size:
        raise CalibrationError(
            "need at least two (counts, load) points, e.g. 0 N and a known weight"
        )
    if np.ptp(f) <= 0.0:
        raise CalibrationError(
            f"the known loads are all {f[0]:g} N: give at least two different loads "
            "(0 N for the tare and a known weight)"
        )
    if np.ptp(x) == 0:
        raise CalibrationError(
            "all readings are equal: is the load cell connected, and were the loads on it?"
        )
    if nominal_n_per_count:
        expected = float(np.ptp(f)) / abs(float(nominal_n_per_count))
        if float(np.ptp(x)) < 0.1 * expected:
            raise CalibrationError(
                f"the readings hardly change with the load ({np.ptp(x):.4g} counts over "
                f"{np.ptp(f):.4g} N; the board's nominal span expects ~{expected:.4g}): "
                "were the loads on the load cell?"
            )
    span, off = np.polyfit(x, f, 1)
    tare = -off / span
    res = (x - tare) * span - f
    rms = float(np.sqrt(np.mean(res**2)))
    if x.size > 2 and rms > 0.02 * float(np.ptp(f)):
        raise CalibrationError(
            f"the readings do not follow the loads on a line (rms residual {rms:.3g} N over "
            f"a {np.ptp(f):.3g} N range; allowed: 2 %): a load was misplaced or moved"
        )
    if nominal_n_per_count:
        ratio = float(span) / float(nominal_n_per_count)
        if not (1.0 - span_tolerance) <= ratio <= (1.0 + span_tolerance):
            raise CalibrationError(
                f"fitted span {span:.6g} N/count is {ratio:.3g} x the board's nominal "
                f"{nominal_n_per_count:.6g} N/count (allowed: within {span_tolerance:.0%}): "
                "were the loads really on the load cell? (a different cell: --span-tolerance)"
            )
    return LoadCellCalibration(
        float(tare),
        float(span),
        [(float(a), float(b)) for a, b in zip(x, f, strict=True)],
        rms,
    )


# ---- applying calibrations to a recording ------------------------------------------------
def _field_by_unit(stream: Any, units: tuple[str, ...]) -> list[dict[str, Any]]:
    return [f for f in stream.fields if f["unit"] in units and f["name"] != "t_us"]


def stack_area(rec: Any, cal: Calibration | None = None) -> tuple[float | None, str]:
    """(stack area in m², where it came from) for a loaded Recording: the calibration's
    stack_area_m2, else the recording's cell (set_cell / the protocol's [cell]), else
    (None, why there is none)."""
    if cal is not None and cal.stack_area_m2:
        return float(cal.stack_area_m2), "calibration stack_area_m2"
    stored = Calibration.from_dict(rec.calibration) if rec.calibration else None
    if stored is not None and stored.stack_area_m2:
        return float(stored.stack_area_m2), "the recording's calibration stack_area_m2"
    cell = getattr(rec, "cell", None) or {}
    if cell.get("stack_area_m2"):
        return float(cell["stack_area_m2"]), "the recording's cell stack_area_m2"
    if rec.protocol and isinstance(rec.protocol.get("file"), dict):
        from host_sdk.protocols.schema import stack_area_of

        a = stack_area_of(rec.protocol["file"].get("cell", {}) or {})
        if a:
            return float(a), "the protocol's [cell] stack area"
    return None, (
        "no stack area: give the pressed area (stack_area_m2 or stack_diameter_m in the "
        "protocol's [cell], --stack-area-m2, or in the calibration); force is reported in N"
    )


def _reference_grating(rec: Any, cal: Calibration) -> str | None:
    if cal.fbg is not None and cal.fbg.reference_grating:
        return cal.fbg.reference_grating
    roles = getattr(rec, "grating_roles", None) or {}
    refs = [g for g, role in roles.items() if role == "reference"]
    return refs[0] if refs else None


def si_channels(rec: Any, cal: Calibration | None = None) -> dict[str, Any]:
    """SI time series of a loaded Recording: {name: (t_s, values)} and `wavelength_m`
    {grating: (t_s, m)}. Uses `cal` (or the recording's stored calibration) first, then
    the scale/offset of the HELLO. `pressure_pa` only with a stack area (see stack_area).
    Samples that are not measurements are left out: load-cell glitch, not-ready and
    saturated readings, and FBG sweeps that lost a grating (per grating). `notes` lists
    what was left out or could not be computed, and why."""
    explicit = cal
    if cal is None:
        cal = Calibration.from_dict(rec.calibration) if rec.calibration else Calibration()
    out: dict[str, Any] = {"notes": []}
    area, area_note = stack_area(rec, explicit)
    load = rec.streams.get("load")
    if load is not None and len(load):
        force: np.ndarray | None
        good = _load_readings(load, out["notes"])
        if cal.load_cell is not None:
            force = cal.load_cell.force_n(load.records["counts"][good])
        else:
            fs = _field_by_unit(load, ("N",))
            force = load.physical(fs[0]["name"])[good] if fs else None
        if force is not None:
            t_load = load.t_s[good]
            out["force_n"] = (t_load, force)
            if area:
                out["pressure_pa"] = (t_load, force / float(area))
                out["stack_area_m2"] = float(area)
                out["stack_area_source"] = area_note
            else:
                out["notes"].append(area_note)
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
        _fbg_channels(rec, fbg, cal, out)
    return out


def _load_readings(load: Any, notes: list[str]) -> np.ndarray:
    """Mask of the load-cell samples that are readings of the load: an HX711 glitch word
    (2ⁿ − 1), a not-ready repeat or a saturated ADC is not, and a single glitch of
    ~8.4 million counts would swamp every force statistic and move the phase breaks."""
    names = load.records.dtype.names or ()
    if "status" not in names:
        return np.ones(len(load), dtype=bool)
    good = (np.asarray(load.records["status"]) & LOAD_STATUS_NOT_THE_LOAD) == 0
    bad = int(np.size(good) - np.count_nonzero(good))
    if bad:
        notes.append(f"{bad} load-cell samples left out: flagged glitch, not ready or saturated")
    return np.asarray(good, dtype=bool)


def _fbg_channels(rec: Any, fbg: Any, cal: Calibration, out: dict[str, Any]) -> None:
    """Wavelengths, strain and ΔT per grating, each without the sweeps that lost it (the
    board reports a lost grating as 0 with its status bit set: Δλ/λ₀ = −1)."""
    fields = _field_by_unit(fbg, ("nm", "m", "pm"))
    names = fbg.records.dtype.names or ()
    status = np.asarray(fbg.records["status"]) if "status" in names else None
    waves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for g_index, f in enumerate(fields):
        k = {"nm": 1e-9, "m": 1.0, "pm": 1e-12}[f["unit"]]
        w = fbg.physical(f["name"]) * k
        ok = w > 0
        if status is not None:
            ok &= (status >> g_index) & 1 == 0
        lost = int(ok.size - np.count_nonzero(ok))
        if lost:
            out["notes"].append(f"FBG grating {f['name']}: {lost} sweeps lost it, left out")
        waves[f["name"]] = (ok, w)
    if not waves:
        return
    out["wavelength_m"] = {g: (fbg.t_s[ok], w[ok]) for g, (ok, w) in waves.items()}
    fc = cal.fbg
    lam0 = (fc.reference_wavelengths_m if fc else {}) or {
        g: float(np.median(w[ok][:20])) for g, (ok, w) in waves.items() if np.any(ok)
    }
    p_e = fc.p_e if fc else P_E
    ref = _reference_grating(rec, cal)
    if ref is None and len(waves) > 1:
        out["notes"].append(
            "FBG strain is not temperature-compensated: no reference grating named "
            "(protocol [fbg] reference_grating, --reference-grating, or calibration)"
        )
    rel = {g: (ok, (w - lam0[g]) / lam0[g]) for g, (ok, w) in waves.items() if g in lam0}
    strains = {}
    for g, (ok, r) in rel.items():
        if g == ref:
            continue
        if ref in rel:
            both = ok & rel[ref][0]
            strains[g] = (fbg.t_s[both], (r[both] - rel[ref][1][both]) / (1.0 - p_e))
        else:
            strains[g] = (fbg.t_s[ok], r[ok] / (1.0 - p_e))
    out["strain"] = strains
    if ref in rel:
        thermal = fc.thermal_per_k if fc else THERMAL_PER_K
        ok, r = rel[ref]
        out["fbg_delta_t_k"] = (fbg.t_s[ok], r[ok] / thermal)


# measuring at known loads lives in its own module; its names are part of this API
from host_sdk.known_loads import (  # noqa: E402
    emulated_press_loads,
    mean_of_field,
    measure_known_loads,
)
