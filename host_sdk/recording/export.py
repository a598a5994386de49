"""Export a recording: one BDF table on one time base (host_sdk.recording.bdf), or one CSV
or Parquet file per stream plus events, gaps and a metadata JSON.

Per-stream columns: t_dev_s, sample_index, every raw field as recorded, for fields the board
gave a scale/offset the physical value as `<field>_<unit>` (e.g. `g0_nm`, `temp_degC`), and
for the load cell the calibrated `force_N` and, with a stack area, `pressure_Pa`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from host_sdk.calibration import Calibration, si_channels
from host_sdk.recording.reader import GAP_KIND_NAMES, Recording, load_recording
from protocol import defs

__all__ = ["EXPORT_FORMATS", "export_recording", "stream_columns", "write_csv", "write_parquet"]

EXPORT_FORMATS = ("bdf", "bdf-parquet", "csv", "parquet")


def stream_columns(
    rec: Recording, name: str, calibration: Calibration | None = None
) -> dict[str, np.ndarray]:
    """Ordered columns of one stream (raw + physical, + calibrated force/pressure)."""
    s = rec.streams[name]
    cols: dict[str, np.ndarray] = {
        "t_dev_s": s.t_s,
        "sample_index": np.asarray(s.records["sample_index"]),
    }
    for f in s.fields:
        n = f["name"]
        if n not in (s.records.dtype.names or ()):
            continue
        cols[n] = np.asarray(s.records[n])
        if (float(f["scale"]) != 1.0 or float(f["offset"]) != 0.0) and f["unit"]:
            label = f"{n}_{f['unit']}"
            if name == "load":
                label = f"{n}_nominal_{f['unit']}"  # the board's nominal span, not the host's
            cols[label] = s.physical(n)
    if name == "load":
        ch = si_channels(rec, calibration)
        if "force_n" in ch:
            cols["force_N"] = ch["force_n"][1]
        if "pressure_pa" in ch:
            cols["pressure_Pa"] = ch["pressure_pa"][1]
    return cols


def _table_columns(rec: Recording, which: str) -> dict[str, np.ndarray | list[str]]:
    if which == "events":
        ev = rec.events
        return {
            "t_dev_s": ev["t_dev_s"],
            "code": ev["code"],
            "name": [defs.EVENT_NAMES.get(int(c), str(c)) for c in ev["code"]],
            "cause": [defs.CAUSE_NAMES.get(int(c), str(c)) for c in ev["cause"]],
            "index": ev["index"],
            "value": ev["value"],
        }
    g = rec.gaps
    ids = {s.stream_id: n for n, s in rec.streams.items()}
    return {
        "t_dev_s": g["t_dev_s"],
        "stream": [ids.get(int(i), str(int(i))) for i in g["stream_id"]],
        "first_index": g["first_index"],
        "count": g["count"],
        "kind": [GAP_KIND_NAMES.get(int(k), str(k)) for k in g["kind"]],
    }


def write_csv(path: Path, cols: dict[str, Any]) -> None:
    names = list(cols)
    n = len(next(iter(cols.values()))) if cols else 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(names) + "\n")
        if n == 0:
            return
        # format column-wise with numpy, then join rows: fast enough for millions of rows
        text_cols = []
        for v in cols.values():
            a = np.asarray(v)
            if a.dtype.kind == "f":
                # 10 digits keep counts and SI values; large values (Unix time, device
                # time of a long run) need all 17 to keep their milliseconds
                big = a.size and float(np.nanmax(np.abs(a), initial=0.0)) >= 1e5
                text_cols.append(np.char.mod("%.17g" if big else "%.10g", a))
            else:
                text_cols.append(a.astype(str))
        rows = text_cols[0]
        for c in text_cols[1:]:
            rows = np.char.add(np.char.add(rows, ","), c)
        fh.write("\n".join(rows.tolist()))
        fh.write("\n")


def write_parquet(path: Path, cols: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {k: (list(v) if isinstance(v, list) else np.asarray(v)) for k, v in cols.items()}
    )
    pq.write_table(table, path)


def export_recording(
    recording: str | Path | Recording,
    out_dir: str | Path,
    fmt: str = "csv",
    calibration: Calibration | None = None,
) -> list[Path]:
    """fmt "bdf"/"bdf-parquet": one BDF table + metadata sidecar (host_sdk.recording.bdf).
    fmt "csv"/"parquet": `<stem>_<stream>.<ext>` per stream plus `_events` and `_gaps`,
    and `<stem>_metadata.json`. Returns the paths written."""
    rec = recording if isinstance(recording, Recording) else load_recording(recording)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    if fmt.startswith("bdf"):
        from host_sdk.recording.bdf import export_bdf

        return export_bdf(rec, out_dir, fmt, calibration)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = write_csv if fmt == "csv" else write_parquet
    stem = rec.path.stem
    written: list[Path] = []
    tables: list[tuple[str, dict[str, Any]]] = [
        (name, dict(stream_columns(rec, name, calibration))) for name in rec.streams
    ]
    tables += [("events", _table_columns(rec, "events")), ("gaps", _table_columns(rec, "gaps"))]
    for name, cols in tables:
        p = out / f"{stem}_{name}.{fmt}"
        writer(p, cols)
        written.append(p)
    from host_sdk.recording.bdf import bdf_table

    meta = bdf_table(rec, calibration)[1]["stressrig"]
    side = out / f"{stem}_metadata.json"
    side.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    written.append(side)
    return written
