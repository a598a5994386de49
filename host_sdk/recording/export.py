"""Export a recording to CSV or Parquet: one file per stream, plus events and gaps.

Columns: t_dev_s, sample_index, every raw field as recorded, and for fields the board gave a
scale/offset, the physical value as `<field>_<unit>` (e.g. `fm_0_m`, `temp_mdegc_degC`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from host_sdk.recording.reader import GAP_KIND_NAMES, Recording, load_recording
from protocol import defs

__all__ = ["export_recording", "stream_columns"]


def stream_columns(rec: Recording, name: str) -> dict[str, np.ndarray]:
    """Ordered columns of one stream (raw + physical)."""
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
            cols[f"{n}_{f['unit']}"] = s.physical(n)
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


def _write_csv(path: Path, cols: dict[str, Any]) -> None:
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
                text_cols.append(np.char.mod("%.9g", a))
            else:
                text_cols.append(a.astype(str))
        rows = text_cols[0]
        for c in text_cols[1:]:
            rows = np.char.add(np.char.add(rows, ","), c)
        fh.write("\n".join(rows.tolist()))
        fh.write("\n")


def _write_parquet(path: Path, cols: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {k: (list(v) if isinstance(v, list) else np.asarray(v)) for k, v in cols.items()}
    )
    pq.write_table(table, path)


def export_recording(
    recording: str | Path | Recording, out_dir: str | Path, fmt: str = "csv"
) -> list[Path]:
    """Write `<stem>_<stream>.<ext>` per stream plus `_events` and `_gaps`; return paths."""
    rec = recording if isinstance(recording, Recording) else load_recording(recording)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"export format {fmt!r}: use csv or parquet")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = _write_csv if fmt == "csv" else _write_parquet
    stem = rec.path.stem
    written: list[Path] = []
    tables: list[tuple[str, dict[str, Any]]] = [
        (name, dict(stream_columns(rec, name))) for name in rec.streams
    ]
    tables += [("events", _table_columns(rec, "events")), ("gaps", _table_columns(rec, "gaps"))]
    for name, cols in tables:
        p = out / f"{stem}_{name}.{fmt}"
        writer(p, cols)
        written.append(p)
    return written
