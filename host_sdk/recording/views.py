"""Views of a recording in SI units: all channels on one time base (what the BDF export
writes), and an xarray Dataset with units (`load_recording(p).to_xarray()`).

The calibration is applied here, never in the file: the recording's own, or one given.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from host_sdk.calibration import Calibration, si_channels

__all__ = ["on_time_base", "step_and_cycle", "time_base", "to_xarray"]


def time_base(rec: Any) -> tuple[str, np.ndarray]:
    """(stream, device times) of the table: the electrical stream when it was recorded
    (the experiment's own pace), else the stream with the most samples."""
    filled = {n: s for n, s in rec.streams.items() if len(s)}
    if not filled:
        return "", np.empty(0)
    name = "elec" if "elec" in filled else max(filled, key=lambda n: len(filled[n]))
    return name, np.asarray(filled[name].t_s, dtype=np.float64)


def on_time_base(t_src: np.ndarray, v_src: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`v_src` linearly interpolated at times `t`; NaN outside the source's span and
    across its gaps (two samples further apart than 3 of its median periods): a value
    between samples is interpolated, a missing stretch is never invented."""
    t_src = np.asarray(t_src, dtype=np.float64)
    v_src = np.asarray(v_src, dtype=np.float64)
    out = np.full(t.shape, np.nan)
    if t_src.size == 0:
        return out
    if t_src.size == 1:
        out[np.isclose(t, t_src[0])] = v_src[0]
        return out
    out = np.interp(t, t_src, v_src)
    period = float(np.median(np.diff(t_src)))
    k = np.clip(np.searchsorted(t_src, t), 1, t_src.size - 1)
    wide = (t_src[k] - t_src[k - 1]) > 3.0 * period
    outside = (t < t_src[0] - 0.5 * period) | (t > t_src[-1] + 0.5 * period)
    out[wide | outside] = np.nan
    return out


def _step_starts(rec: Any) -> list[tuple[float, int, str]]:
    """(start time, step index, path) of every protocol step the recording ran."""
    steps = getattr(rec, "steps", None)
    if steps is not None and len(steps):
        return [
            (float(s["t_start_s"]), int(s["index"]), bytes(s["path"]).decode(errors="replace"))
            for s in steps
        ]
    out = []
    for m in rec.markers:  # older files: "step 3 pulse_train label" markers only
        hit = re.match(r"step (\d+) ", bytes(m["text"]).decode(errors="replace"))
        if hit:
            out.append((float(m["t_dev_s"]), int(hit.group(1)), hit.group(1)))
    return sorted(out)


def step_and_cycle(rec: Any, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step count, cycle count, start time of the step) at each time `t`. Step count:
    1 for the protocol's first step, 0 before it. Cycle count: 1, and +1 each time a
    `repeat` runs the same step of the file again (its path seen once more)."""
    starts = _step_starts(rec)
    step = np.zeros(t.shape, dtype=np.int64)
    cycle = np.ones(t.shape, dtype=np.int64)
    t_step = np.full(t.shape, float(t[0]) if t.size else 0.0)
    seen: dict[str, int] = {}
    cyc = 1
    for t0, index, path in starts:
        seen[path] = seen.get(path, 0) + 1
        cyc = max(cyc, seen[path])
        at = t >= t0
        step[at] = index + 1
        cycle[at] = cyc
        t_step[at] = t0
    return step, cycle, t_step


def _cumulative(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∫ y dt from t[0] (trapezoids), NaN treated as 0."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64))
    if t.size < 2:
        return np.zeros(t.shape)
    return np.concatenate(([0.0], np.cumsum(np.diff(t) * 0.5 * (y[1:] + y[:-1]))))


def capacities_ah(t: np.ndarray, i_a: np.ndarray) -> dict[str, np.ndarray]:
    """Charging, discharging and net capacity (Ah) from the start. The rig's positive
    current removes charge from the working electrode (stripping, discharge): counted as
    discharging; negative current as charging; net = charging - discharging."""
    dis = _cumulative(t, np.clip(i_a, 0.0, None)) / 3600.0
    chg = _cumulative(t, np.clip(-np.asarray(i_a), 0.0, None)) / 3600.0
    return {"charging": chg, "discharging": dis, "net": chg - dis}


def to_xarray(rec: Any, calibration: Calibration | None = None) -> Any:
    """An xarray.Dataset: one time coordinate per stream (`time_elec`, ...), SI variables
    with `units` and `long_name`, the recording's metadata in `attrs`."""
    try:
        import xarray as xr
    except ImportError as e:  # pragma: no cover - xarray is a dependency
        raise ImportError("to_xarray needs xarray: pip install xarray") from e
    ch = si_channels(rec, calibration)
    stream_of = {"voltage_v": "elec", "current_a": "elec", "temperature_c": "temp"}
    stream_of.update(force_n="load", pressure_pa="load")
    variables: dict[str, Any] = {}

    def add(name: str, stream: str, t: np.ndarray, v: np.ndarray, units: str, text: str) -> None:
        dim = f"time_{stream}"
        coord = xr.Variable(
            dim, np.asarray(t), {"units": "s", "long_name": f"device time ({stream} stream)"}
        )
        if rec.start_known:
            coord.attrs["start"] = rec.start_utc
        variables[name] = xr.DataArray(
            np.asarray(v),
            dims=(dim,),
            coords={dim: coord},
            attrs={"units": units, "long_name": text},
        )

    texts = {
        "voltage_v": ("V", "cell voltage"),
        "current_a": ("A", "cell current (positive: out of the working electrode)"),
        "temperature_c": ("degC", "cell temperature (thermistor)"),
        "force_n": ("N", "stack force (load cell)"),
        "pressure_pa": ("Pa", "stack pressure: force / stack area"),
    }
    for key, (units, text) in texts.items():
        if key in ch:
            t, v = ch[key]
            add(key.rsplit("_", 1)[0], stream_of[key], t, v, units, text)
    for g, (t, lam) in (ch.get("wavelength_m") or {}).items():
        add(f"wavelength_{g}", "fbg", t, lam, "m", f"Bragg wavelength of grating {g}")
    for g, (t, eps) in (ch.get("strain") or {}).items():
        add(f"strain_{g}", "fbg", t, eps, "1", f"strain at grating {g}")
    if "fbg_delta_t_k" in ch:
        t, dt = ch["fbg_delta_t_k"]
        add("fbg_delta_temperature", "fbg", t, dt, "K", "temperature change (reference FBG)")
    ds = xr.Dataset(variables)
    ds.attrs.update(
        {
            "title": f"stressrig recording {rec.path.name}",
            "board_id": rec.board_id,
            "unique_id": rec.unique_id,
            "firmware_version": rec.firmware_version,
            "sdk_version": rec.sdk_version,
            "start_utc": rec.start_utc,
            "completed": str(rec.completed),
            "stack_area_m2": float(ch.get("stack_area_m2", np.nan)),
            "electrode_area_m2": float(rec.cell.get("electrode_area_m2", np.nan)),
            "notes": "; ".join(ch.get("notes", [])),
        }
    )
    return ds
