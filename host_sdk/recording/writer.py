"""Recorder: appends sample blocks, gaps and events to an HDF5 file from any thread.

Producers (the rig's reader thread) only append to in-memory lists; one writer thread owns
the file and, every `flush_interval_s`, opens it, appends what accumulated and closes it
again. Between flushes the file on disk is closed and consistent, so:
- a killed writer (kill -9, power cut after the OS wrote it) leaves a file that plain
  `h5py.File(path)` opens, missing at most the last flush interval;
- the file can be opened while it is being written (h5py, HDFView), and a reader holding
  it open never blocks the writer (the writer does not take HDF5's file lock).
Layout and units: host_sdk.recording.layout.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from host_sdk.recording.layout import (
    EVENT_DTYPE,
    FORMAT_VERSION,
    GAP_DTYPE,
    GAP_KINDS,
    LIBVER,
    MARKER_DTYPE,
    TABLES,
    Column,
    stream_columns,
    stream_record_dtype,
)
from host_sdk.recording.metadata import (
    calibration_attrs,
    grating_roles,
    hello_to_dict,
    iso_utc,
    now_iso,
    sdk_version,
    set_attrs,
    to_json,
)
from protocol import defs

__all__ = [
    "EVENT_DTYPE",
    "GAP_DTYPE",
    "GAP_KINDS",
    "MARKER_DTYPE",
    "Recorder",
    "hello_to_dict",
    "sdk_version",
    "stream_record_dtype",
]


class Recorder:
    """Write one recording. Thread-safe `add_*`; call `close()` (or use `with`)."""

    def __init__(
        self,
        path: str | Path,
        hello: Any,
        *,
        calibration: Mapping[str, Any] | None = None,
        protocol: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        cell: Mapping[str, Any] | None = None,
        reference_grating: str | None = None,
        flush_interval_s: float = 0.5,
        chunk_records: int = 8192,
        background: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()  # one flush at a time
        self._blocks: dict[str, list[np.ndarray]] = {}
        self._rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}
        self.records_written: dict[str, int] = {}
        self.bytes_written = 0
        self.lost_samples: dict[str, int] = {}
        self.incidents: list[dict[str, Any]] = []  # latches, reboots, link losses seen
        self._outcome: Any = None
        self._closed = False
        self._unsubscribe: list[Any] = []
        self._rig: Any = None
        self._epoch_written: float | None = None
        self._rates_written: dict[str, float] = {}

        hd = hello_to_dict(hello)
        self._streams = {s.name: s for s in hello.streams}
        self._dtypes = {name: stream_record_dtype(s) for name, s in self._streams.items()}
        self._columns: dict[str, list[Column]] = {}
        created = now_iso()
        with h5py.File(self.path, "w", libver=LIBVER, locking=False) as f:
            set_attrs(
                f,
                {
                    "format": "stressrig-recording",
                    "format_version": FORMAT_VERSION,
                    "sdk_version": sdk_version(),
                    "created_utc": created,
                    "start_utc": created,
                    "start_utc_source": "recording created (device time 0 not known yet)",
                    "hello": hd,
                    "board_id": str(hd.get("board_id", "")),
                    "unique_id": str(hd.get("unique_id", "")),
                    "firmware_version": ".".join(str(v) for v in hd.get("firmware_version", ())),
                    "protocol_version": int(hd.get("protocol_version", defs.PROTOCOL_VERSION)),
                    "protocol": dict(protocol) if protocol is not None else None,
                    "meta": dict(meta or {}),
                    "url": str((meta or {}).get("url", "")),
                    "operator": str((meta or {}).get("operator", "")),
                    "complete": False,
                },
            )
            f.attrs["protocol"] = to_json(dict(protocol) if protocol is not None else None)
            g = f.create_group("streams")
            for name, s in self._streams.items():
                roles = grating_roles(s, calibration, reference_grating) if name == "fbg" else None
                cols = stream_columns(s, roles)
                self._columns[name] = cols
                sg = g.create_group(name)
                set_attrs(
                    sg,
                    {
                        "NX_class": "NXcollection",
                        "stream_id": int(s.id),
                        "rate_hz": float(s.rate_hz),
                        "enabled": bool(s.enabled),
                        "record_format": str(s.record_format),
                        "fields": [dataclasses.asdict(fi) for fi in s.fields],
                    },
                )
                rec_bytes = self._dtypes[name].itemsize
                chunk = max(64, min(chunk_records, (1 << 20) // rec_bytes))
                self._create_columns(sg, cols, chunk, created)
                self.records_written[name] = 0
                self.lost_samples[name] = 0
            for name, (_, cols) in TABLES.items():
                tg = f.create_group(name)
                tg.attrs["NX_class"] = "NXcollection"
                self._create_columns(tg, cols, 256, created)
            cg = f.create_group("cell")
            set_attrs(cg, dict(cell or {}))
            cal = f.create_group("calibration")
            set_attrs(cal, calibration_attrs(dict(calibration or {})))
            out = f.create_group("outcome")
            set_attrs(
                out,
                {
                    "completed": False,
                    "stopped_by": "running",
                    "cause": "the recording was still being written, or its writer was killed",
                },
            )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
            self._thread.start()

    @staticmethod
    def _create_columns(group: h5py.Group, cols: list[Column], chunk: int, start: str) -> None:
        for c in cols:
            d = group.create_dataset(
                c.name, shape=(0,), maxshape=(None,), dtype=c.dtype, chunks=(chunk,)
            )
            set_attrs(d, c.attrs)
            if c.attrs.get("units") == "s" and c.name == "time":
                d.attrs["start"] = start

    # ---- wiring to a rig ---------------------------------------------------------------------
    @classmethod
    def attach(cls, rig: Any, path: str | Path, **kwargs: Any) -> Recorder:
        """A recorder fed by the rig's callbacks (blocks, gaps, events) from now on; the
        rig's cell (set_cell) and applied stream rates go into the file."""
        kwargs.setdefault("meta", {})
        kwargs["meta"] = {**kwargs["meta"], "url": rig.link.url}
        cell = dict(getattr(rig, "cell", {}) or {})
        if cell:
            kwargs["cell"] = {**cell, **dict(kwargs.get("cell") or {})}
        rec = cls(path, rig.hello, **kwargs)
        rec._rig = rig
        rec._unsubscribe = [
            rig.on_block(rec.add_block),
            rig.on_gap(rec.add_gap),
            rig.on_event(rec.add_event),
        ]
        return rec

    # ---- producers ---------------------------------------------------------------------------
    def add_block(self, block: Any) -> None:
        """Append a client Block (records + t_s + first_index)."""
        name = block.stream
        dt = self._dtypes.get(name)
        if dt is None:
            return
        rec = block.records
        n = len(rec)
        out = np.empty(n, dtype=dt)
        for field in rec.dtype.names or ():
            if field in (dt.names or ()):
                out[field] = rec[field]
        out["t_dev_s"] = block.t_s
        out["sample_index"] = block.first_index + np.arange(n, dtype=np.int64)
        with self._lock:
            self._blocks.setdefault(name, []).append(out)

    def add_records(
        self, stream: str, records: np.ndarray, t_s: np.ndarray, first_index: int
    ) -> None:
        """Append raw records of a stream (no client needed; used by tools and benchmarks)."""
        from types import SimpleNamespace

        self.add_block(
            SimpleNamespace(stream=stream, records=records, t_s=t_s, first_index=first_index)
        )

    def add_gap(self, gap: Any) -> None:
        kind = GAP_KINDS.get(gap.kind, 0)
        with self._lock:
            self._rows["gaps"].append((gap.stream_id, gap.first_index, gap.count, gap.t_s, kind))
            if gap.count > 0 and gap.stream in self.lost_samples:
                self.lost_samples[gap.stream] += int(gap.count)
            if gap.kind in ("board_reset", "link_down") and not any(
                i["t_dev_s"] == gap.t_s and i["kind"] == gap.kind for i in self.incidents
            ):
                self.incidents.append({"kind": gap.kind, "t_dev_s": float(gap.t_s)})

    def add_event(self, ev: Any) -> None:
        with self._lock:
            self._rows["events"].append((ev.t_s, ev.code, ev.cause, ev.index & 0xFFFF, ev.value))
            if ev.code == defs.EV_STOP_LATCHED:
                cause = defs.CAUSE_NAMES.get(int(ev.cause), str(ev.cause))
                self.incidents.append({"kind": "latched", "cause": cause, "t_dev_s": ev.t_s})

    def add_marker(self, t_dev_s: float, text: str) -> None:
        """A host-side marker (protocol step, calibration hold) at a device time."""
        with self._lock:
            self._rows["markers"].append((t_dev_s, text.encode()[:96]))

    def add_step(self, step: Any) -> None:
        """A protocol step that ran (protocols.StepResult)."""
        with self._lock:
            self._rows["steps"].append(
                (
                    int(step.index),
                    str(step.path).encode()[:48],
                    str(step.kind).encode()[:24],
                    str(step.label).encode()[:64],
                    float(step.t_start_s),
                    float(step.t_end_s),
                    str(step.end_cause).encode()[:24],
                )
            )

    def set_outcome(self, outcome: Any) -> None:
        """How the experiment ended (protocols.Outcome); written at close."""
        self._outcome = outcome

    # ---- writing -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> None:
        """Write everything buffered: open the file, append, close it."""
        with self._lock:
            blocks, self._blocks = self._blocks, {}
            rows = {k: v for k, v in self._rows.items() if v}
            self._rows = {name: [] for name in TABLES}
        with self._file_lock:
            if self._closed:
                return
            # no chunk cache: chunks go to disk in the order written (see _append)
            with h5py.File(self.path, "r+", locking=False, rdcc_nbytes=0) as f:
                for name, parts in blocks.items():
                    data = parts[0] if len(parts) == 1 else np.concatenate(parts)
                    self._append(f["streams"][name], self._columns[name], data)
                    self.records_written[name] += len(data)
                    self.bytes_written += data.nbytes
                for name, table_rows in rows.items():
                    dt, cols = TABLES[name]
                    self._append(f[name], cols, np.array(table_rows, dtype=dt))
                self._update_attrs(f)

    def _update_attrs(self, f: h5py.File) -> None:
        """What the rig learnt since: the applied stream rates and the device epoch."""
        rig = self._rig
        if rig is None:
            return
        for name, cfg in dict(getattr(rig, "stream_config", {}) or {}).items():
            rate = float(cfg.get("rate_hz", 0.0))
            if name in self._columns and self._rates_written.get(name) != rate:
                g = f["streams"][name]
                g.attrs["rate_hz"] = rate
                g.attrs["enabled"] = bool(cfg.get("enabled", True))
                self._rates_written[name] = rate
        mapping = getattr(rig, "clock_mapping", None)  # timesync: device time -> UTC
        if mapping is not None:
            f.attrs["clock_mapping"] = to_json(
                {**mapping.as_dict(), "formula": "utc_s = utc_at_zero_s + (1 + drift) * t_dev_s"}
            )
        epoch = getattr(rig, "device_epoch_utc", None)
        if epoch is not None and epoch != self._epoch_written:
            start = iso_utc(float(epoch))
            f.attrs["start_utc"] = start
            f.attrs["start_utc_source"] = (
                "device clock: timesync mapping (clock_mapping)"
                if mapping is not None
                else "device clock: host time at the first sample"
            )
            for group in (*(f["streams"][n] for n in self._columns), *(f[n] for n in TABLES)):
                if "time" in group:
                    group["time"].attrs["start"] = start
                    group["time"].attrs["start_note"] = (
                        "UTC of device time 0: host clock at the first sample minus its "
                        "device time (nominal for an emulated board's virtual clock)"
                    )
            self._epoch_written = epoch

    @staticmethod
    def _append(group: h5py.Group, cols: list[Column], data: np.ndarray) -> None:
        """Append rows to every column, chunk row-range by chunk row-range across the
        columns: HDF5 places a chunk where it is first written, so the file then holds the
        rows in time order and a file cut short keeps whole rows up to the cut."""
        if not len(data):
            return
        dsets = [group[c.name] for c in cols]
        n0 = dsets[0].shape[0]
        n1 = n0 + len(data)
        for d in dsets:
            d.resize((n1,))
        chunk = int(dsets[0].chunks[0]) if dsets[0].chunks else len(data)
        a = n0
        while a < n1:
            b = min(n1, (a // chunk + 1) * chunk)
            for c, d in zip(cols, dsets, strict=True):
                d[a:b] = data[c.field][a - n0 : b - n0]
            a = b

    def _final_outcome(self) -> dict[str, Any]:
        """The outcome set by the runner/CLI, else what the recorder saw itself."""
        if self._outcome is not None:
            d = dict(self._outcome.to_dict())
        else:
            latched = [i for i in self.incidents if i["kind"] == "latched"]
            resets = [i for i in self.incidents if i["kind"] == "board_reset"]
            if latched:
                d = {
                    "completed": False,
                    "stopped_by": latched[0]["cause"],
                    "cause": "the board latched a safety stop",
                    "t_dev_s": latched[0]["t_dev_s"],
                }
            elif resets:
                d = {
                    "completed": False,
                    "stopped_by": "boot",
                    "cause": "the board rebooted during the recording",
                    "t_dev_s": resets[0]["t_dev_s"],
                }
            else:
                d = {"completed": True, "stopped_by": "closed", "cause": "recording closed"}
        if d.get("step_index") is None:
            d["step_index"] = -1
        if d.get("t_dev_s") is None:
            d["t_dev_s"] = math.nan
        d["incidents"] = list(self.incidents)
        return d

    def close(self, **final_attrs: Any) -> None:
        """Flush, mark the file complete, store the outcome (and `final_attrs` as JSON)."""
        if self._closed:
            return
        for unsub in self._unsubscribe:
            unsub()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        self._closed = True
        with self._file_lock, h5py.File(self.path, "r+", locking=False) as f:
            f.attrs["complete"] = True
            f.attrs["closed_utc"] = now_iso()
            f.attrs["lost_samples"] = to_json(self.lost_samples)
            for k, v in final_attrs.items():
                f.attrs[k] = to_json(v)
            out = f["outcome"]
            for k, v in self._final_outcome().items():
                out.attrs[k] = v if isinstance(v, str | int | float | bool) else to_json(v)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
