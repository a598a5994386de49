"""MQTT: a supervisor publishes its rigs, a dashboard anywhere subscribes (paho-mqtt).

Topics, under `stressrig/<fleet>/` (payloads JSON):

    host              retained {"alive": true, "pid", "host", "since"}; the last will sets
                      {"alive": false} when the supervisor's connection dies (host crash,
                      network), so subscribers mark its rigs dead
    rig/<rig>/state   retained: phase, alive, step, device time, lost samples, outcome, ...
                      (a rig that failed or lost its link has alive false)
    rig/<rig>/event   board events (waveform_end, stop_latched, boot, ...), QoS 1
    rig/<rig>/live    one downsampled point a live period: t_dev_s, voltage_v, current_a,
                      pressure_mpa (or force_n), strain_ue, temp_c, lost
    cmd               commands to the supervisor, only when [mqtt] control = true:
                      {"id": "42", "argv": ["abort", "cell07"]} or "start cell07"
    reply             {"id", "code", "message"}: code as a CLI exit code

No anonymous remote control: the supervisor subscribes to `cmd` only when `control` is on,
and config.py refuses control through a broker off this machine without a password or TLS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from host_sdk.fleet.commands import CommandReply, bad_payload_reply
from host_sdk.fleet.config import MqttConfig
from host_sdk.fleet.hub import TERMINAL_PHASES, FleetHub

__all__ = ["MqttBridge", "MqttFeed", "MqttUnavailable", "topic_prefix"]

log = logging.getLogger("stressrig.fleet.mqtt")


class MqttUnavailable(RuntimeError):
    """paho-mqtt missing, or the broker refused or did not answer; the message says which."""


def topic_prefix(fleet: str) -> str:
    return f"stressrig/{fleet}"


def _client(cfg: MqttConfig, client_id: str) -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as e:  # pragma: no cover - a dependency of stressrig
        raise MqttUnavailable(f"paho-mqtt is not installed ({e}): pip install paho-mqtt") from e
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if cfg.username:
        c.username_pw_set(cfg.username, cfg.password())
    if cfg.tls_ca:
        c.tls_set(ca_certs=cfg.tls_ca)
    return c


def _connect(c: Any, cfg: MqttConfig, timeout_s: float) -> None:
    """Connect and wait for the broker's CONNACK; MqttUnavailable when it says no."""
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        result["reason"] = reason
        done.set()

    c.on_connect = on_connect
    try:
        c.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    except OSError as e:
        raise MqttUnavailable(
            f"MQTT broker {cfg.host}:{cfg.port} not reachable ({e}); is it running?"
        ) from e
    c.loop_start()
    if not done.wait(timeout_s):
        c.loop_stop()
        raise MqttUnavailable(f"MQTT broker {cfg.host}:{cfg.port}: no CONNACK in {timeout_s} s")
    reason = result["reason"]
    if getattr(reason, "is_failure", False):
        c.loop_stop()
        c.disconnect()
        raise MqttUnavailable(
            f"MQTT broker {cfg.host}:{cfg.port} refused the connection: {reason} "
            "(check [mqtt] username / password_file)"
        )


class MqttBridge:
    """Publishes a hub's rigs; runs commands from `cmd` on `target` when control is on."""

    def __init__(
        self,
        cfg: MqttConfig,
        hub: FleetHub,
        target: Any = None,
        *,
        fleet: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.cfg = cfg
        self.hub = hub
        self.target = target
        self.prefix = topic_prefix(fleet or hub.fleet)
        self.client = _client(cfg, f"stressrig-{hub.fleet}-{os.getpid()}")
        online = {"alive": True, "pid": os.getpid(), "host": socket.gethostname()}
        online["since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.client.will_set(
            f"{self.prefix}/host",
            json.dumps({"alive": False, "why": "the supervisor's connection died (last will)"}),
            qos=1,
            retain=True,
        )
        self.client.on_message = self._on_message
        _connect(self.client, cfg, timeout_s)
        self._pub("host", online, qos=1, retain=True)
        if cfg.control and target is not None:
            self.client.subscribe(f"{self.prefix}/cmd", qos=1)
        for rig, st in hub.states().items():
            self._pub(f"rig/{rig}/state", st, qos=1, retain=True)
        self._unsubscribe = hub.subscribe(self._on_hub)

    def _pub(
        self, sub: str, payload: dict[str, Any], *, qos: int = 0, retain: bool = False
    ) -> None:
        self.client.publish(
            f"{self.prefix}/{sub}", json.dumps(payload, default=str), qos=qos, retain=retain
        )

    def _on_hub(self, kind: str, rig: str, payload: dict[str, Any]) -> None:
        if kind == "state":
            self._pub(f"rig/{rig}/state", payload, qos=1, retain=True)
        elif kind == "event":
            self._pub(f"rig/{rig}/event", payload, qos=1)
        elif kind == "live":
            self._pub(f"rig/{rig}/live", payload, qos=0)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        parsed = bad_payload_reply(msg.payload)
        if isinstance(parsed, CommandReply):
            reply = parsed
        else:
            cmd_id, argv = parsed
            reply = self.target.command(argv, cmd_id, origin="mqtt")
        self._pub("reply", reply.to_dict(), qos=1)

    def close(self) -> None:
        """Say goodbye (host alive false, retained) and disconnect."""
        self._unsubscribe()
        info = self.client.publish(
            f"{self.prefix}/host",
            json.dumps({"alive": False, "why": "the supervisor stopped"}),
            qos=1,
            retain=True,
        )
        try:
            info.wait_for_publish(timeout=5.0)
        except (RuntimeError, ValueError):
            pass
        self.client.disconnect()
        self.client.loop_stop()


class MqttFeed:
    """Fills a hub from a broker (what `stressrig watch --mqtt` shows). Rigs are keyed
    `fleet/rig` when watching every fleet (`fleet=None`), else by rig name."""

    def __init__(
        self, cfg: MqttConfig, hub: FleetHub, fleet: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.hub = hub
        self.fleet = fleet
        self.client = _client(cfg, f"stressrig-watch-{os.getpid()}")
        self.client.on_message = self._on_message
        _connect(self.client, cfg, timeout_s)
        self.client.subscribe(f"{topic_prefix(fleet or '+')}/#", qos=1)

    def _key(self, fleet: str, rig: str) -> str:
        return rig if self.fleet else f"{fleet}/{rig}"

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        try:
            payload = json.loads(msg.payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(payload, dict) or len(parts) < 3:
            return
        fleet = parts[1]
        if parts[2] == "host":
            if not payload.get("alive", False):
                self._host_gone(fleet, str(payload.get("why", "the supervisor is gone")))
            return
        if parts[2] != "rig" or len(parts) != 5:
            return
        key, what = self._key(fleet, parts[3]), parts[4]
        if what == "state":
            payload.pop("rig", None)
            self.hub.set_state(key, **payload)
        elif what == "live":
            payload.pop("seq", None)
            self.hub.add_point(key, payload)
        elif what == "event":
            payload.pop("rig", None)
            self.hub.add_event(key, payload)

    def _host_gone(self, fleet: str, why: str) -> None:
        prefix = "" if self.fleet else f"{fleet}/"
        for key, st in self.hub.states().items():
            if key.startswith(prefix) and st.get("phase") not in TERMINAL_PHASES:
                self.hub.set_state(key, phase="offline", alive=False, message=why)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
