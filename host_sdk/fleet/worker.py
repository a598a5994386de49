"""One rig of a fleet: open it, record, run its protocol (or take over a run a previous
supervisor left on the board), keep its state file and the hub up to date.

Each RigWorker is a thread of its own with its own Rig and Recorder; whatever goes wrong
with one rig (unplugged, latched, rebooted, an exception) ends that thread with a phase and
a message and touches no other rig.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import threading
import time
from pathlib import Path
from typing import Any

from host_sdk.client import RigError
from host_sdk.fleet.config import FleetConfig, RigSpec
from host_sdk.fleet.hub import DEAD_PHASES, TERMINAL_PHASES, FleetHub
from host_sdk.fleet.live import LiveSampler
from host_sdk.fleet.state import RigState, file_sha256, load_state, save_state
from host_sdk.protocols.outcome import Outcome

__all__ = ["RigWorker"]

# a rig whose board is gone for longer than this is given up (the Rig reconnects meanwhile)
RECONNECT_S = 30.0


def _phase_of(outcome: Outcome) -> str:
    if outcome.completed:
        return "completed"
    if outcome.interrupted:
        return "interrupted"
    if outcome.stopped_by == "aborted":
        return "aborted"
    if outcome.stopped_by == "fresh_cell":  # waits for a person to put in a new cell
        return "stopped"
    if outcome.board_stopped:
        return "lost" if outcome.stopped_by == "link_lost" else "stopped"
    return "failed"


class RigWorker(threading.Thread):
    """Runs one rig. `abort` stops its protocol (current off, recording closed)."""

    def __init__(
        self, spec: RigSpec, cfg: FleetConfig, hub: FleetHub, *, restart: bool = False
    ) -> None:
        super().__init__(name=f"rig-{spec.name}", daemon=True)
        self.spec = spec
        self.cfg = cfg
        self.hub = hub
        self.restart = restart
        self.abort = threading.Event()
        self.abort_reason = ""
        self.abort_interrupted = False
        self.rig: Any = None
        self.rec: Any = None
        self.live: LiveSampler | None = None
        self.outcome: Outcome | None = None
        self.state = RigState(spec.name, spec.port)
        self._state_lock = threading.Lock()

    # ---- state -------------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        """Change the state, write the state file, tell the hub."""
        with self._state_lock:
            for k, v in fields.items():
                setattr(self.state, k, v)
            rig = self.rig
            if rig is not None and rig.hello is not None:
                self.state.t_dev_s = float(rig.device_time_s)
                self.state.lost = int(sum(rig.lost_samples.values()))
                self.state.device = str(rig.link.device)
            self.state.supervisor_pid = os.getpid()
            save_state(self.cfg.state_dir, self.state)
            snap = self.state.to_dict()
        for bulky in ("gaps", "steps_done", "markers"):  # in the state file, not on MQTT
            snap.pop(bulky, None)
        # a rig whose port is gone (unplugged, reconnecting) is not alive for the dashboard
        link_down = rig is not None and rig.hello is not None and not rig.link.is_open
        alive = snap["phase"] not in DEAD_PHASES and not (
            link_down and snap["phase"] not in TERMINAL_PHASES
        )
        if link_down and snap["phase"] == "running":
            snap["message"] = "link down: reconnecting"
        self.hub.set_state(self.spec.name, alive=alive, **snap)

    def tick(self) -> None:
        """About once a second: device time and lost samples to the state file, one live
        point to the hub."""
        if self.state.phase == "running":
            self.update()
        live = self.live
        if live is not None:
            point = live.take()
            if point is not None:
                self.hub.add_point(self.spec.name, point)

    def request_abort(self, reason: str, interrupted: bool = False) -> bool:
        """Stop this rig's protocol (False: it is not running). `interrupted`: the whole
        supervisor is stopping (Ctrl-C, SIGTERM), not an abort command for this rig."""
        if not self.is_alive() or self.state.phase in TERMINAL_PHASES:
            return False
        self.abort_reason = reason
        self.abort_interrupted = interrupted
        self.abort.set()
        return True

    # ---- the thread ----------------------------------------------------------------------------
    def run(self) -> None:
        prev = load_state(self.cfg.state_dir, self.spec.name)
        try:
            if prev is not None and not self.restart and prev.phase in TERMINAL_PHASES:
                self.state = prev
                self.outcome = Outcome.from_dict(prev.outcome) if prev.outcome else None
                self.update(message=f"done before ({prev.phase}); --restart runs it again")
                return
            if prev is not None and not self.restart and prev.recording:
                self._reattach(prev)
            else:
                self._fresh()
        except Exception as e:  # noqa: BLE001 - one rig's failure is reported, not raised
            self._fail(f"{type(e).__name__}: {e}")
        finally:
            self._cleanup()

    def _fail(self, message: str) -> None:
        t = float(self.rig.device_time_s) if self.rig is not None and self.rig.hello else None
        self.outcome = Outcome(False, "error", message, t_dev_s=t)
        if self.rec is not None:
            with contextlib.suppress(Exception):
                self.rec.set_outcome(self.outcome)
        self.update(phase="failed", message=message, outcome=self.outcome.to_dict())

    def _cleanup(self) -> None:
        if self.live is not None:
            self.live.close()
        rec, self.rec = self.rec, None
        rig = self.rig
        if rec is not None:
            stats: dict[str, Any] = {}
            if rig is not None:
                stats = {"lost_samples": rig.lost_samples, "reconnects": rig.reconnects}
            with contextlib.suppress(Exception):
                rec.close(**stats)
        if rig is not None:
            try:
                rig.close(leave_current_off=self._ours)
            except Exception as e:  # noqa: BLE001 - the board may be gone; say so
                self.update(message=f"{self.state.message}; closing: {e}")

    _ours = True  # False when the port turned out to hold another board: never STOP it

    # ---- opening -------------------------------------------------------------------------------
    def _open(self) -> Any:
        from host_sdk.client import Rig
        from host_sdk.fleet.identity import remember_board
        from host_sdk.fleet.resume import align_device_clock

        self.update(phase="connecting", message=f"opening {self.spec.port}")
        rig = Rig.open(self.spec.port, reconnect_timeout_s=RECONNECT_S)
        self.rig = rig
        remember_board(rig.unique_id, str(rig.link.device), rig.board_id)
        status = rig.status()
        align_device_clock(rig, int(status.uptime_ms))
        return status

    def _recording_path(self) -> Path:
        """<out_dir>/<rig>_<UTC start>.h5: a new run never overwrites an old recording."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.cfg.out_dir / f"{self.spec.name}_{stamp}.h5"
        n = 1
        while path.exists():
            n += 1
            path = self.cfg.out_dir / f"{self.spec.name}_{stamp}_{n}.h5"
        return path

    def _meta(self) -> dict[str, Any]:
        return {
            "command": ["fleet", "run", str(self.cfg.source)],
            "fleet": self.cfg.name,
            "rig": self.spec.name,
            "port": self.spec.port,
        }

    def _cell(self) -> dict[str, Any]:
        p = self.spec.protocol
        cell: dict[str, Any] = {}
        if p.area_m2 is not None:
            cell["electrode_area_m2"] = p.area_m2
        if p.stack_area_m2 is not None:
            cell["stack_area_m2"] = p.stack_area_m2
            cell["stack_area_source"] = "protocol [cell]"
        if p.cell.get("label"):
            cell["label"] = str(p.cell["label"])
        return cell

    def _on_step(self, offset: int) -> Any:
        def cb(i: int, step: Any) -> None:
            rig = self.rig
            self.update(
                step_index=i + offset,
                step_label=step.label or step.kind,
                step_t0_s=float(rig.device_time_s) if rig is not None else None,
                message=f"step {i + offset} {step.kind}",
            )

        return cb

    # ---- a fresh run ---------------------------------------------------------------------------
    def _fresh(self) -> None:
        from host_sdk.recording import Recorder

        proto = self.spec.protocol
        self.state = RigState(
            self.spec.name,
            self.spec.port,
            protocol=str(self.spec.protocol_path),
            protocol_sha256=file_sha256(self.spec.protocol_path),
            attaches=1,
        )
        self._open()
        rig = self.rig
        path = self._recording_path()
        self.rec = Recorder.attach(
            rig,
            path,
            protocol=proto.to_dict(),
            cell=self._cell(),
            meta=self._meta(),
            reference_grating=proto.reference_grating,
        )
        self.live = LiveSampler(rig, proto.stack_area_m2)
        self._hook_events()
        self.update(
            phase="running",
            unique_id=rig.unique_id,
            recording=str(path),
            message="running",
        )
        self._run_steps(proto, 0)

    def _run_steps(self, proto: Any, offset: int) -> None:
        """Run `proto` (the protocol's steps from `offset` on) and finish the run."""
        from host_sdk.fleet.resume import ShiftedSteps
        from host_sdk.protocols import run_protocol

        tap = self._tap()
        rec: Any = tap if offset == 0 else ShiftedSteps(tap, offset)
        extra: dict[str, Any] = {}
        if "fresh_cell" in inspect.signature(run_protocol).parameters:
            # a step that needs a new cell on a real rig: nobody sits at a supervisor's
            # terminal to be asked for each rig, so that rig's run stops there and says why
            extra["fresh_cell"] = "stop"
        result = run_protocol(
            self.rig, proto, recorder=rec, on_step=self._on_step(offset), stop=self.abort, **extra
        )
        outcome = result.outcome if offset == 0 else rec.outcome
        if outcome is not None and outcome.completed and self.state.attaches > 1:
            n, gaps = len(self.spec.protocol.steps), len(self.state.gaps)
            outcome = dataclasses.replace(
                outcome,
                cause=f"all {n} steps ran; taken over {gaps} time(s) after a supervisor "
                "stopped, the gaps are marked in the recording",
            )
        self._finish(outcome or Outcome(False, "error", "the protocol runner said nothing"))

    def _tap(self) -> Any:
        from host_sdk.fleet.resume import StepTap

        return StepTap(self.rec, self._note)

    def _note(self, kind: str, row: Any) -> None:
        with self._state_lock:
            if kind == "step":
                self.state.steps_done.append(row)
            else:
                self.state.markers.append(row)
        self.update()

    def _finish(self, outcome: Outcome) -> None:
        if outcome.stopped_by == "interrupted" and self.abort_reason:
            by = "interrupted" if self.abort_interrupted else "aborted"
            outcome = dataclasses.replace(outcome, stopped_by=by, cause=self.abort_reason)
        self.outcome = outcome
        if self.rec is not None:
            self.rec.set_outcome(outcome)
        self.update(phase=_phase_of(outcome), message=outcome.line(), outcome=outcome.to_dict())

    def _hook_events(self) -> None:
        rig = self.rig

        def on_event(ev: Any) -> None:
            self.hub.add_event(
                self.spec.name,
                {
                    "t_dev_s": ev.t_s,
                    "name": ev.name,
                    "cause": ev.cause_name,
                    "index": ev.index,
                    "value": ev.value,
                    "wall": time.time(),
                },
            )

        rig.on_event(on_event)

    # ---- taking over a run a dead supervisor left ----------------------------------------------
    def _reattach(self, prev: RigState) -> None:
        from host_sdk.fleet.resume import AppendingRecorder, restore_rows
        from protocol import defs

        self.state = dataclasses.replace(prev, attaches=prev.attaches + 1, message="")
        if prev.protocol_sha256 != file_sha256(self.spec.protocol_path):
            raise RuntimeError(
                f"{self.spec.protocol_path} changed since this run started; a changed "
                "protocol is never resumed. Give --restart to start it again"
            )
        away_since = prev.updated_utc
        try:
            status = self._open()
        except (OSError, RigError) as e:
            # not the end of the run: the board may still be running it; the next
            # supervisor tries again (the phase is not a final one)
            self._ours = False  # its run may go on: never STOP it from here
            self.update(phase="unreachable", message=f"cannot take over: {e}")
            return
        rig = self.rig
        if prev.unique_id and rig.unique_id != prev.unique_id:
            self._ours = False
            raise RuntimeError(
                f"{self.spec.port} now answers as board {rig.unique_id}, but the run was on "
                f"{prev.unique_id}; not touching it. Use uid:{prev.unique_id} as the port"
            )
        path = Path(prev.recording)
        self.rec = AppendingRecorder.attach(
            rig, path, meta=self._meta(), reference_grating=self.spec.protocol.reference_grating
        )
        restore_rows(self.rec, path, prev.steps_done, prev.markers)
        self.live = LiveSampler(rig, self.spec.protocol.stack_area_m2)
        self._hook_events()
        up_s = int(status.uptime_ms) / 1000.0
        gap = {"from_t_dev_s": self.rec.tail.t_dev_s, "to_t_dev_s": up_s, "since": away_since}
        self.state.gaps = [*prev.gaps, gap]
        self._tap().add_marker(
            up_s,
            f"supervisor reattached (attach {self.state.attaches}); away since {away_since}",
        )
        i = prev.step_index
        proto = self.spec.protocol
        if up_s + 1.0 < self.rec.tail.t_dev_s:
            self._finish(Outcome.board_stop("boot", t_dev_s=up_s, **self._where(i)))
            return
        if int(status.state) == defs.STATE_LATCHED:
            cause = defs.CAUSE_NAMES.get(int(status.latched_cause), "latched")
            self._finish(Outcome.board_stop(cause, t_dev_s=up_s, **self._where(i)))
            return
        self.update(phase="running", message=f"reattached at step {i}")
        rig.set_streaming(True)
        watched = False
        if int(status.state) == defs.STATE_RUNNING and 0 <= i < len(proto.steps):
            ended = self._watch_step(i)
            if ended is not None:
                self._finish(ended)
                return
            watched = True
        elif self.cfg.on_reattach_idle == "stop" and i < len(proto.steps) - 1:
            self._finish(
                Outcome(
                    False,
                    "error",
                    f"step {i} ended while no supervisor ran (on_reattach_idle = stop)",
                    t_dev_s=up_s,
                    **self._where(i),
                )
            )
            return
        else:
            self._tap().add_marker(up_s, f"step {i} ended while no supervisor ran")
        if i + 1 >= len(proto.steps):
            n = len(proto.steps)
            cause = f"all {n} steps ran; taken over after a supervisor stopped" + (
                "" if watched else "; the last one ended while no supervisor ran"
            )
            self._finish(Outcome(True, "completed", cause, t_dev_s=up_s))
            return
        tail = dataclasses.replace(proto, steps=proto.steps[i + 1 :])
        self._run_steps(tail, i + 1)

    def _where(self, i: int) -> dict[str, Any]:
        steps = self.spec.protocol.steps
        if not 0 <= i < len(steps):
            return {}
        return {"step_index": i, "step_path": steps[i].path, "step_label": steps[i].label}

    def _watch_step(self, i: int) -> Outcome | None:
        """Wait for the end of step `i`, already running on the board; an Outcome when the
        run ends there, None when it completed and the next step may follow."""
        from host_sdk.protocols import StepResult
        from protocol import defs

        rig, step = self.rig, self.spec.protocol.steps[i]
        t0 = float(self.state.step_t0_s if self.state.step_t0_s is not None else 0.0)
        codes = (defs.EV_WAVEFORM_END, defs.EV_STOP_LATCHED, defs.EV_BOOT)
        while True:
            ev = rig.wait_event(codes, after=0, timeout_s=0.25)
            if ev is not None:
                break
            if self.abort.is_set():
                rig.stop()
                t = float(rig.device_time_s)
                self._tap().add_step(
                    StepResult(i, step.path, step.kind, step.label, t0, t, "host_stop")
                )
                return Outcome(False, "interrupted", "stop requested", t_dev_s=t, **self._where(i))
            if rig.link_lost:
                return Outcome.board_stop("link_lost", t_dev_s=rig.device_time_s, **self._where(i))
        if ev.code == defs.EV_WAVEFORM_END and ev.cause in (defs.CAUSE_V_MIN, defs.CAUSE_V_MAX):
            latch = rig.wait_event((defs.EV_STOP_LATCHED,), after=0, timeout_s=0.3)
            ev = latch or ev
        self._tap().add_step(
            StepResult(i, step.path, step.kind, step.label, t0, ev.t_s, ev.cause_name)
        )
        if ev.code in (defs.EV_STOP_LATCHED, defs.EV_BOOT) or ev.cause_name in (
            "watchdog",
            "over_temp",
            "over_force",
            "over_current",
            "compliance",
            "sensor_fault",
            "boot",
        ):
            return Outcome.board_stop(ev.cause_name, t_dev_s=ev.t_s, **self._where(i))
        return None
