"""Taking over a running rig after a supervisor died: the clock, the recording, the gap.

- Device time: the wire carries a u32 µs clock (wraps every 71.6 min). A new client unwraps
  it from its first message, so after a long run it would restart at 0..4295 s. STATUS
  carries the board's uptime in ms (u32: 49 days): `align_device_clock` shifts the client's
  unwrapping by whole wraps so that device time is the time since the board booted, for
  the first supervisor and every later one alike.
- The recording: `AppendingRecorder` continues the HDF5 file (format 2) the dead supervisor
  wrote: columns trimmed to what was intact, `complete` cleared, new samples appended.
- The gap: the board's sample indices continue while no supervisor listens, so the first
  block of each stream after the takeover tells exactly how many samples were missed; it
  becomes a `link_down` gap row with that count (a reboot restarts the indices: count -1,
  `board_reset`), and a marker says how long the supervisor was away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import threading
from pathlib import Path
from typing import Any

import h5py

from host_sdk.client import GapMark
from host_sdk.recording import Recorder, load_recording
from host_sdk.recording.layout import TABLES

__all__ = [
    "AppendingRecorder",
    "RecordingTail",
    "ShiftedSteps",
    "StepTap",
    "align_device_clock",
    "restore_rows",
    "trim",
]

_WRAP_US = 1 << 32


def align_device_clock(rig: Any, uptime_ms: int) -> None:
    """Make the rig's device time the board's uptime (whole u32 wraps added)."""
    up_us = int(uptime_ms) * 1000
    t = rig.time
    lock = getattr(t, "_lock", None) or contextlib.nullcontext()
    with lock:
        if t.last_u32 is None:
            # nothing unwrapped yet: the next value t_u32 ~ up_us mod 2**32
            t.offset_us = (up_us // _WRAP_US) * _WRAP_US
            return
        k = round((up_us - t.last_us) / _WRAP_US)
        if k:
            t.last_us += k * _WRAP_US
            t.offset_us += k * _WRAP_US


@dataclasses.dataclass
class RecordingTail:
    """What an interrupted recording holds at its end."""

    records: dict[str, int]  # stream -> rows intact
    next_index: dict[str, int]  # stream -> the sample index expected next
    t_dev_s: float  # newest device time in the file
    lost: dict[str, int]


def trim(path: Path) -> RecordingTail:
    """Cut every column of the file to its intact rows (a writer killed mid-flush may have
    grown some columns before filling them) and say where it ends."""
    rec = load_recording(path)
    records = {n: len(s) for n, s in rec.streams.items()}
    nxt: dict[str, int] = {}
    t_last = -math.inf
    for name, s in rec.streams.items():
        if len(s):
            nxt[name] = int(s.records["sample_index"][-1]) + 1
            t_last = max(t_last, float(s.t_s[-1]))
    tables = {"gaps": rec.gaps, "events": rec.events, "markers": rec.markers, "steps": rec.steps}
    with h5py.File(path, "r+", locking=False) as f:
        for name, n in records.items():
            for col in f["streams"][name].values():
                if col.shape[0] != n:
                    col.resize((n,))
        for name in TABLES:
            n = len(tables.get(name, ()))
            if name in f:
                for col in f[name].values():
                    if col.shape[0] != n:
                        col.resize((n,))
    return RecordingTail(records, nxt, t_last if math.isfinite(t_last) else 0.0, rec.lost_samples())


class AppendingRecorder(Recorder):
    """A Recorder that continues an existing recording instead of creating one."""

    def __init__(self, path: str | Path, hello: Any, **kwargs: Any) -> None:
        path = Path(path)
        layout = path.with_name(f".{path.name}.layout.h5")
        kwargs["background"] = False
        # the parent computes columns and dtypes from the HELLO exactly as it did for the
        # file; it writes that layout to a scratch file, which goes
        super().__init__(layout, hello, **kwargs)
        layout.unlink(missing_ok=True)
        self.path = path
        self.tail = trim(path)
        for name in self.records_written:
            self.records_written[name] = self.tail.records.get(name, 0)
            self.lost_samples[name] = self.tail.lost.get(name, 0)
        with h5py.File(path, "r+", locking=False) as f:
            f.attrs["complete"] = False
            f["outcome"].attrs["stopped_by"] = "running"
            f["outcome"].attrs["completed"] = False
        self.missed: dict[str, int] = {}  # stream -> samples not recorded while away
        self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
        self._thread.start()

    @classmethod
    def attach(cls, rig: Any, path: str | Path, **kwargs: Any) -> AppendingRecorder:
        """Continue `path` with the rig's blocks, gaps and events; the first block of each
        stream marks the gap since the file's last sample of that stream."""
        rec = cls(path, rig.hello, **kwargs)
        rec._rig = rig
        expected = dict(rec.tail.next_index)

        def on_block(block: Any) -> None:
            nxt = expected.pop(block.stream, None)
            if nxt is not None and block.first_index != nxt:
                reset = block.first_index < nxt
                count = -1 if reset else block.first_index - nxt
                kind = "board_reset" if reset else "link_down"
                rec.add_gap(
                    GapMark(block.stream, block.stream_id, nxt, count, float(block.t_s[0]), kind)
                )
                rec.missed[block.stream] = count
            rec.add_block(block)

        rec._unsubscribe = [
            rig.on_block(on_block),
            rig.on_gap(rec.add_gap),
            rig.on_event(rec.add_event),
        ]
        return rec


