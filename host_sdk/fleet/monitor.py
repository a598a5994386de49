"""Watch one rig straight through the SDK (no supervisor, no recording): what `stressrig
watch --port PORT` shows. The rig streams; its live points and state go to a FleetHub.
Watching sends no waveform and no STOP: it changes nothing a running protocol depends on."""

from __future__ import annotations

import threading
from typing import Any

from host_sdk.fleet.hub import FleetHub
from host_sdk.fleet.live import LiveSampler

__all__ = ["RigMonitor"]


class RigMonitor:
    """Open `port`, stream (`streams` {name: {"rate_hz": f}} or the board's defaults), and
    feed `hub` under `name` every `period_s` until `close()`."""

    def __init__(
        self,
        port: str,
        hub: FleetHub,
        *,
        name: str | None = None,
        streams: dict[str, dict[str, Any]] | None = None,
        stack_area_m2: float | None = None,
        period_s: float = 0.5,
        reconnect_timeout_s: float = 30.0,
    ) -> None:
        from host_sdk.client import Rig
        from host_sdk.fleet.identity import remember_board

        self.hub = hub
        self.period_s = period_s
        self.rig = Rig.open(port, reconnect_timeout_s=reconnect_timeout_s)
        self.name = name or self.rig.unique_id or port
        remember_board(self.rig.unique_id, str(self.rig.link.device), self.rig.board_id)
        if streams:
            for s in self.rig.streams:
                cfg = streams.get(s)
                rate = float((cfg or {}).get("rate_hz", self.rig.streams[s].rate_hz))
                self.rig.configure_stream(s, rate_hz=rate, enabled=cfg is not None)
        self.live = LiveSampler(self.rig, stack_area_m2)
        self.rig.on_event(self._on_event)
        self.rig.set_streaming(True)
        self._stop = threading.Event()
        self._publish_state()
        self._thread = threading.Thread(target=self._loop, name="rig-monitor", daemon=True)
        self._thread.start()

    def _on_event(self, ev: Any) -> None:
        self.hub.add_event(self.name, {"t_dev_s": ev.t_s, "name": ev.name, "cause": ev.cause_name})

    def _publish_state(self) -> None:
        rig = self.rig
        if rig.link_lost:
            phase, alive, msg = "lost", False, "the link was lost and could not be reopened"
        elif not rig.link.is_open:
            phase, alive, msg = "watching", False, "link down: reconnecting"
        else:
            phase, alive, msg = "watching", True, "streaming"
        self.hub.set_state(
            self.name,
            phase=phase,
            alive=alive,
            message=msg,
            unique_id=rig.unique_id,
            port=rig.link.url,
            device=str(rig.link.device),
            t_dev_s=float(rig.device_time_s),
            lost=int(sum(rig.lost_samples.values())),
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            point = self.live.take()
            if point is not None:
                self.hub.add_point(self.name, point)
            self._publish_state()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.live.close()
        # watching never switches the current on, and never off either: the board may be
        # running a protocol a killed supervisor left, which a new one can take over
        self.rig.close(leave_current_off=False)
