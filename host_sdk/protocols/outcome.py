"""How an experiment ended: completed, or stopped (by the board, the user, or an error).

One `Outcome` per run. The protocol runner and `stressrig record` make it, the recording
stores it (`/outcome` in the HDF5 file), and the CLI turns it into its exit code and one
line on stderr, so that `stressrig run ... && stressrig analyze ...` never analyses an
aborted run as a good one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BOARD_STOPS", "CAUSE_TEXT", "Outcome"]

# why the board switched the current off, in a scientist's words
CAUSE_TEXT = {
    "watchdog": "watchdog: the host was silent longer than the watchdog timeout",
    "v_min": "voltage below the safety window",
    "v_max": "voltage above the safety window",
    "compliance": "the current source reached its voltage compliance",
    "over_temp": "temperature above the board's max_temp_c",
    "over_force": "stack force above the board's max_force_n",
    "over_current": "current above the board's limit",
    "sensor_fault": "a sensor fault (open/short thermistor, load cell not ready)",
    "boot": "the board rebooted (power, reset or crash)",
    "link_lost": "the link to the board was lost and could not be reopened",
}
# stopped_by values that mean "the board stopped the run"
BOARD_STOPS = frozenset(CAUSE_TEXT)


@dataclass
class Outcome:
    """`stopped_by`: "completed" (the protocol ran to its end), "duration" (a recording ran
    its time), a latch cause ("watchdog", "v_max", "over_temp", ...), "boot", "link_lost",
    "interrupted" (Ctrl-C, SIGTERM, a stop request) or "error"."""

    completed: bool
    stopped_by: str
    cause: str = ""  # one sentence for a human
    step_index: int | None = None  # the protocol step it stopped in
    step_path: str = ""  # e.g. steps[3]
    step_label: str = ""
    t_dev_s: float | None = None  # device time at the stop

    @property
    def board_stopped(self) -> bool:
        """A latched safety stop, a reboot, or a lost link ended it."""
        return not self.completed and self.stopped_by in BOARD_STOPS

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupted"

    def where(self) -> str:
        parts = []
        if self.step_index is not None:
            step = f"step {self.step_index}"
            if self.step_path:
                step += f" ({self.step_path}"
                step += f" '{self.step_label}')" if self.step_label else ")"
            parts.append(step)
        if self.t_dev_s is not None:
            parts.append(f"device time {self.t_dev_s:.3f} s")
        return ", ".join(parts)

    def line(self) -> str:
        """One line for stderr: what ended the run, where, when."""
        if self.completed:
            head = "completed"
        elif self.board_stopped:
            head = f"the board stopped the run: {self.cause or self.stopped_by}"
        elif self.interrupted:
            head = f"interrupted: {self.cause or 'stopped by the user'}"
        else:
            head = f"failed: {self.cause or self.stopped_by}"
        where = self.where()
        return head + (f" (at {where})" if where else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @classmethod
    def board_stop(cls, stopped_by: str, **where: Any) -> Outcome:
        return cls(False, stopped_by, CAUSE_TEXT.get(stopped_by, stopped_by), **where)
