"""MQTT against a real Mosquitto on loopback: retained rig states, events, live points;
commands checked like the CLI's; a password needed; a dead supervisor's last will turns its
rigs red on a dashboard fed by MQTT."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from host_sdk import cli
from host_sdk.fleet.config import MqttConfig, load_fleet
from host_sdk.fleet.dashboard import DashboardServer
from host_sdk.fleet.hub import FleetHub
from host_sdk.fleet.mqtt import MqttBridge, MqttFeed, MqttUnavailable
from host_sdk.fleet.supervisor import Supervisor
from tests.fleet.test_supervisor import _stressrig, wait_for, write_fleet

LONG = """
[protocol]
name = "long"
[streams]
elec = { rate_hz = 20 }
load = { rate_hz = 5 }
[[steps]]
kind = "rest"
duration_s = 36000.0
"""


class Subscriber:
    """A plain paho client that keeps every message (topic, JSON payload, retained)."""

    def __init__(self, broker: dict[str, Any], topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.q: queue.Queue[tuple[str, Any, bool]] = queue.Queue()
        self.seen: list[tuple[str, Any, bool]] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub")
        self.c.username_pw_set(broker["user"], "secret")
        self.c.on_message = self._on_message
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *_a: subscribed.set()
        self.c.connect(broker["host"], broker["port"])
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        assert subscribed.wait(60), "the broker did not confirm the subscription"

    def _on_message(self, _c: Any, _u: Any, m: Any) -> None:
        try:
            payload = json.loads(m.payload)
        except ValueError:  # a plain-text command this test published
            payload = {"text": m.payload.decode(errors="replace")}
        self.q.put((m.topic, payload, bool(m.retain)))

    def wait(self, what: str, pred: Any, limit_s: float = 120.0) -> tuple[str, Any, bool]:
        for m in self.seen:
            if pred(*m):
                return m
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                m = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(m)
            if pred(*m):
                return m
        raise AssertionError(f"no MQTT message: {what}")

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _mqtt_cfg(broker: dict[str, Any], **kw: Any) -> MqttConfig:
    return MqttConfig(
        host=broker["host"],
        port=broker["port"],
        username=broker["user"],
        password_file=broker["password_file"],
        **kw,
    )


def test_anonymous_clients_are_refused(mosquitto: dict[str, Any]) -> None:
    with pytest.raises(MqttUnavailable, match="refused"):
        MqttBridge(MqttConfig(host=mosquitto["host"], port=mosquitto["port"]), FleetHub("x"))


def test_states_events_live_points_and_checked_commands(
    mosquitto: dict[str, Any], emulated, tmp_path: Path
) -> None:
    short, long = emulated(seed=61), emulated(seed=62, speed=1)
    (tmp_path / "long.toml").write_text(LONG)
    fleet = write_fleet(tmp_path, {"short": short.port}, count=3)
    fleet.write_text(
        fleet.read_text()
        + f'[[rig]]\nname = "long"\nport = "{long.port}"\nprotocol = "long.toml"\n'
    )
    cfg = load_fleet(fleet)
    sub = Subscriber(mosquitto, "stressrig/t/#")
    sup = Supervisor(cfg)
    bridge = MqttBridge(_mqtt_cfg(mosquitto, control=True, live_hz=4), sup.hub, sup)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sup.step()
            time.sleep(0.1)

    runner = threading.Thread(target=loop, daemon=True)
    try:
        sup.start()
        runner.start()
        sub.wait("host online", lambda t, p, r: t == "stressrig/t/host" and p["alive"])
        done = sub.wait(
            "short completed",
            lambda t, p, r: t == "stressrig/t/rig/short/state" and p["phase"] == "completed",
        )
        assert done[1]["alive"] and done[1]["unique_id"]
        sub.wait(
            "a waveform_end event",
            lambda t, p, r: t == "stressrig/t/rig/short/event" and p["name"] == "waveform_end",
        )
        live = sub.wait(
            "a live point with a voltage",
            lambda t, p, r: t == "stressrig/t/rig/long/live" and "voltage_v" in p,
        )
        assert {"t_dev_s", "lost"} <= set(live[1]) and abs(live[1]["voltage_v"]) < 5
        # commands: parsed and checked like the CLI's, answered with an exit code
        sub.c.publish("stressrig/t/cmd", "abort nosuch", qos=1)
        bad = sub.wait("reply to a bad rig", lambda t, p, r: t == "stressrig/t/reply")
        assert bad[1]["code"] == 2 and "rigs: short, long" in bad[1]["message"]
        sub.c.publish("stressrig/t/cmd", json.dumps({"id": "9", "argv": ["frobnicate"]}), qos=1)
        bad2 = sub.wait("reply 9", lambda t, p, r: t == "stressrig/t/reply" and p["id"] == "9")
        assert bad2[1]["code"] == 2 and "invalid choice" in bad2[1]["message"]
        cmd = {"id": "7", "argv": ["abort", "long", "--reason", "cell swelling"]}
        sub.c.publish("stressrig/t/cmd", json.dumps(cmd), qos=1)
        ok = sub.wait("reply 7", lambda t, p, r: t == "stressrig/t/reply" and p["id"] == "7")
        assert ok[1]["code"] == 0
        sub.wait(
            "long aborted",
            lambda t, p, r: t == "stressrig/t/rig/long/state" and p["phase"] == "aborted",
        )
        assert sup.workers["long"].outcome.cause == "cell swelling"  # type: ignore[union-attr]
    finally:
        stop.set()
        sup.close()
        bridge.close()
    # retained: a subscriber that comes later still gets every rig's last state
    late = Subscriber(mosquitto, "stressrig/t/rig/+/state")
    try:
        m = late.wait("retained", lambda t, p, r: r and t.endswith("/long/state"))
        assert m[1]["phase"] == "aborted"
    finally:
        late.close()
        sub.close()


def test_a_dead_supervisor_turns_its_rigs_red_through_mqtt(
    mosquitto: dict[str, Any], emulated, tmp_path: Path
) -> None:
    board = emulated(seed=71, speed=1)
    (tmp_path / "long.toml").write_text(LONG)
    mq = (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto["port"]}\nusername = "rig"\n'
        f'password_file = "{mosquitto["password_file"]}"\n'
    )
    fleet = tmp_path / "f.toml"
    fleet.write_text(
        '[fleet]\nname = "lwt"\nout_dir = "runs"\nprotocol = "long.toml"\n'
        + mq
        + f'[[rig]]\nname = "r1"\nport = "{board.port}"\n'
    )
    hub = FleetHub("lwt")
    feed = MqttFeed(_mqtt_cfg(mosquitto), hub, "lwt")
    dash = DashboardServer(hub, port=0)
    sup = _stressrig("fleet", "run", str(fleet), "--no-table", out=tmp_path / "sup.log")
    try:
        wait_for("r1 running", lambda: (hub.state("r1") or {}).get("phase") == "running")
        wait_for("live points", lambda: hub.points_since(0)[1].get("r1"))
        assert hub.state("r1")["alive"]  # type: ignore[index]
        sup.send_signal(signal.SIGKILL)  # no goodbye: the broker sends the last will
        sup.wait(30)
        st = wait_for("r1 dead", lambda: (s := hub.state("r1")) and not s["alive"] and s)
        assert st["phase"] == "offline" and "last will" in st["message"]
        with urllib.request.urlopen(dash.url + "api/state") as r:
            assert json.loads(r.read())["rigs"]["r1"]["alive"] is False
    finally:
        if sup.poll() is None:
            sup.kill()
        dash.close()
        feed.close()


def test_fleet_abort_from_the_cli_reaches_the_supervisor(emulated, tmp_path: Path) -> None:
    long = emulated(seed=81, speed=1)
    (tmp_path / "long.toml").write_text(LONG)
    fleet = tmp_path / "f.toml"
    fleet.write_text(
        '[fleet]\nname = "c"\nout_dir = "runs"\nprotocol = "long.toml"\n'
        f'[[rig]]\nname = "r1"\nport = "{long.port}"\n'
    )
    sup = Supervisor(load_fleet(fleet))
    sup.start()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sup.step()
            time.sleep(0.1)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        wait_for("r1 running", lambda: sup.workers["r1"].state.phase == "running")
        assert cli.main(["fleet", "abort", str(fleet), "nosuch"]) == 2
        assert cli.main(["fleet", "abort", str(fleet), "r1", "--reason", "test"]) == 0
        sup.workers["r1"].join(60)
        assert sup.workers["r1"].state.phase == "aborted"
    finally:
        stop.set()
        sup.close()
