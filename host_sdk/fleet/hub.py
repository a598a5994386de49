"""FleetHub: the latest state, live points and events of every rig, in one place.

Producers (the supervisor's rig workers, a single-rig monitor, an MQTT subscriber) put
things in; consumers (the status table, the dashboard server, the MQTT publisher) read the
latest state or subscribe to changes. Everything is plain JSON-able dicts, so the same
shapes go over MQTT and HTTP.

A rig's state dict has at least: rig, phase, alive (False once the rig or its host is gone:
the dashboard paints it red), message, t_dev_s, step_index, step_label, lost, unique_id,
port, recording, outcome.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEAD_PHASES", "FleetHub", "TERMINAL_PHASES"]

# phases a rig ends in (a supervisor restart does not reattach to them)
TERMINAL_PHASES = frozenset({"completed", "stopped", "failed", "interrupted", "aborted", "lost"})
# phases that mean the rig (or the program behind it) is not there: red on the dashboard.
# "unreachable": a run left by a dead supervisor whose board could not be opened; the next
# supervisor tries again
DEAD_PHASES = frozenset({"failed", "lost", "offline", "unreachable"})

Listener = Callable[[str, str, dict[str, Any]], None]  # (kind, rig, payload)


class FleetHub:
    """Thread-safe store of rig states, live points (the last `keep` per rig) and events."""

    def __init__(self, fleet: str = "fleet", keep: int = 1200) -> None:
        self.fleet = fleet
        self.keep = keep
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = {}
        self._points: dict[str, collections.deque[dict[str, float]]] = {}
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
        self._seq = 0  # increases with every live point: the dashboard asks "since"
        self._listeners: list[Listener] = []
        self.host_alive = True

    # ---- producers ---------------------------------------------------------------------------
    def set_state(self, rig: str, /, **fields: Any) -> dict[str, Any]:
        fields.pop("rig", None)
        with self._lock:
            st = self._states.setdefault(rig, {"rig": rig, "phase": "pending", "alive": True})
            st.update(fields)
            st["alive"] = bool(fields.get("alive", st["phase"] not in DEAD_PHASES))
            st["updated_wall"] = time.time()
            snap = dict(st)
        self._notify("state", rig, snap)
        return snap

    def add_point(self, rig: str, point: dict[str, float]) -> None:
        with self._lock:
            self._seq += 1
            p = dict(point, seq=self._seq)
            self._points.setdefault(rig, collections.deque(maxlen=self.keep)).append(p)
        self._notify("live", rig, p)

    def add_event(self, rig: str, event: dict[str, Any]) -> None:
        e = dict(event, rig=rig)
        with self._lock:
            self._events.append(e)
        self._notify("event", rig, e)

    def set_host_alive(self, alive: bool) -> None:
        """The program behind the rigs (a supervisor seen through MQTT) is there or not."""
        self.host_alive = alive
        self._notify("host", "", {"alive": alive})

    # ---- consumers ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _notify(self, kind: str, rig: str, payload: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(kind, rig, payload)
            except Exception:  # noqa: BLE001 - a consumer must not stop the producers
                import logging

                logging.getLogger("stressrig.fleet").exception("hub listener failed")

    def states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            out = {k: dict(v) for k, v in self._states.items()}
        if not self.host_alive:
            for st in out.values():
                if st.get("phase") not in TERMINAL_PHASES:
                    st["alive"] = False
                    st["message"] = "the supervisor is gone (MQTT last will)"
        return out

    def state(self, rig: str) -> dict[str, Any] | None:
        return self.states().get(rig)

    def points_since(self, seq: int, limit: int = 5000) -> tuple[int, dict[str, list[dict]]]:
        """Live points with seq > `seq`, per rig; and the newest seq."""
        with self._lock:
            out = {
                rig: [p for p in pts if p["seq"] > seq][-limit:]
                for rig, pts in self._points.items()
            }
            newest = self._seq
        return newest, {k: v for k, v in out.items() if v}

    def events(self, n: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)[-n:]
