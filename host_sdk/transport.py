"""Byte links to a board: serial ports, `socket://host:port`, `emu://SCENARIO`,
and `uid:HEX` (the board with that unique id, whatever its port: host_sdk.fleet.identity).

Everything is opened through pyserial's `serial_for_url`, so a pty, a USB CDC port, a TCP
socket and pyserial's own `loop://` look the same to the client. `emu://NAME?speed=50&seed=1`
first starts an emulated board (host_sdk.emulator) and then opens its pty. A `Link` remembers
how to open itself so the client can reopen it after the port disappears; the emulator it
started (if any) stays up across reopenings and is stopped by `Link.close`.

Tests pass an `opener` (a callable returning any object with read/write/close) instead of a
URL, which is how the fake board plugs in (python-can's virtual bus idea).

One program at a time per port: a second reader would take bytes (samples) from the first.
A `Link` that opens a device takes an exclusive lock on it (pyserial's `exclusive=True`,
flock on POSIX) and writes a UUCP-style lock file (`/run/lock/LCK..ttyACM0`: the holder's
pid, command line and start time) so that the refusal can name who holds the port.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import serial
import serial.tools.list_ports

__all__ = [
    "BadPortUrl",
    "ByteLink",
    "Link",
    "LinkLost",
    "PortInUse",
    "PortLock",
    "PortNotFound",
    "available_ports",
    "parse_emu_url",
]


class PortNotFound(OSError):
    """The requested port does not exist; the message lists the ports that do."""


class BadPortUrl(PortNotFound):
    """A port URL that cannot be right (unknown emu:// parameter, a value out of range);
    the message says what is allowed."""


class PortInUse(OSError):
    """Another program (or another Link in this one) has the port open; the message names
    it (pid and command line) when it left a lock file."""


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


# ---- one program per port ------------------------------------------------------------------
def _lock_dir() -> Path:
    """Where lock files go: /run/lock (or /var/lock) as UUCP tools expect, else the temp dir."""
    for d in ("/run/lock", "/var/lock"):
        if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return Path(d)
    return Path(tempfile.gettempdir())


def _lock_name(device: str) -> str:
    """LCK..ttyACM0 for /dev/ttyACM0; a pty /dev/pts/3 gives LCK..pts_3."""
    real = os.path.realpath(device)
    rel = real[len("/dev/") :] if real.startswith("/dev/") else real.strip("/")
    return "LCK.." + re.sub(r"[^A-Za-z0-9._-]", "_", rel)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _command_of(pid: int, fallback: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return fallback
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if len(args) > 1 and Path(args[0]).name.startswith("python"):
        args = args[1:]  # "python -m ..." / "python script": the script says more
    return " ".join(Path(args[0]).name.split() + args[1:]) if args else fallback


# locks this process holds: lock file path -> id() of the PortLock holding it
_HELD: dict[str, int] = {}
_HELD_GUARD = threading.Lock()


class PortLock:
    """An exclusive claim on a device, with a lock file naming the holder."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.path: Path | None = None

    def acquire(self) -> None:
        """Claim the device or raise PortInUse naming the holder. Stale lock files (their
        process is gone) are taken over."""
        path = _lock_dir() / _lock_name(self.device)
        if self.path == path:
            return
        self.release()
        text = f"{os.getpid():10d}\n{_command_of(os.getpid(), ' '.join(sys.argv))}\n"
        text += _dt.datetime.now().astimezone().isoformat(timespec="seconds") + "\n"
        with _HELD_GUARD:
            if str(path) in _HELD:
                raise PortInUse(
                    f"port {self.device} is already open in this program (pid {os.getpid()}): "
                    "close the other Rig/Link first; one board talks to one client"
                )
            for _ in range(3):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    holder = self._holder(path)
                    if holder is not None:
                        raise PortInUse(self._busy_text(holder)) from None
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()  # stale: its process is gone
                    continue
                except OSError:
                    return  # lock directory not writable: rely on the flock alone
                with os.fdopen(fd, "w") as fh:
                    fh.write(text)
                _HELD[str(path)] = id(self)
                self.path = path
                return

    def _holder(self, path: Path) -> tuple[int, str, str] | None:
        """(pid, command, since) of a live holder of `path`, None when stale."""
        try:
            lines = path.read_text(errors="replace").splitlines()
            pid = int(lines[0].strip())
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid):
            return None
        cmd = lines[1].strip() if len(lines) > 1 else "?"
        since = lines[2].strip() if len(lines) > 2 else "?"
        return pid, _command_of(pid, cmd), since

    def _busy_text(self, holder: tuple[int, str, str]) -> str:
        pid, cmd, since = holder
        return (
            f"port {self.device} is in use by pid {pid} ({cmd}), since {since}. One program "
            "at a time: a second one would take samples from the first. Stop it, or wait "
            "for it to finish."
        )

    def busy_error(self, why: str) -> PortInUse:
        """The error for a device another program holds without our lock file."""
        path = _lock_dir() / _lock_name(self.device)
        holder = self._holder(path) if path != self.path else None
        if holder is not None:
            return PortInUse(self._busy_text(holder))
        return PortInUse(
            f"port {self.device} is in use by another program ({why}); `fuser -v "
            f"{self.device}` names it. Stop it, or wait for it to finish."
        )

    def release(self) -> None:
        path, self.path = self.path, None
        if path is None:
            return
        with _HELD_GUARD:
            if _HELD.get(str(path)) == id(self):
                del _HELD[str(path)]
                with contextlib.suppress(OSError):
                    path.unlink()


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
        self._lock: PortLock | None = None

    # -- opening ---------------------------------------------------------------------------
    def open(self) -> None:
        """Open (or reopen) the port. Raises PortNotFound / OSError."""
        self._close_port()
        if self._opener is not None:
            self._port = self._opener()
            return
        assert self.url is not None
        if self.url.lower().startswith("uid:"):
            self._open_by_uid(self.url)
            return
        if self.url.startswith("emu://"):
            if self.emulator is None:
                self.emulator = self._start_emulator(self.url)
            self.device = str(self.emulator.port)
        else:
            self.device = self.url
            _check_port_exists(self.url)
        is_device = "://" not in self.device  # a path: lock it (socket:// is the server's)
        if is_device:
            if self._lock is None:
                self._lock = PortLock(self.device)
            self._lock.acquire()  # raises PortInUse naming the holder
        try:
            self._port = serial.serial_for_url(
                self.device,
                baudrate=self.baudrate,
                timeout=self.read_timeout_s,
                write_timeout=2.0,
                **({"exclusive": True} if is_device and os.name == "posix" else {}),
            )
        except (serial.SerialException, OSError, ValueError) as e:
            if is_device and "lock" in str(e).lower():
                assert self._lock is not None
                raise self._lock.busy_error(str(e)) from e
            raise PortNotFound(f"cannot open {self.device!r}: {e}") from e

    def _open_by_uid(self, url: str) -> None:
        """`uid:HEX`: the board with that unique id, on whatever port it is now (found again
        after a replug onto another name); never another board (host_sdk.fleet.identity)."""
        from host_sdk.fleet.identity import claim_board

        if self._lock is not None:
            self._lock.release()  # the board may come back on another port
        device, port, lock = claim_board(url, baudrate=self.baudrate)
        self.device, self._port, self._lock = device, port, lock

    def _start_emulator(self, url: str) -> Any:
        try:
            from host_sdk.emulator import start_emulator_from_url
        except ImportError as e:  # pragma: no cover - depends on the emulator package
            raise PortNotFound(f"{url}: host_sdk.emulator is not available ({e})") from e
        from host_sdk.emulator import emulator_options_from_url, list_scenarios

        try:
            parse_emu_url(url)  # a clear error for a URL without a scenario
            name, _ = emulator_options_from_url(url)
        except ValueError as e:
            raise BadPortUrl(str(e)) from e
        if name not in list_scenarios() and not os.path.isfile(name):
            raise BadPortUrl(
                f"{url}: no emulated board called {name!r}; scenarios: "
                f"{', '.join(list_scenarios())}"
            )
        try:
            return start_emulator_from_url(url)
        except (ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
            raise PortNotFound(f"{url}: the emulated board did not start: {e}") from e

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
        """Close the port, release its lock and stop an emulator this link started."""
        self._close_port()
        if self._lock is not None:
            self._lock.release()
        emu, self.emulator = self.emulator, None
        if emu is not None:
            emu.stop()

    def describe(self) -> str:
        if self.device != self.url:
            return f"{self.url} (device {self.device})"
        return self.url
