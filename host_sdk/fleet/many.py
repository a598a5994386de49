"""Many recordings at once on Dask: the per-recording analysis (host_sdk.recording.analyze,
unchanged) as one task per file, on a local cluster by default or any Dask scheduler.

    result = analyze_many(["runs/a.h5", "runs/b.h5"], "runs_analysis")           # local
    result = analyze_many(paths, "out", scheduler="tcp://10.0.0.5:8786")         # a cluster

Writes into the output folder:
    summary.parquet        one row per recording: board, cell, outcome, duration, charge,
                           voltage and stack pressure figures, lost samples, problems
    pulse_trains.parquet   one row per pulse train: rest, charge, critical capacity
    capacity_vs_rest.png   critical stripping capacity vs rest, one line per cell
    overview.png           per recording: mean stack pressure, charge, lost samples
    bad_files.txt          the files that could not be analysed, and why
    <stem>_analysis/       each recording's own plots and summary.json

A script that calls `analyze_many` with the local cluster needs the usual
`if __name__ == "__main__":` guard (the workers are new processes that import it).
A bad file (not HDF5, not a recording, unreadable) is listed and the others go on. Workers
of a remote cluster need stressrig installed (pip install stressrig) and the files at the
same paths (a shared file system).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ManyResult", "analyze_many", "analyze_one", "summary_row"]


@dataclass
class ManyResult:
    rows: list[dict[str, Any]]
    trains: list[dict[str, Any]]
    bad: list[tuple[str, str]]  # (path, why)
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def summary_row(path: str, s: dict[str, Any]) -> dict[str, Any]:
    """The flat summary of one analysed recording (analyze_recording's summary)."""
    rec = s.get("recording", {})
    outcome = rec.get("outcome") or {}
    ch = s.get("channels", {})
    streams = rec.get("streams", {})
    sp = s.get("stack_pressure", {})
    cell = rec.get("cell", {})
    row: dict[str, Any] = {
        "file": str(path),
        "unique_id": str(rec.get("unique_id", "")),
        "board_id": str(rec.get("board_id", "")),
        "cell_label": str(cell.get("label", "")),
        "start_utc": str(rec.get("start_utc", "")),
        "completed": bool(rec.get("completed")),
        "stopped_by": str(outcome.get("stopped_by", "")),
        "cause": str(outcome.get("cause", "")),
        "duration_s": max((_num(v.get("duration_s")) for v in streams.values()), default=math.nan),
        "charge_passed_c": _num(s.get("charge_passed_c")),
        "voltage_min_v": _num(ch.get("voltage_v", {}).get("min")),
        "voltage_max_v": _num(ch.get("voltage_v", {}).get("max")),
        "pressure_mean_mpa": _num(sp.get("mean_mpa")),
        "pressure_last_mpa": _num(sp.get("last_mpa")),
        "pulse_trains": len(s.get("pulsed_stripping", [])),
        "lost_samples": int(sum((rec.get("lost_samples") or {}).values())),
        "gaps": int(rec.get("gaps", 0)),
        "problems": "; ".join(list(rec.get("problems", [])) + list(s.get("analysis_errors", []))),
    }
    for name, info in streams.items():
        row[f"records_{name}"] = int(info.get("records", 0))
    return row


def analyze_one(path: str, out_root: str) -> dict[str, Any]:
    """One task: analyse `path` into <out_root>/<stem>_analysis; never raises (a bad file
    comes back as {"ok": False, "error": ...})."""
    import matplotlib

    matplotlib.use("Agg")
    from host_sdk.recording.analyze import analyze_recording

    stem = Path(path).stem
    try:
        summary = analyze_recording(path, Path(out_root) / f"{stem}_analysis")
    except Exception as e:  # noqa: BLE001 - any failure is this file's, reported
        return {"ok": False, "path": str(path), "error": f"{type(e).__name__}: {e}"}
    row = summary_row(path, summary)
    trains = [
        {
            "file": str(path),
            "unique_id": row["unique_id"],
            "cell_label": row["cell_label"],
            **{k: v for k, v in t.items() if isinstance(v, int | float | str)},
        }
        for t in summary.get("pulsed_stripping", [])
    ]
    return {"ok": True, "path": str(path), "row": row, "trains": trains}


def _client(scheduler: str | None, workers: int | None) -> tuple[Any, Any]:
    import logging

    from dask.distributed import Client, LocalCluster

    # the scheduler runs in this process: its INFO lines would bury the report
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler:
        return Client(scheduler, timeout="20s"), None
    n = workers or max(1, min(os.cpu_count() or 1, 8))
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,  # matplotlib's pyplot is not thread-safe: one task a process
        processes=True,
        dashboard_address=None,
        silence_logs=40,
    )
    return Client(cluster), cluster


def analyze_many(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> ManyResult:
    """Analyse every file on Dask; write the tables and figures; list the bad files."""
    from dask.distributed import as_completed

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [str(Path(p).resolve()) for p in paths]
    t0 = time.perf_counter()
    client, cluster = _client(scheduler, workers)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        futures = client.map(analyze_one, files, out_root=str(out.resolve()), pure=False)
        results: list[dict[str, Any]] = []
        for k, fut in enumerate(as_completed(futures), 1):
            try:
                r = fut.result()
            except Exception as e:  # noqa: BLE001 - a worker died on this file
                r = {"ok": False, "path": "?", "error": f"{type(e).__name__}: {e}"}
            results.append(r)
            if progress is not None:
                progress(k, len(files), r)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    order = {p: i for i, p in enumerate(files)}
    results.sort(key=lambda r: order.get(r["path"], len(order)))
    res = ManyResult(
        rows=[r["row"] for r in results if r["ok"]],
        trains=[t for r in results if r["ok"] for t in r["trains"]],
        bad=[(r["path"], r["error"]) for r in results if not r["ok"]],
        out_dir=out,
        workers=n_workers,
    )
    _write_outputs(res)
    res.seconds = time.perf_counter() - t0
    return res


def _write_outputs(res: ManyResult) -> None:
    import pandas as pd

    from host_sdk.fleet.many_plots import plot_capacity_vs_rest, plot_overview

    out = res.out_dir
    res.files["summary"] = out / "summary.parquet"
    pd.DataFrame(res.rows).to_parquet(res.files["summary"], index=False)
    res.files["pulse_trains"] = out / "pulse_trains.parquet"
    pd.DataFrame(res.trains).to_parquet(res.files["pulse_trains"], index=False)
    bad = out / "bad_files.txt"
    bad.write_text("".join(f"{p}\t{why}\n" for p, why in res.bad))
    res.files["bad_files"] = bad
    p = plot_capacity_vs_rest(res.trains, out / "capacity_vs_rest.png")
    if p is not None:
        res.files["capacity_vs_rest"] = p
    if res.rows:
        res.files["overview"] = plot_overview(res.rows, out / "overview.png")
