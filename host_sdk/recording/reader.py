"""Load a recording back into numpy, salvaging what is intact from damaged files.

A file whose writer was killed opens through SWMR and holds everything up to its last
flush. A file cut short (copy interrupted, disk full) is padded in a temporary copy so HDF5
opens it, and only chunks that lie wholly inside the original bytes are kept. Whatever
could not be read is listed in `Recording.problems`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from host_sdk.recording.writer import EVENT_DTYPE, GAP_DTYPE, GAP_KINDS, MARKER_DTYPE
from protocol import defs

__all__ = ["Recording", "RecordingError", "StreamData", "load_recording"]


class RecordingError(OSError):
    """Nothing usable could be read from the file."""


@dataclass
class StreamData:
    name: str
    stream_id: int
    records: np.ndarray  # structured: raw fields + t_dev_s + sample_index
    fields: list[dict[str, Any]]  # name, unit, scale, offset (from the HELLO)
    rate_hz: float

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
    complete: bool
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

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

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "board_id": self.board_id,
            "unique_id": self.unique_id,
            "firmware_version": self.firmware_version,
            "complete": self.complete,
            "problems": list(self.problems),
            "streams": {
                n: {
                    "records": len(s),
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


def _read_dataset(
    dset: h5py.Dataset, what: str, problems: list[str], valid_bytes: int | None
) -> np.ndarray:
    """Read a 1-D dataset; on damage, read chunk by chunk and keep the intact prefix."""
    n = int(dset.shape[0])
    limit = n
    if valid_bytes is not None and dset.chunks is not None and n:
        # keep only chunks stored wholly inside the bytes that exist on disk
        chunk = int(dset.chunks[0])
        limit = 0
        for k in range((n + chunk - 1) // chunk):
            try:
                info = dset.id.get_chunk_info_by_coord((k * chunk,))
            except Exception:  # noqa: BLE001
                break
            if info.byte_offset is None or info.byte_offset + info.size > valid_bytes:
                break
            limit = min(n, (k + 1) * chunk)
    if limit == n:
        try:
            return np.asarray(dset[:])
        except Exception as e:  # noqa: BLE001 - fall through to chunk-wise salvage
            first_error = str(e)
    else:
        first_error = "file truncated"
    parts: list[np.ndarray] = []
    got = 0
    step = int(dset.chunks[0]) if dset.chunks is not None else max(1, n)
    while got < limit:
        try:
            parts.append(np.asarray(dset[got : min(limit, got + step)]))
        except Exception:  # noqa: BLE001
            break
        got = min(limit, got + step)
    problems.append(f"{what}: read {got} of {n} records; the rest is damaged ({first_error})")
    return np.concatenate(parts) if parts else np.empty(0, dtype=dset.dtype)


def _superblock(path: Path) -> tuple[int | None, int]:
    """(stored end-of-file address, consistency flags) of a v2/v3 superblock at offset 0."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if head[:8] != b"\x89HDF\r\n\x1a\n" or len(head) < 36 or head[8] < 2 or head[9] != 8:
        return None, 0
    return int.from_bytes(head[28:36], "little"), head[11]


_M32 = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 hashlittle, as HDF5's H5_checksum_lookup3 computes it."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _M32
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M32
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M32
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M32
        a = (a - c) & _M32
        a ^= _rot(c, 4)
        c = (c + b) & _M32  # noqa: E702
        b = (b - a) & _M32
        b ^= _rot(a, 6)
        a = (a + c) & _M32  # noqa: E702
        c = (c - b) & _M32
        c ^= _rot(b, 8)
        b = (b + a) & _M32  # noqa: E702
        a = (a - c) & _M32
        a ^= _rot(c, 16)
        c = (c + b) & _M32  # noqa: E702
        b = (b - a) & _M32
        b ^= _rot(a, 19)
        a = (a + c) & _M32  # noqa: E702
        c = (c - b) & _M32
        c ^= _rot(b, 4)
        b = (b + a) & _M32  # noqa: E702
        i += 12
        length -= 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M32
    b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    c = (c + int.from_bytes(tail[8:12], "little")) & _M32
    c ^= b
    c = (c - _rot(b, 14)) & _M32  # noqa: E702
    a ^= c
    a = (a - _rot(c, 11)) & _M32  # noqa: E702
    b ^= a
    b = (b - _rot(a, 25)) & _M32  # noqa: E702
    c ^= b
    c = (c - _rot(b, 16)) & _M32  # noqa: E702
    a ^= c
    a = (a - _rot(c, 4)) & _M32  # noqa: E702
    b ^= a
    b = (b - _rot(a, 14)) & _M32  # noqa: E702
    c ^= b
    c = (c - _rot(b, 24)) & _M32  # noqa: E702
    return c


