"""Recorder: appends sample blocks, gaps and events to an HDF5 file from any thread.

Producers (the rig's reader thread) only append to in-memory lists; one writer thread owns
the h5py file, writes what accumulated and flushes every `flush_interval_s`. The file is in
SWMR mode, so HDF5 keeps it consistent on disk between flushes and a kill -9 loses at most
the data since the last flush.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from protocol import defs

FORMAT_VERSION = 1
GAP_KINDS = {"lost": 0, "link_down": 1, "board_reset": 2, "lost_on_board": 3}
GAP_DTYPE = np.dtype(
    [
        ("stream_id", "u1"),
        ("first_index", "<i8"),
        ("count", "<i8"),
        ("t_dev_s", "<f8"),
        ("kind", "u1"),
    ]
)
EVENT_DTYPE = np.dtype(
    [("t_dev_s", "<f8"), ("code", "u1"), ("cause", "u1"), ("index", "<u2"), ("value", "<f4")]
)
MARKER_DTYPE = np.dtype([("t_dev_s", "<f8"), ("text", "S96")])
EXTRA_FIELDS = [("t_dev_s", "<f8"), ("sample_index", "<i8")]


def hello_to_dict(hello: Any) -> dict[str, Any]:
    """JSON-able dict of a wire.Hello (or a dict already)."""
    if isinstance(hello, Mapping):
        return dict(hello)
    d = dataclasses.asdict(hello)
    d["limits"] = dict(hello.limits)
    d["firmware_version"] = list(hello.firmware_version)
    return d


def stream_record_dtype(stream: Any) -> np.dtype[Any]:
    """Dataset dtype of a stream: its record fields + t_dev_s + sample_index."""
    base = stream.dtype
    fields = [(n, base.fields[n][0].str) for n in base.names]
    return np.dtype(fields + EXTRA_FIELDS)


def _json(obj: Any) -> str:
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
        flush_interval_s: float = 0.5,
        chunk_records: int = 8192,
        background: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._blocks: dict[str, list[np.ndarray]] = {}
        self._gaps: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self._markers: list[tuple[Any, ...]] = []
        self.records_written: dict[str, int] = {}
        self.bytes_written = 0
        self.lost_samples: dict[str, int] = {}
        self._closed = False
        self._unsubscribe: list[Any] = []

        hd = hello_to_dict(hello)
        self._streams = {s.name: s for s in hello.streams}
        self._dtypes = {name: stream_record_dtype(s) for name, s in self._streams.items()}
        f = h5py.File(self.path, "w", libver="latest")
        f.attrs["format"] = "stressrig-recording"
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["hello"] = _json(hd)
        f.attrs["board_id"] = str(hd.get("board_id", ""))
        f.attrs["unique_id"] = str(hd.get("unique_id", ""))
        f.attrs["firmware_version"] = ".".join(str(v) for v in hd.get("firmware_version", ()))
        f.attrs["protocol_version"] = int(hd.get("protocol_version", defs.PROTOCOL_VERSION))
        f.attrs["calibration"] = _json(dict(calibration or {}))
        f.attrs["protocol"] = _json(dict(protocol) if protocol is not None else None)
        f.attrs["meta"] = _json(dict(meta or {}))
        f.attrs["created_utc"] = _dt.datetime.now(_dt.UTC).isoformat()
        f.attrs["gap_kinds"] = _json(GAP_KINDS)
        g = f.create_group("streams")
        for name, s in self._streams.items():
            dt = self._dtypes[name]
            chunk = max(64, min(chunk_records, (1 << 20) // dt.itemsize))
            d = g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(chunk,))
            d.attrs["stream_id"] = int(s.id)
            d.attrs["rate_hz"] = float(s.rate_hz)
            d.attrs["record_format"] = str(s.record_format)
            d.attrs["fields"] = _json([dataclasses.asdict(fi) for fi in s.fields])
            self.records_written[name] = 0
            self.lost_samples[name] = 0
        for name, dt, chunk in (
            ("gaps", GAP_DTYPE, 256),
            ("events", EVENT_DTYPE, 1024),
            ("markers", MARKER_DTYPE, 64),
        ):
            f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(chunk,))
        f.swmr_mode = True
        self._file = f
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
            self._thread.start()

    # ---- wiring to a rig ---------------------------------------------------------------------
    @classmethod
    def attach(cls, rig: Any, path: str | Path, **kwargs: Any) -> Recorder:
        """A recorder fed by the rig's callbacks (blocks, gaps, events) from now on."""
        kwargs.setdefault("meta", {})
        kwargs["meta"] = {**kwargs["meta"], "url": rig.link.url}
        rec = cls(path, rig.hello, **kwargs)
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
            self._gaps.append((gap.stream_id, gap.first_index, gap.count, gap.t_s, kind))
            if gap.count > 0 and gap.stream in self.lost_samples:
                self.lost_samples[gap.stream] += int(gap.count)

    def add_event(self, ev: Any) -> None:
        with self._lock:
            self._events.append((ev.t_s, ev.code, ev.cause, ev.index & 0xFFFF, ev.value))

    def add_marker(self, t_dev_s: float, text: str) -> None:
        """A host-side marker (protocol step, calibration hold) at a device time."""
        with self._lock:
            self._markers.append((t_dev_s, text.encode()[:96]))

    # ---- writing -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> None:
        """Write everything buffered and flush the file."""
        with self._lock:
            blocks, self._blocks = self._blocks, {}
            gaps, self._gaps = self._gaps, []
            events, self._events = self._events, []
            markers, self._markers = self._markers, []
        f = self._file
        if not f:
            return
        for name, parts in blocks.items():
            data = parts[0] if len(parts) == 1 else np.concatenate(parts)
            self._append(f["streams"][name], data)
            self.records_written[name] += len(data)
            self.bytes_written += data.nbytes
        for name, rows, dt in (
            ("gaps", gaps, GAP_DTYPE),
            ("events", events, EVENT_DTYPE),
            ("markers", markers, MARKER_DTYPE),
        ):
            if rows:
                self._append(f[name], np.array(rows, dtype=dt))
        f.flush()

    @staticmethod
    def _append(dset: h5py.Dataset, data: np.ndarray) -> None:
        n0 = dset.shape[0]
        dset.resize((n0 + len(data),))
        dset[n0:] = data

    def close(self, **final_attrs: Any) -> None:
        """Flush, close, and mark the file complete (with `final_attrs` as JSON attrs)."""
        if self._closed:
            return
        self._closed = True
        for unsub in self._unsubscribe:
            unsub()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        self._file.close()
        # attributes cannot change in SWMR mode: reopen normally to seal the file
        with h5py.File(self.path, "r+") as f:
            f.attrs["complete"] = True
            f.attrs["closed_utc"] = _dt.datetime.now(_dt.UTC).isoformat()
            f.attrs["lost_samples"] = _json(self.lost_samples)
            for k, v in final_attrs.items():
                f.attrs[k] = _json(v)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
