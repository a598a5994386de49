"""Load a recording back into numpy, salvaging what is intact from damaged files.

A file whose writer was killed holds everything up to its last flush. A file cut short
(copy interrupted, disk full) is padded in a temporary copy so HDF5 opens it, and only
chunks that lie wholly inside the original bytes are kept (host_sdk.recording.salvage).
Whatever could not be read is listed in `Recording.problems`; how the experiment ended is
`Recording.outcome`. Reads format 2 (a group of 1-D datasets per stream and table) and
format 1 (one compound dataset each).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from host_sdk.recording.layout import (
    GAP_KIND_NAMES,
    STEP_DTYPE,
    TABLE_KEYS,
    TABLES,
)
from host_sdk.recording.salvage import open_for_reading, read_dataset
from protocol import defs

__all__ = ["GAP_KIND_NAMES", "Recording", "RecordingError", "StreamData", "load_recording"]


class RecordingError(OSError):
    """Nothing usable could be read from the file."""


@dataclass
class StreamData:
    name: str
    stream_id: int
    records: np.ndarray  # structured: raw fields + t_dev_s + sample_index
    fields: list[dict[str, Any]]  # name, unit, scale, offset (from the HELLO)
    rate_hz: float  # the rate the stream was configured to (as the board applied it)
    roles: dict[str, str] = field(default_factory=dict)  # FBG field -> sensing/reference

    @property
    def t_s(self) -> np.ndarray:
        """Unwrapped device time of each record, seconds."""
        return np.asarray(self.records["t_dev_s"])

    def __len__(self) -> int:
        return int(self.records.shape[0])

    def physical(self, name: str) -> np.ndarray:
        """raw * scale + offset in the unit the board announced for the field."""
        for f in self.fields:
            if f["name"] == name:
                return np.asarray(self.records[name], dtype=np.float64) * float(f["scale"]) + float(
                    f["offset"]
                )
        raise KeyError(f"stream {self.name!r} has no field {name!r}")

    def unit(self, name: str) -> str:
        for f in self.fields:
            if f["name"] == name:
                return str(f["unit"])
        raise KeyError(name)


@dataclass
class Recording:
    path: Path
    streams: dict[str, StreamData]
    gaps: np.ndarray
    events: np.ndarray
    markers: np.ndarray
    hello: dict[str, Any]
    calibration: dict[str, Any]
    protocol: dict[str, Any] | None
    firmware_version: str
    board_id: str
    unique_id: str
    meta: dict[str, Any]
    complete: bool  # the writer closed the file (not: the experiment completed)
    problems: list[str] = field(default_factory=list)
    outcome: dict[str, Any] | None = None  # how the experiment ended (None: not stored)
    cell: dict[str, Any] = field(default_factory=dict)  # electrode/stack area, label
    steps: np.ndarray = field(default_factory=lambda: np.empty(0, STEP_DTYPE))
    start_utc: str = ""  # ISO 8601 UTC of device time 0 (when start_known)
    start_known: bool = False  # start_utc was measured from the samples
    sdk_version: str = ""
    format_version: int = 1

    @property
    def intact(self) -> bool:
        """The file held everything it claims (says nothing about the experiment)."""
        return not self.problems

    @property
    def completed(self) -> bool | None:
        """The experiment ran to its end; None when the file does not say (older files)."""
        if self.outcome is None:
            return None
        return bool(self.outcome.get("completed"))

    @property
    def grating_roles(self) -> dict[str, str]:
        fbg = self.streams.get("fbg")
        return dict(fbg.roles) if fbg is not None else {}

    def lost_samples(self) -> dict[str, int]:
        """Samples counted lost per stream (gaps of known size)."""
        out = {name: 0 for name in self.streams}
        ids = {s.stream_id: name for name, s in self.streams.items()}
        for g in self.gaps:
            if g["count"] > 0 and int(g["stream_id"]) in ids:
                out[ids[int(g["stream_id"])]] += int(g["count"])
        return out

    def event_name(self, code: int) -> str:
        return defs.EVENT_NAMES.get(int(code), f"event_{code}")

    def outcome_line(self) -> str | None:
        """One line when the experiment did not complete (None when it did)."""
        o = self.outcome
        if o is None or o.get("completed"):
            return None
        from host_sdk.protocols.outcome import Outcome

        out = Outcome.from_dict(o)
        if out.step_index is not None and out.step_index < 0:
            out.step_index = None
        if out.t_dev_s is not None and not math.isfinite(out.t_dev_s):
            out.t_dev_s = None
        return "the experiment did not complete: " + out.line()

    def to_xarray(self) -> Any:
        """An xarray.Dataset of the recording in SI units (see host_sdk.recording.views)."""
        from host_sdk.recording.views import to_xarray

        return to_xarray(self)

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "board_id": self.board_id,
            "unique_id": self.unique_id,
            "firmware_version": self.firmware_version,
            "sdk_version": self.sdk_version,
            "start_utc": self.start_utc,
            "file_closed": self.complete,
            "completed": self.completed,
            "outcome": self.outcome,
            "cell": self.cell,
            "problems": list(self.problems),
            "streams": {
                n: {
                    "records": len(s),
                    "rate_hz": s.rate_hz,
                    "duration_s": float(s.t_s[-1] - s.t_s[0]) if len(s) > 1 else 0.0,
                }
                for n, s in self.streams.items()
            },
            "events": int(len(self.events)),
            "gaps": int(len(self.gaps)),
            "lost_samples": self.lost_samples(),
        }


def _attr_json(f: h5py.File, name: str, default: Any, problems: list[str]) -> Any:
    try:
        raw = f.attrs.get(name)
        if raw is None:
            return default
        return json.loads(raw)
    except Exception as e:  # noqa: BLE001 - damaged attribute
        problems.append(f"attribute {name!r} unreadable: {e}")
        return default


def _attr_str(f: h5py.File, name: str, problems: list[str]) -> str:
    try:
        v = f.attrs.get(name, "")
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception as e:  # noqa: BLE001
        problems.append(f"attribute {name!r} unreadable: {e}")
        return ""


def _trim_fill(a: np.ndarray, key: str) -> tuple[np.ndarray, int]:
    """Drop trailing rows still at the fill value (extent grown, data never written)."""
    if a.size == 0:
        return a, 0
    filled = np.asarray(a[key]) == np.zeros(1, dtype=a.dtype)[key][0]
    if key == "sample_index":
        filled &= np.asarray(a["t_dev_s"]) == 0
    if not filled[-1]:
        return a, 0
    real = np.flatnonzero(~filled)
    keep = int(real[-1]) + 1 if real.size else (1 if key == "sample_index" and a.size else 0)
    if key == "sample_index" and real.size == 0:
        keep = 0
    return a[:keep], int(a.size - keep)


def _read_table(
    group: h5py.Group,
    dt: np.dtype[Any],
    cols: list[tuple[str, str]],
    what: str,
    problems: list[str],
    valid_bytes: int | None,
) -> np.ndarray:
    """A format-2 table group (one dataset per column) as one structured array; columns
    of unequal length (a writer killed mid-flush) are cut to the shortest."""
    parts = {}
    for name, fld in cols:
        if name in group:
            parts[fld] = read_dataset(group[name], f"{what}/{name}", problems, valid_bytes)
    n = min((len(v) for v in parts.values()), default=0)
    out = np.zeros(n, dtype=dt)
    for fld, v in parts.items():
        out[fld] = v[:n]
    return out


def _group_attrs(f: h5py.File, name: str, problems: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        if name not in f:
            return out
        for k, v in f[name].attrs.items():
            if isinstance(v, np.generic):
                v = v.item()
            out[k] = v.decode() if isinstance(v, bytes) else v
    except Exception as e:  # noqa: BLE001 - a damaged group: report, read the rest
        if problems is not None:
            problems.append(f"/{name} unreadable: {e}")
    return out


def _outcome(f: h5py.File, complete: bool, problems: list[str]) -> dict[str, Any] | None:
    attrs = _group_attrs(f, "outcome", problems)
    if not attrs:
        return None
    if "incidents" in attrs:
        try:
            attrs["incidents"] = json.loads(attrs["incidents"])
        except (TypeError, ValueError):
            pass
    attrs["completed"] = bool(attrs.get("completed", False))
    if not complete and attrs.get("stopped_by") == "running":
        attrs["stopped_by"] = "unknown"
        attrs["cause"] = "the writer was killed before it could store how the run ended"
    return attrs


def _read_streams(
    f: h5py.File, version: int, problems: list[str], valid_bytes: int | None, complete: bool
) -> dict[str, StreamData]:
    from host_sdk.recording.layout import stream_record_dtype

    streams: dict[str, StreamData] = {}
    try:
        group = f["streams"]
        names = list(group.keys())
    except Exception as e:  # noqa: BLE001
        problems.append(f"stream group unreadable: {e}")
        return streams
    for name in names:
        try:
            d = group[name]
            fields = json.loads(d.attrs.get("fields", "[]"))
            sid = int(d.attrs.get("stream_id", -1))
            rate = float(d.attrs.get("rate_hz", 0.0))
        except Exception as e:  # noqa: BLE001
            problems.append(f"stream {name!r} unreadable: {e}")
            continue
        roles: dict[str, str] = {}
        if isinstance(d, h5py.Group):
            names_in = [c for c in d if c not in ("time", "sample_index")]
            from types import SimpleNamespace

            info = SimpleNamespace(dtype=np.dtype([(c, d[c].dtype) for c in names_in]), name=name)
            dt = stream_record_dtype(info)
            cols = [("time", "t_dev_s"), ("sample_index", "sample_index")]
            cols += [(c, c) for c in names_in]
            recs = _read_table(d, dt, cols, f"stream {name!r}", problems, valid_bytes)
            for c in names_in:
                role = d[c].attrs.get("role")
                if role is not None:
                    roles[c] = role.decode() if isinstance(role, bytes) else str(role)
        else:
            recs = read_dataset(d, f"stream {name!r}", problems, valid_bytes)
        if not complete:
            recs, _ = _trim_fill(recs, "sample_index")
        streams[name] = StreamData(name, sid, recs, fields, rate, roles)
    return streams


def load_recording(path: str | Path) -> Recording:
    """Load everything readable from a recording; see `Recording.problems` for the rest."""
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    problems: list[str] = []
    f, valid_bytes, tmp = open_for_reading(path, problems, RecordingError)
    try:
        if _attr_str(f, "format", problems) != "stressrig-recording":
            problems.append("not marked as a stressrig recording (format attribute missing)")
        version = int(f.attrs.get("format_version", 1))
        complete = bool(f.attrs.get("complete", False))
        if not complete:
            problems.append(
                "recording was not closed (writer killed or still running): data up to the "
                "last flush is present"
            )
        streams = _read_streams(f, version, problems, valid_bytes, complete)
        tables: dict[str, np.ndarray] = {}
        for name, (dt, cols) in TABLES.items():
            if name not in f:
                tables[name] = np.empty(0, dtype=dt)
                continue
            try:
                obj = f[name]
                if isinstance(obj, h5py.Group):
                    pairs = [(c.name, c.field) for c in cols]
                    tables[name] = _read_table(obj, dt, pairs, name, problems, valid_bytes)
                else:
                    tables[name] = read_dataset(obj, name, problems, valid_bytes)
                if not complete:
                    tables[name], _ = _trim_fill(tables[name], TABLE_KEYS[name])
            except Exception as e:  # noqa: BLE001
                problems.append(f"{name} unreadable: {e}")
                tables[name] = np.empty(0, dtype=dt)
        cal = _group_attrs(f, "calibration", problems)
        calibration = (
            json.loads(cal["json"]) if "json" in cal else _attr_json(f, "calibration", {}, problems)
        )
        rec = Recording(
            path=path,
            streams=streams,
            gaps=tables["gaps"],
            events=tables["events"],
            markers=tables["markers"],
            hello=_attr_json(f, "hello", {}, problems),
            calibration=calibration,
            protocol=_attr_json(f, "protocol", None, problems),
            firmware_version=_attr_str(f, "firmware_version", problems),
            board_id=_attr_str(f, "board_id", problems),
            unique_id=_attr_str(f, "unique_id", problems),
            meta=_attr_json(f, "meta", {}, problems),
            complete=complete,
            problems=problems,
            outcome=_outcome(f, complete, problems),
            cell=_group_attrs(f, "cell", problems),
            steps=tables["steps"],
            start_utc=_attr_str(f, "start_utc", problems) or _attr_str(f, "created_utc", problems),
            start_known=_attr_str(f, "start_utc_source", problems).startswith("device"),
            sdk_version=_attr_str(f, "sdk_version", problems),
            format_version=version,
        )
    finally:
        f.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return rec