def _repaired_copy(path: Path, eof: int) -> Path:
    """A temporary copy padded to its stored end-of-file, consistency flags cleared (and the
    superblock checksum recomputed), so HDF5 opens it without SWMR: a plain reader fails
    fast on a damaged block where an SWMR reader would retry it for minutes."""
    fd, tmp = tempfile.mkstemp(suffix=".h5", prefix="stressrig-salvage-")
    os.close(fd)
    out = Path(tmp)
    shutil.copyfile(path, out)
    with open(out, "r+b") as fh:
        if out.stat().st_size < eof:
            fh.truncate(eof)
        fh.seek(0)
        sb = bytearray(fh.read(48))
        sb[11] = 0
        sb[44:48] = lookup3(bytes(sb[:44])).to_bytes(4, "little")
        fh.seek(0)
        fh.write(sb)
    return out


def _open(path: Path, problems: list[str]) -> tuple[h5py.File, int | None, Path | None]:
    """Open read-only. Returns (file, bytes present when fewer than the file claims, the
    temporary copy to delete or None).

    A killed writer leaves its SWMR consistency flags set and often a stored end-of-file
    beyond the bytes written; a cut copy has fewer bytes than it claims. Both are read from
    a repaired temporary copy, keeping only chunks that lie within the real bytes.
    """
    size = path.stat().st_size
    eof, flags = _superblock(path)
    short = eof is not None and size < eof
    tmp: Path | None = None
    target = path
    if eof is not None and (short or flags):
        tmp = target = _repaired_copy(path, eof)
    try:
        f = h5py.File(target, "r")
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise RecordingError(f"{path}: not a readable stressrig recording ({e})") from e
    if short and not flags:
        problems.append(f"file is truncated: {size} of {eof} bytes present")
    return f, (size if short else None), tmp


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


def load_recording(path: str | Path) -> Recording:
    """Load everything readable from a recording; see `Recording.problems` for the rest."""
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    problems: list[str] = []
    f, valid_bytes, tmp = _open(path, problems)
    try:
        if _attr_str(f, "format", problems) != "stressrig-recording":
            problems.append("not marked as a stressrig recording (format attribute missing)")
        complete = bool(f.attrs.get("complete", False))
        if not complete:
            problems.append(
                "recording was not closed (writer killed or still running): data up to the "
                "last flush is present"
            )
        streams: dict[str, StreamData] = {}
        try:
            group = f["streams"]
            names = list(group.keys())
        except Exception as e:  # noqa: BLE001
            problems.append(f"stream group unreadable: {e}")
            names = []
        for name in names:
            try:
                d = group[name]
                fields = json.loads(d.attrs.get("fields", "[]"))
                sid = int(d.attrs.get("stream_id", -1))
                rate = float(d.attrs.get("rate_hz", 0.0))
            except Exception as e:  # noqa: BLE001
                problems.append(f"stream {name!r} unreadable: {e}")
                continue
            recs = _read_dataset(d, f"stream {name!r}", problems, valid_bytes)
            if not complete:
                recs, _ = _trim_fill(recs, "sample_index")
            streams[name] = StreamData(name, sid, recs, fields, rate)
        tables: dict[str, np.ndarray] = {}
        for name, dt in (("gaps", GAP_DTYPE), ("events", EVENT_DTYPE), ("markers", MARKER_DTYPE)):
            try:
                tables[name] = _read_dataset(f[name], name, problems, valid_bytes)
                if not complete:
                    key = {"gaps": "t_dev_s", "events": "code", "markers": "text"}[name]
                    tables[name], _ = _trim_fill(tables[name], key)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{name} unreadable: {e}")
                tables[name] = np.empty(0, dtype=dt)
        rec = Recording(
            path=path,
            streams=streams,
            gaps=tables["gaps"],
            events=tables["events"],
            markers=tables["markers"],
            hello=_attr_json(f, "hello", {}, problems),
            calibration=_attr_json(f, "calibration", {}, problems),
            protocol=_attr_json(f, "protocol", None, problems),
            firmware_version=_attr_str(f, "firmware_version", problems),
            board_id=_attr_str(f, "board_id", problems),
            unique_id=_attr_str(f, "unique_id", problems),
            meta=_attr_json(f, "meta", {}, problems),
            complete=complete,
            problems=problems,
        )
    finally:
        f.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return rec


GAP_KIND_NAMES = {v: k for k, v in GAP_KINDS.items()}
