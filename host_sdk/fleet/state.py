"""What the supervisor writes down so that a new one can take over: one JSON file per rig
(<out_dir>/.fleet/<rig>.json), and one lock per fleet so two supervisors never run it.

The state file is rewritten atomically (write + rename) at every step change and about once
a second: the board, port and unique id, the recording, the protocol (and a hash of its
file, so a changed protocol is never resumed), the step running and its device start
time, the device time last seen, the phase. A supervisor killed at any moment leaves the
previous complete version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FleetLock", "RigState", "file_sha256", "load_state", "save_state"]


@dataclass
class RigState:
    rig: str
    port: str
    phase: str = "pending"  # pending, connecting, running, completed, stopped, failed, ...
    unique_id: str = ""
    device: str = ""
    recording: str = ""
    protocol: str = ""
    protocol_sha256: str = ""
    step_index: int = -1
    step_label: str = ""
    step_t0_s: float | None = None
    t_dev_s: float = 0.0
    attaches: int = 0  # 1 for the first run, +1 per supervisor that reattached
    supervisor_pid: int = 0
    updated_utc: str = ""
    message: str = ""
    lost: int = 0
    outcome: dict[str, Any] | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)  # supervisor absences
    # the protocol's step rows and step markers, as written to the recording: a killed
    # writer may not have flushed its last ones, the next supervisor puts them back
    steps_done: list[dict[str, Any]] = field(default_factory=list)
    markers: list[list[Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RigState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def state_path(state_dir: Path, rig: str) -> Path:
    return state_dir / f"{rig}.json"


def load_state(state_dir: Path, rig: str) -> RigState | None:
    try:
        return RigState.from_dict(json.loads(state_path(state_dir, rig).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save_state(state_dir: Path, st: RigState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    st.updated_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = state_path(state_dir, st.rig)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(st.to_dict(), indent=1, default=str))
    os.replace(tmp, path)


class FleetLock:
    """One supervisor per fleet: an flock on <state_dir>/supervisor.lock (released by the
    kernel when the process dies, so a killed supervisor never blocks its successor)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "supervisor.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            raise RuntimeError(
                f"another supervisor runs this fleet ({holder or 'pid unknown'}; lock "
                f"{self.path}). Stop it first, or watch it: stressrig watch --mqtt ..."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
