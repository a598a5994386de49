"""Sample runs: the records of consecutive in-order sample frames of one stream, joined.

While a feed is scanned, each stream's open run collects memoryview slices of its frames'
records (no copy); at the end of the feed `materialise` copies every stream's records into
one buffer with one `bytearray.join` and one `np.frombuffer`, and hands each run out as a
SampleBlock that is a view of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.wire.messages import Message, SampleBlock


class Run:
    """Sample frames of one stream being merged into one block."""

    __slots__ = ("stream", "first_index", "parts", "flags", "seq", "dtype")

    def __init__(self, stream: int, first_index: int, flags: int, seq: int, dtype: Any) -> None:
        self.stream = stream
        self.first_index = first_index
        self.parts: list[Any] = []
        self.flags = flags
        self.seq = seq
        self.dtype = dtype


def materialise(out: list[Any]) -> tuple[list[Message], int]:
    """Turn the runs in `out` into SampleBlocks, keeping the order of `out`; also return
    how many runs could not be turned into arrays (a layout the checks let through).

    One np.frombuffer per stream and layout for the whole feed (each block a view of it),
    not one per run: at the board's default rates most frames are small, and a call per
    block was a fifth of the decoding time."""
    groups: dict[tuple[int, Any], list[Run]] = {}
    for item in out:
        if type(item) is Run:
            groups.setdefault((item.stream, item.dtype), []).append(item)
    views: dict[int, Any] = {}
    failed = 0
    for (_, dtype), rs in groups.items():
        data = bytearray().join([p for r in rs for p in r.parts])
        try:
            arr = np.frombuffer(data, dtype=dtype)
        except Exception:  # noqa: BLE001 - never raise: the caller counts it
            failed += 1
            continue
        size = dtype.itemsize
        k = 0
        for r in rs:
            n = sum(map(len, r.parts)) // size
            views[id(r)] = arr[k : k + n]
            k += n
    result: list[Message] = []
    for item in out:
        if type(item) is Run:
            records = views.get(id(item))
            if records is not None:
                result.append(
                    SampleBlock(item.stream, item.first_index, records, item.flags, item.seq)
                )
        else:
            result.append(item)
    return result, failed
