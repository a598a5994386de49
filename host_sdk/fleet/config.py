"""FLEET.toml: which rigs, which protocol each runs, where recordings go, MQTT settings.

    [fleet]
    name = "lab3"                   # MQTT topic prefix stressrig/lab3/...; state folder name
    out_dir = "runs/lab3"           # <out_dir>/<rig>.h5, state in <out_dir>/.fleet/
    protocol = "../examples/seed004_staircase.toml"   # default protocol (relative to this file)
    on_reattach_idle = "continue"   # a step that ended while no supervisor ran: go on, or "stop"

    [mqtt]                          # optional: publish state, events and a live stream
    host = "127.0.0.1"
    port = 1883
    control = false                 # accept start/abort commands over MQTT
    username = "rig-host"           # needed (or TLS) when host is not loopback and control on
    password_file = "/etc/stressrig/mqtt.pw"
    tls_ca = ""                     # CA file: TLS to the broker

    [[rig]]
    name = "cell01"
    port = "uid:e711daa69d4c"       # a board by its unique id (stressrig ports), any PORT
    protocol = "other.toml"         # optional, else [fleet] protocol

Every problem of the file is reported at once, each naming the field and what is allowed,
before any rig is touched.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_sdk.protocols import Protocol, ProtocolError, load_protocol

__all__ = ["FleetConfig", "FleetError", "MqttConfig", "RigSpec", "load_fleet"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class FleetError(ValueError):
    """A fleet file is invalid; the message lists every problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{source}: invalid fleet file:\n  " + "\n  ".join(errors))


@dataclass
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    control: bool = False
    username: str = ""
    password_file: str = ""
    tls_ca: str = ""
    keepalive_s: int = 10
    live_hz: float = 2.0  # downsampled live points per second and rig

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def password(self) -> str | None:
        if not self.password_file:
            return None
        return Path(self.password_file).read_text(encoding="utf-8").strip()


@dataclass
class RigSpec:
    name: str
    port: str
    protocol_path: Path
    protocol: Protocol


@dataclass
class FleetConfig:
    name: str
    source: Path
    out_dir: Path
    rigs: list[RigSpec]
    mqtt: MqttConfig | None = None
    on_reattach_idle: str = "continue"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.out_dir / ".fleet"

    def rig(self, name: str) -> RigSpec:
        for r in self.rigs:
            if r.name == name:
                return r
        raise KeyError(name)


def _mqtt(table: Any, errors: list[str]) -> MqttConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        errors.append("mqtt: must be a table ([mqtt])")
        return None
    allowed = set(MqttConfig.__dataclass_fields__)
    for k in sorted(set(table) - allowed):
        errors.append(f"mqtt.{k}: unknown key; allowed: {', '.join(sorted(allowed))}")
    cfg = MqttConfig(**{k: v for k, v in table.items() if k in allowed})
    if not isinstance(cfg.port, int) or not 0 < cfg.port < 65536:
        errors.append(f"mqtt.port: {cfg.port!r}; allowed: an integer from 1 to 65535")
    if not isinstance(cfg.live_hz, int | float) or not 0 < float(cfg.live_hz) <= 50:
        errors.append(f"mqtt.live_hz: {cfg.live_hz!r}; allowed: a number in (0, 50]")
    for key in ("password_file", "tls_ca"):
        path = getattr(cfg, key)
        if path and not Path(path).is_file():
            errors.append(f"mqtt.{key}: {path}: no such file")
    if (
        cfg.control
        and not cfg.loopback
        and not ((cfg.username and cfg.password_file) or cfg.tls_ca)
    ):
        # anyone who reaches the broker could switch currents on: not without credentials
        errors.append(
            f"mqtt.control: remote control through the broker at {cfg.host} needs "
            "username + password_file, or tls_ca (or a broker on 127.0.0.1)"
        )
    return cfg


def load_fleet(path: str | Path) -> FleetConfig:
    """Read and check a fleet file and every protocol it names. Raises FleetError."""
    src = Path(path)
    try:
        data = tomllib.loads(src.read_text(encoding="utf-8"))
    except OSError as e:
        raise FleetError(str(src), [f"cannot read: {e}"]) from e
    except tomllib.TOMLDecodeError as e:
        raise FleetError(str(src), [f"not valid TOML: {e}"]) from e
    errors: list[str] = []
    base = src.resolve().parent
    fleet = data.get("fleet") or {}
    for k in sorted(set(data) - {"fleet", "mqtt", "rig"}):
        errors.append(f"{k}: unknown table; allowed: [fleet], [mqtt], [[rig]]")
    name = str(fleet.get("name", src.stem))
    if not NAME_RE.match(name):
        errors.append(f"fleet.name: {name!r}; allowed: letters, digits, _ . - (MQTT-safe)")
    out_dir = base / str(fleet.get("out_dir", f"{src.stem}_runs"))
    idle = str(fleet.get("on_reattach_idle", "continue"))
    if idle not in ("continue", "stop"):
        errors.append(f"fleet.on_reattach_idle: {idle!r}; allowed: continue, stop")
    default_proto = fleet.get("protocol")
    rigs_raw = data.get("rig") or []
    if not isinstance(rigs_raw, list) or not rigs_raw:
        errors.append("rig: no rigs; add one [[rig]] table per rig with name and port")
        rigs_raw = []
    protocols: dict[Path, Protocol] = {}
    rigs: list[RigSpec] = []
    seen_names: set[str] = set()
    seen_ports: set[str] = set()
    for i, r in enumerate(rigs_raw):
        where = f"rig[{i}]"
        if not isinstance(r, dict):
            errors.append(f"{where}: must be a table with name and port")
            continue
        for k in sorted(set(r) - {"name", "port", "protocol"}):
            errors.append(f"{where}.{k}: unknown key; allowed: name, port, protocol")
        rname, port = str(r.get("name", "")), str(r.get("port", ""))
        if not NAME_RE.match(rname):
            errors.append(f"{where}.name: {rname!r}; allowed: letters, digits, _ . - (1-64)")
        elif rname in seen_names:
            errors.append(f"{where}.name: {rname!r} is used twice")
        if not port:
            errors.append(f"{where}.port: missing; e.g. uid:e711daa69d4c or /dev/ttyACM0")
        elif port in seen_ports and not port.startswith("emu://"):
            errors.append(f"{where}.port: {port!r} is given to two rigs")
        seen_names.add(rname)
        seen_ports.add(port)
        proto_name = r.get("protocol", default_proto)
        if not proto_name:
            errors.append(f"{where}.protocol: missing (and no [fleet] protocol)")
            continue
        ppath = (base / str(proto_name)).resolve()
        if ppath not in protocols:
            try:
                protocols[ppath] = load_protocol(ppath)
            except ProtocolError as e:
                errors.extend(f"{where}.protocol: {ppath}: {x}" for x in e.errors)
                continue
        rigs.append(RigSpec(rname, port, ppath, protocols[ppath]))
    mqtt = _mqtt(data.get("mqtt"), errors)
    if errors:
        raise FleetError(str(src), errors)
    return FleetConfig(name, src, out_dir, rigs, mqtt, idle, data)