_STEP_TEXT = re.compile(r"^step (\d+)")


class ShiftedSteps:
    """A recorder seen by `run_protocol` on the tail of a protocol (steps k..end): its step
    numbers become those of the whole protocol. The outcome is kept for the caller."""

    def __init__(self, rec: Any, offset: int) -> None:
        self.rec = rec
        self.offset = offset
        self.outcome: Any = None

    def add_marker(self, t_dev_s: float, text: str) -> None:
        text = _STEP_TEXT.sub(lambda m: f"step {int(m.group(1)) + self.offset}", text)
        self.rec.add_marker(t_dev_s, text)

    def add_step(self, step: Any) -> None:
        self.rec.add_step(dataclasses.replace(step, index=step.index + self.offset))

    def set_outcome(self, outcome: Any) -> None:
        if outcome is not None and outcome.step_index is not None:
            outcome = dataclasses.replace(outcome, step_index=outcome.step_index + self.offset)
        self.outcome = outcome


class StepTap:
    """Passes step rows and markers to the recorder and keeps a copy in the rig's state
    (`note(kind, row)`), written at once, unlike the recorder's half-second flushes."""

    def __init__(self, rec: Any, note: Any) -> None:
        self.rec = rec
        self.note = note

    def add_marker(self, t_dev_s: float, text: str) -> None:
        self.rec.add_marker(t_dev_s, text)
        self.note("marker", [float(t_dev_s), str(text)])

    def add_step(self, step: Any) -> None:
        self.rec.add_step(step)
        self.note("step", dataclasses.asdict(step))

    def set_outcome(self, outcome: Any) -> None:
        self.rec.set_outcome(outcome)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rec, name)


def restore_rows(rec: Any, path: Path, steps: list[dict[str, Any]], markers: list[Any]) -> int:
    """Add the step rows and markers the state file has but the recording lost (its writer
    was killed before flushing them); returns how many."""
    from host_sdk.protocols import StepResult

    r = load_recording(path)
    have_steps = {int(i) for i in r.steps["index"]}
    have_marks = {(round(float(t), 6), bytes(x).decode(errors="replace")) for t, x in r.markers}
    n = 0
    for d in steps:
        if int(d["index"]) not in have_steps:
            rec.add_step(StepResult(**d))
            n += 1
    for t, text in markers:
        if (round(float(t), 6), str(text)[:96]) not in have_marks:
            rec.add_marker(float(t), str(text))
            n += 1
    return n
