"""Byte links to a board: serial ports, `socket://host:port`, and `emu://SCENARIO`.

Everything is opened through pyserial's `serial_for_url`, so a pty, a USB CDC port, a TCP
socket and pyserial's own `loop://` look the same to the client. `emu://NAME?speed=50&seed=1`
first starts an emulated board (host_sdk.emulator) and then opens its pty. A `Link` remembers
how to open itself so the client can reopen it after the port disappears; the emulator it
started (if any) stays up across reopenings and is stopped by `Link.close`.

Tests pass an `opener` (a callable returning any object with read/write/close) instead of a
URL, which is how the fake board plugs in (python-can's virtual bus idea).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import serial
import serial.tools.list_ports

__all__ = [
    "ByteLink",
    "Link",
    "LinkLost",
    "PortNotFound",
    "available_ports",
    "parse_emu_url",
]


class PortNotFound(OSError):
    """The requested port does not exist; the message lists the ports that do."""


class LinkLost(OSError):
    """The port went away (unplugged cable, board reset on USB, emulator stopped)."""


class ByteLink(Protocol):
    """What the client needs from a port: pyserial's Serial satisfies it."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


def available_ports() -> list[tuple[str, str]]:
    """(device, description) of every serial port the OS reports."""
    return [(p.device, p.description or "") for p in serial.tools.list_ports.comports()]


def parse_emu_url(url: str) -> tuple[str, dict[str, Any]]:
    """`emu://nak50?speed=50&seed=1` -> ("nak50", {"speed": 50.0, "seed": 1})."""
    u = urlparse(url)
    scenario = (u.netloc + u.path).strip("/")
    if not scenario:
        raise ValueError(f"{url!r}: emu:// URL needs a scenario name, e.g. emu://nak50?speed=50")
    q = {k: v[-1] for k, v in parse_qs(u.query).items()}
    opts: dict[str, Any] = {}
    for key, value in q.items():
        try:
            opts[key] = int(value) if key in ("seed", "tcp") else float(value)
        except ValueError:
            opts[key] = value
    return scenario, opts


def _check_port_exists(url: str) -> None:
    """Raise PortNotFound for a plain device name that is neither a path nor a listed port."""
    if "://" in url:
        return
    if os.path.exists(url):
        return
    ports = available_ports()
    if any(dev == url for dev, _ in ports):
        return
    listing = "\n".join(f"  {dev}  {desc}" for dev, desc in ports) or "  (none found)"
    raise PortNotFound(
        f"serial port {url!r} does not exist. Ports on this machine:\n{listing}\n"
        "Or use socket://HOST:PORT, or emu://SCENARIO for an emulated board."
    )


class Link:
    """A reopenable byte link. Thread-safe for one reader and many writers."""

    def __init__(
        self,
        url: str | None = None,
        *,
        opener: Callable[[], ByteLink] | None = None,
        read_timeout_s: float = 0.05,
        coalesce_s: float = 0.002,
        baudrate: int = 921_600,
    ) -> None:
        if (url is None) == (opener is None):
            raise ValueError("give exactly one of url or opener")
        self.url = url or "<custom opener>"
        self.read_timeout_s = read_timeout_s
        self.coalesce_s = coalesce_s
        self.baudrate = baudrate
        self.emulator: Any = None
        self._opener = opener
        self._port: ByteLink | None = None
        self._write_lock = threading.Lock()
        self.device = self.url  # what is really opened (the pty behind emu://)

    # -- opening ---------------------------------------------------------------------------
    def open(self) -> None:
        """Open (or reopen) the port. Raises PortNotFound / OSError."""
        self._close_port()
        if self._opener is not None:
            self._port = self._opener()
            return
        assert self.url is not None
        if self.url.startswith("emu://"):
            if self.emulator is None:
                self.emulator = self._start_emulator(self.url)
            self.device = str(self.emulator.port)
        else:
            self.device = self.url
            _check_port_exists(self.url)
        try:
            self._port = serial.serial_for_url(
                self.device,
                baudrate=self.baudrate,
                timeout=self.read_timeout_s,
                write_timeout=2.0,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise PortNotFound(f"cannot open {self.device!r}: {e}") from e

    def _start_emulator(self, url: str) -> Any:
        try:
            from host_sdk.emulator import start_emulator_from_url
        except ImportError as e:  # pragma: no cover - depends on the emulator package
            raise PortNotFound(f"{url}: host_sdk.emulator is not available ({e})") from e
        parse_emu_url(url)  # a clear error for a URL without a scenario
        try:
            return start_emulator_from_url(url)
        except (ValueError, KeyError, FileNotFoundError) as e:
            from host_sdk.emulator import list_scenarios

            raise PortNotFound(
                f"{url}: cannot start the emulated board ({e}); scenarios: "
                f"{', '.join(list_scenarios())}"
            ) from e

    @property
    def is_open(self) -> bool:
        return self._port is not None

    # -- I/O -------------------------------------------------------------------------------
    def read(self, size: int = 4096) -> bytes:
        port = self._port
        if port is None:
            raise LinkLost(f"{self.device}: not open")
        try:
            # pyserial: take what is waiting, else block for one byte up to the timeout;
            # objects without in_waiting (test doubles) get a plain read(size)
            if not hasattr(port, "in_waiting"):
                return port.read(size)
            waiting = port.in_waiting
            if waiting:
                return port.read(min(size, waiting))
            first = port.read(1)  # blocks up to the timeout
            if not first:
                return b""
            # let the rest of the burst arrive (2 ms) and take it all: one decoder call per
            # burst instead of one per byte or per USB packet
            time.sleep(self.coalesce_s)
            waiting = port.in_waiting
            return first + port.read(min(size - 1, waiting)) if waiting else first
        except (serial.SerialException, OSError, TypeError, AttributeError) as e:
            # TypeError/AttributeError: pyserial after the fd vanished under it
            raise LinkLost(f"{self.device}: {e}") from e

    def write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise LinkLost(f"{self.device}: not open")
        with self._write_lock:
            try:
                port.write(data)
            except (serial.SerialException, OSError, TypeError, AttributeError) as e:
                raise LinkLost(f"{self.device}: {e}") from e

    def drop(self) -> None:
        """Close the port after it was lost, keeping the emulator (if any) up."""
        self._close_port()

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - the port may already be gone
                pass

    def close(self) -> None:
        """Close the port and stop an emulator this link started."""
        self._close_port()
        emu, self.emulator = self.emulator, None
        if emu is not None:
            emu.stop()

    def describe(self) -> str:
        if self.device != self.url:
            return f"{self.url} (device {self.device})"
        return self.url
