"""The supervisor: one protocol on each of N rigs at once, one RigWorker thread per rig.

    sup = Supervisor(load_fleet("lab3.toml"))
    sup.start()                 # every rig (or sup.start(["cell01"]))
    while sup.running(): sup.step(); time.sleep(0.5)   # table, state files, live points
    sup.close()
    sup.exit_code()             # 0 all completed, 3 a board stopped a run, 1 an error

A rig's failure (no board, unplugged past the reconnect time, latched, rebooted, an
exception) ends its worker with a phase and a message; the others go on. The MQTT bridge
and the dashboard read the same FleetHub the status table reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from host_sdk.fleet.commands import CommandReply, execute, reply_spooled, take_spooled
from host_sdk.fleet.config import FleetConfig
from host_sdk.fleet.hub import TERMINAL_PHASES, FleetHub
from host_sdk.fleet.state import FleetLock, load_state
from host_sdk.fleet.worker import RigWorker

__all__ = ["Supervisor"]

log = logging.getLogger("stressrig.fleet")


class Supervisor:
    def __init__(self, cfg: FleetConfig, hub: FleetHub | None = None) -> None:
        self.cfg = cfg
        self.hub = hub or FleetHub(cfg.name)
        self.workers: dict[str, RigWorker] = {}
        self._lock = threading.Lock()
        self._fleet_lock = FleetLock(cfg.state_dir)
        self._fleet_lock.acquire()  # RuntimeError when another supervisor runs this fleet
        for spec in cfg.rigs:
            prev = load_state(cfg.state_dir, spec.name)
            if prev is not None:
                snap = prev.to_dict()
                for bulky in ("gaps", "steps_done", "markers"):
                    snap.pop(bulky, None)
                self.hub.set_state(spec.name, **snap)
            else:
                self.hub.set_state(spec.name, port=spec.port, phase="pending", message="")

    # ---- rigs ----------------------------------------------------------------------------------
    def rig_names(self) -> list[str]:
        return [r.name for r in self.cfg.rigs]

    def start(self, names: Iterable[str] | None = None, *, restart: bool = False) -> None:
        """Start (or take over) the rigs. Without `restart`, a rig whose run ended before
        only reports that outcome; one whose run a dead supervisor left is taken over."""
        for name in list(names) if names is not None else self.rig_names():
            self._spawn(name, restart)

    def _spawn(self, name: str, restart: bool) -> RigWorker:
        with self._lock:
            w = self.workers.get(name)
            if w is not None and w.is_alive():
                raise RuntimeError(f"rig {name} is already running ({w.state.phase})")
            worker = RigWorker(self.cfg.rig(name), self.cfg, self.hub, restart=restart)
            self.workers[name] = worker
            worker.start()
            return worker

    def start_rig(self, name: str, restart: bool) -> str:
        """The `start` command: a rig that is not running now."""
        prev = load_state(self.cfg.state_dir, name)
        if prev is not None and prev.phase in TERMINAL_PHASES and not restart:
            raise RuntimeError(
                f"rig {name} has a run that ended ({prev.phase}: {prev.message}); "
                "start RIG --restart begins a new run with a new recording"
            )
        self._spawn(name, restart)
        return f"rig {name}: started" + (" (a new run)" if restart else "")

    def abort_rig(self, name: str, reason: str) -> str:
        w = self.workers.get(name)
        if w is None or not w.request_abort(reason):
            return f"rig {name}: not running"
        return f"rig {name}: aborting ({reason})"

    def command(self, argv: list[str], cmd_id: str = "", origin: str = "") -> CommandReply:
        reply = execute(self, argv, cmd_id, origin)
        log.warning("command %s from %s: %s", argv, origin or "local", reply.message)
        return reply

    # ---- running -------------------------------------------------------------------------------
    def running(self) -> bool:
        return any(w.is_alive() for w in self.workers.values())

    def step(self) -> None:
        """Once every half second or so: state files, live points, spooled commands."""
        for w in list(self.workers.values()):
            if w.is_alive():
                w.tick()
        for _path, cmd_id, argv in take_spooled(self.cfg.state_dir):
            reply_spooled(self.cfg.state_dir, self.command(argv, cmd_id or "cli", "cli"))

    def abort_all(self, reason: str) -> None:
        for name in self.workers:
            self.abort_rig(name, reason)

    def join(self, timeout_s: float = 60.0) -> None:
        for w in self.workers.values():
            w.join(timeout_s)

    def close(self) -> None:
        self.abort_all("the supervisor stopped")
        self.join()
        self._fleet_lock.release()

    def latest_points(self) -> dict[str, dict[str, Any]]:
        _, pts = self.hub.points_since(0, limit=1)
        return {k: v[-1] for k, v in pts.items() if v}

    def exit_code(self) -> int:
        """0: every rig started here completed; 3: a board stopped a run (latch, reboot,
        link lost); 1: an error (no board, a command failed); 130: interrupted."""
        codes = set()
        for w in self.workers.values():
            o = w.outcome
            if o is None:
                codes.add(1)
            elif o.completed:
                codes.add(0)
            elif o.interrupted:
                codes.add(130)
            elif o.stopped_by == "aborted":
                codes.add(1)
            elif o.board_stopped:
                codes.add(3)
            else:
                codes.add(1)
        for code in (1, 3, 130):
            if code in codes:
                return code
        return 0

    def summary(self) -> dict[str, Any]:
        return {
            name: {
                "phase": w.state.phase,
                "unique_id": w.state.unique_id,
                "recording": w.state.recording,
                "outcome": w.outcome.to_dict() if w.outcome else None,
                "attaches": w.state.attaches,
                "gaps": w.state.gaps,
                "lost": w.state.lost,
            }
            for name, w in sorted(self.workers.items())
        }
