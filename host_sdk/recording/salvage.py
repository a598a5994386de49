"""Salvage for damaged recordings: a file cut short (copy interrupted, disk full) or left
by a killed writer is read from a repaired temporary copy, keeping only what is intact.

Format 2 files are written closed-between-flushes with a version 2 superblock and need
no repair after a kill; format 1 files (SWMR) left their consistency flags set, and any
file can be truncated. `repair_in_place(path)` clears the flags of such a file so that any
HDF5 tool opens it (what `h5clear -s` does).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np

__all__ = ["lookup3", "open_for_reading", "read_dataset", "repair_in_place"]


def read_dataset(
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


def _superblock(path: Path) -> tuple[int | None, int, int]:
    """(stored end-of-file address, consistency flags, superblock version) of the superblock
    at offset 0; (None, 0, -1) when it is not one this reads (8-byte addresses only)."""
    with open(path, "rb") as fh:
        head = fh.read(56)
    if head[:8] != b"\x89HDF\r\n\x1a\n" or len(head) < 56:
        return None, 0, -1
    version = head[8]
    if version in (0, 1) and head[13] == 8:
        # v0/v1: base, free-space, end-of-file addresses follow 16 (v1: 20) bytes of header
        at = 40 if version == 0 else 44
        return int.from_bytes(head[at : at + 8], "little"), 0, version
    if version >= 2 and head[9] == 8:
        return int.from_bytes(head[28:36], "little"), head[11], version
    return None, 0, -1


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


def _clear_flags(fh: BinaryIO) -> None:
    """Clear the v2/v3 superblock's consistency flags and recompute its checksum."""
    fh.seek(0)
    sb = bytearray(fh.read(48))
    if sb[8] < 2:
        return
    sb[11] = 0
    sb[44:48] = lookup3(bytes(sb[:44])).to_bytes(4, "little")
    fh.seek(0)
    fh.write(sb)


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
        _clear_flags(fh)
    return out


def repair_in_place(path: str | Path) -> bool:
    """Clear the "file is already open for write" flags a killed SWMR writer (format 1)
    left, so plain h5py, HDFView and h5dump open the file (as `h5clear -s FILE` does).
    Returns True when there was something to clear. Data is not touched."""
    p = Path(path)
    _eof, flags, _v = _superblock(p)
    if not flags:
        return False
    with open(p, "r+b") as fh:
        _clear_flags(fh)
    return True


def open_for_reading(
    path: Path, problems: list[str], error: type[Exception]
) -> tuple[h5py.File, int | None, Path | None]:
    """Open read-only. Returns (file, bytes present when fewer than the file claims, the
    temporary copy to delete or None).

    A killed SWMR writer (format 1) leaves its consistency flags set and often a stored
    end-of-file beyond the bytes written; a cut copy has fewer bytes than it claims. Both
    are read from a repaired temporary copy, keeping only chunks within the real bytes.
    """
    size = path.stat().st_size
    eof, flags, _version = _superblock(path)
    short = eof is not None and size < eof
    tmp: Path | None = None
    target = path
    if eof is not None and (short or flags):
        tmp = target = _repaired_copy(path, eof)
    try:
        f = h5py.File(target, "r", locking=False)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise error(f"{path}: not a readable stressrig recording ({e})") from e
    if short and not flags:
        problems.append(f"file is truncated: {size} of {eof} bytes present")
    elif flags:
        problems.append(
            "the writer was killed while the file was open for write; plain HDF5 tools "
            f"refuse it until `python -m host_sdk.recording.repair {path}` (or h5clear -s)"
        )
    return f, (size if short else None), tmp
