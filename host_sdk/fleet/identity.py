"""Board identity: which board (by its unique id) sits behind which port.

A board's port name changes when it is replugged (/dev/ttyACM0 -> /dev/ttyACM1) or when the
host enumerates USB in another order; its unique id (HELLO `unique_id`, the MCU's flash id)
does not. `uid:e711daa69d4c` therefore names a board, and `claim_board` finds it:

- the candidates are the serial ports the OS lists plus the ptys of running emulated
  boards (`stressrig emulate`, `start_emulator`: /tmp/stressrig-emu-*/ttyEMU0);
- the port where this uid was last seen (a small cache in the runtime dir) is tried first,
  then every other candidate, a few at a time;
- each candidate is claimed exactly as `Link` claims a port (lock file + exclusive open),
  asked GET_INFO, and kept open only when its HELLO carries the wanted uid. Nothing is
  ever sent to a port another program holds, so a probe never steals another client's
  samples, and no other board is ever handed out: a uid that is not present is an error
  listing the boards that are (telemetrix/pymata connect to whichever board answers).

$STRESSRIG_EMU_GLOB (the emulator ptys' pattern), $STRESSRIG_SCAN_SERIAL=0 (leave the OS's
serial ports out) and $STRESSRIG_RUNTIME_DIR (the cache) let tests see only their boards.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import serial

from host_sdk.transport import PortInUse, PortLock, PortNotFound, available_ports

__all__ = [
    "BoardSeen",
    "candidate_ports",
    "claim_board",
    "emulated_ports",
    "known_boards",
    "normalize_uid",
    "probe_port",
    "remember_board",
    "runtime_dir",
    "scan_boards",
]

PROBE_TIMEOUT_S = 2.0  # an emulated board answers in ~0.3 s; a real one in a few ms
PROBE_PARALLEL = 8
SERIAL_SILENT_S = 0.8  # a serial port that sends nothing at all for this long holds no board


@dataclass
class BoardSeen:
    """What one port holds. `unique_id` is empty when no stressrig board answered (`error`
    says why) or the port is held by another program (`busy` names it; then `unique_id`
    may come from the cache, `cached` True)."""

    device: str
    kind: str  # "serial" or "emulated"
    description: str = ""
    unique_id: str = ""
    board_id: str = ""
    firmware: str = ""
    busy: str = ""
    error: str = ""
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- where things are -----------------------------------------------------------------------
def runtime_dir() -> Path:
    """$STRESSRIG_RUNTIME_DIR, else $XDG_RUNTIME_DIR/stressrig, else /tmp/stressrig-<user>."""
    env = os.environ.get("STRESSRIG_RUNTIME_DIR")
    if env:
        d = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        d = Path(os.environ["XDG_RUNTIME_DIR"]) / "stressrig"
    else:
        d = Path(tempfile.gettempdir()) / f"stressrig-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def emulated_ports() -> list[str]:
    """The ptys of emulated boards running on this machine. $STRESSRIG_EMU_GLOB overrides
    the pattern (tests use it to see only their own boards)."""
    pattern = os.environ.get("STRESSRIG_EMU_GLOB") or os.path.join(
        tempfile.gettempdir(), "stressrig-emu-*", "ttyEMU0"
    )
    newest: dict[str, tuple[float, str]] = {}
    for link in glob.glob(pattern):
        try:
            real, made = os.path.realpath(link), os.lstat(link).st_mtime
        except OSError:
            continue
        # a killed launcher leaves its folder behind, its link pointing at a pty number
        # the system may have given to someone else since: keep the newest link of each
        # pty, and only ptys set up raw as the emulator sets them (never a terminal)
        if _raw_pty(real) and made >= newest.get(real, (-1.0, ""))[0]:
            newest[real] = (made, link)
    return sorted(link for _, link in newest.values())


def _raw_pty(device: str) -> bool:
    """A pty in raw mode without echo (an emulated board's), not someone's terminal."""
    import termios

    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        lflag = termios.tcgetattr(fd)[3]
    except termios.error:
        return False
    finally:
        os.close(fd)
    return not lflag & (termios.ICANON | termios.ECHO)


def candidate_ports() -> list[tuple[str, str, str]]:
    """(device, kind, description) of every port a board may sit behind."""
    out = []
    if os.environ.get("STRESSRIG_SCAN_SERIAL", "1") != "0":  # tests: only their own boards
        out = [(dev, "serial", desc) for dev, desc in available_ports()]
    out += [(p, "emulated", "emulated board (pty)") for p in emulated_ports()]
    return out


def normalize_uid(uid: str) -> str:
    """'uid:E7-11-DA...' or 'E711DA...' -> 'e711da...' (hex digits only, lower case)."""
    text = uid.strip()
    if text.lower().startswith("uid:"):
        text = text[4:]
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")


# ---- the cache: where each uid was seen last ------------------------------------------------
_CACHE_GUARD = threading.Lock()


def _cache_path() -> Path:
    return runtime_dir() / "boards.json"


def known_boards() -> dict[str, dict[str, Any]]:
    """uid -> {device, board_id, seen} as last seen by any stressrig program here."""
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_board(uid: str, device: str, board_id: str = "") -> None:
    """Note that `uid` answered on `device` (a hint for the next lookup, never trusted)."""
    if not uid:
        return
    with _CACHE_GUARD:
        data = known_boards()
        data[uid] = {
            "device": device,
            "board_id": board_id,
            "seen": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        # stale entries of the same device (another board now sits there) go
        for other, info in list(data.items()):
            if other != uid and info.get("device") == device:
                del data[other]
        path = _cache_path()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


# ---- probing one port -----------------------------------------------------------------------
def _open_claimed(device: str, baudrate: int) -> tuple[Any, PortLock]:
    """Claim and open `device` as Link does; PortInUse when another program holds it."""
    lock = PortLock(device)
    lock.acquire()
    try:
        port = serial.serial_for_url(
            device,
            baudrate=baudrate,
            timeout=0.05,
            write_timeout=1.0,
            **({"exclusive": True} if os.name == "posix" else {}),
        )
    except (serial.SerialException, OSError, ValueError) as e:
        lock.release()
        if "lock" in str(e).lower():
            raise lock.busy_error(str(e)) from e
        raise PortNotFound(f"cannot open {device!r}: {e}") from e
    return port, lock


def _ask_hello(port: Any, timeout_s: float, silent_s: float | None = None) -> Any:
    """GET_INFO until a HELLO arrives (None after `timeout_s`, or after `silent_s` without
    a single byte: a real board answers in milliseconds or is streaming anyway)."""
    from host_sdk import wire
    from protocol import defs

    dec = wire.Decoder()
    start = time.monotonic()
    deadline = start + timeout_s
    quiet_until = start + (silent_s if silent_s is not None else timeout_s)
    heard = False
    next_ask = 0.0
    seq = 0x7F00
    while time.monotonic() < (deadline if heard else min(deadline, quiet_until)):
        if time.monotonic() >= next_ask:
            seq += 1
            port.write(wire.encode_command(defs.CMD_GET_INFO, seq, seq))
            next_ask = time.monotonic() + 0.4
        data = port.read(max(1, min(65536, getattr(port, "in_waiting", 0) or 1)))
        if not data:
            continue
        heard = True
        with contextlib.suppress(Exception):  # garbage from a foreign device: keep asking
            for msg in dec.feed(data):
                if isinstance(msg, wire.Hello):
                    return msg
    return None


def probe_port(
    device: str,
    kind: str = "serial",
    description: str = "",
    *,
    timeout_s: float = PROBE_TIMEOUT_S,
    baudrate: int = 921_600,
    keep_if: str | None = None,
) -> tuple[BoardSeen, Any, PortLock | None]:
    """Ask `device` who it is. Returns (what was seen, the open port, its lock): the port
    stays open (and claimed) only when its uid equals `keep_if`; else both are None."""
    seen = BoardSeen(device, kind, description)
    try:
        port, lock = _open_claimed(device, baudrate)
    except PortInUse as e:
        seen.busy = str(e)
        cached = next((u for u, info in known_boards().items() if info.get("device") == device), "")
        if cached:
            seen.unique_id, seen.cached = cached, True
        return seen, None, None
    except (PortNotFound, OSError) as e:
        seen.error = str(e)
        return seen, None, None
    hello = None
    try:
        hello = _ask_hello(port, timeout_s, SERIAL_SILENT_S if kind == "serial" else None)
    except (serial.SerialException, OSError) as e:
        seen.error = f"{type(e).__name__}: {e}"
    if hello is None:
        seen.error = seen.error or f"no stressrig HELLO within {timeout_s:.1f} s"
    else:
        seen.unique_id = str(hello.unique_id).lower()
        seen.board_id = str(hello.board_id)
        seen.firmware = ".".join(str(v) for v in hello.firmware_version)
        remember_board(seen.unique_id, device, seen.board_id)
    if keep_if is not None and seen.unique_id == keep_if:
        return seen, port, lock
    with contextlib.suppress(Exception):
        port.close()
    lock.release()
    return seen, None, None


def scan_boards(*, timeout_s: float = PROBE_TIMEOUT_S, probe: bool = True) -> list[BoardSeen]:
    """Every candidate port and the board on it (probed in parallel unless `probe` is
    False: then only the cache's uids, marked cached)."""
    cands = candidate_ports()
    if not probe:
        by_dev = {info.get("device"): uid for uid, info in known_boards().items()}
        return [
            BoardSeen(d, k, desc, unique_id=by_dev.get(d, ""), cached=d in by_dev)
            for d, k, desc in cands
        ]
    with ThreadPoolExecutor(max_workers=PROBE_PARALLEL) as ex:
        futs = [ex.submit(probe_port, d, k, desc, timeout_s=timeout_s) for d, k, desc in cands]
        return [f.result()[0] for f in futs]


def _listing(seen: list[BoardSeen]) -> str:
    lines = []
    for s in seen:
        if s.unique_id and not s.cached:
            lines.append(f"  uid:{s.unique_id}  {s.board_id} on {s.device}")
        elif s.busy:
            who = f"uid:{s.unique_id} (last seen) " if s.unique_id else ""
            lines.append(f"  {who}on {s.device}: in use by another program")
    return "\n".join(lines) or "  (no stressrig board answered on any port)"


def claim_board(
    uid: str, *, timeout_s: float = PROBE_TIMEOUT_S, baudrate: int = 921_600
) -> tuple[str, Any, PortLock]:
    """Find the board with unique id `uid`; return (device, open port, its lock).

    The port where it was seen last is tried first (no other port is touched when it is
    still there). Raises PortNotFound listing the boards present when it is not found,
    PortInUse when its port is held by another program."""
    want = normalize_uid(uid)
    if not want:
        raise PortNotFound(
            f"uid:{uid}: not a unique id; give the hex id `stressrig ports` shows, "
            "e.g. uid:e711daa69d4c"
        )
    cands = candidate_ports()
    hint = known_boards().get(want, {}).get("device")
    first = [c for c in cands if c[0] == hint]
    seen_first: list[BoardSeen] = []
    if first:
        seen, port, lock = probe_port(*first[0], timeout_s=timeout_s, keep_if=want)
        if port is not None and lock is not None:
            return seen.device, port, lock
        if seen.busy and seen.unique_id == want:
            raise PortInUse(f"board uid:{want} on {seen.device}: {seen.busy}")
        seen_first.append(seen)
    rest = [c for c in cands if c[0] != hint]
    found: list[tuple[BoardSeen, Any, PortLock | None]] = []
    with ThreadPoolExecutor(max_workers=PROBE_PARALLEL) as ex:
        futs = [ex.submit(probe_port, *c, timeout_s=timeout_s, keep_if=want) for c in rest]
        found = [f.result() for f in futs]
    hits = [(s, p, lk) for s, p, lk in found if p is not None]
    for _s, p, lk in hits[1:]:  # two ports with one uid (a TCP bridge and its pty): keep one
        with contextlib.suppress(Exception):
            p.close()
        if lk is not None:
            lk.release()
    if hits and hits[0][2] is not None:
        return hits[0][0].device, hits[0][1], hits[0][2]
    busy = [s for s, _, _ in found if s.busy and s.unique_id == want]
    if busy:
        raise PortInUse(f"board uid:{want} on {busy[0].device}: {busy[0].busy}")
    seen_all = seen_first + [s for s, _, _ in found]
    raise PortNotFound(
        f"no board with unique id {want} is connected. Boards present:\n"
        f"{_listing(seen_all)}\n"
        "Check the cable and the id (`stressrig ports` lists ports and ids)."
    )
