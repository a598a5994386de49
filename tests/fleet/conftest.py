"""Fixtures of the fleet tests: emulated boards of their own (seen by no other test's port
scan and seeing none of theirs), a real Mosquitto broker on loopback, headless Chromium.

Services: a test whose binary (mosquitto, chromium, chromedriver) is missing is skipped
with the reason, except in CI (CI=true), where it fails: CI must have them
(.ci/setup-services installs them)."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def need_binary(name: str, *candidates: str) -> str:
    """The path of a service binary, else skip (outside CI) or fail (in CI)."""
    for c in (name, *candidates):
        found = shutil.which(c) or (c if os.path.isfile(c) and os.access(c, os.X_OK) else None)
        if found:
            return found
    why = f"{name} is not installed (Debian: .ci/setup-services installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(
    port: int, proc: subprocess.Popen[Any], what: str, limit_s: float = 30.0
) -> None:
    """Until something accepts on 127.0.0.1:port (a readiness wait, not a timed check)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {limit_s} s")


@pytest.fixture(autouse=True)
def _own_boards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Port scans see only this test's emulated boards; the uid cache is this test's."""
    boards = tmp_path / "boards"
    boards.mkdir()
    monkeypatch.setenv("STRESSRIG_EMU_GLOB", str(boards / "*" / "ttyEMU0"))
    monkeypatch.setenv("STRESSRIG_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("STRESSRIG_SCAN_SERIAL", "0")
    return boards


@pytest.fixture
def emulated(_own_boards: Path) -> Iterator[Callable[..., Any]]:
    """start(seed=1, speed="max", ...) -> a running Emulator whose pty lives under this
    test's boards folder; all are stopped at the end."""
    from host_sdk.emulator import Emulator

    started: list[Any] = []

    def start(
        seed: int = 1,
        speed: Any = "max",
        scenario: str = "nak50_pulsed",
        hidden: bool = False,
        **kw: Any,
    ) -> Any:
        # hidden: its pty is outside the scanned folder (a test links it in under a name)
        where = (_own_boards.parent / "hidden") if hidden else _own_boards
        (where / f"emu{seed}").mkdir(parents=True)
        emu = Emulator(scenario, seed=seed, speed=speed, workdir=str(where / f"emu{seed}"), **kw)
        started.append(emu)
        assert emu.wait_ready(30.0), "the emulated board did not boot"
        return emu

    yield start
    for emu in started:
        with contextlib.suppress(OSError):  # a test may have stopped it already
            emu.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real Mosquitto broker on 127.0.0.1 (random free port, temp config); with a
    password file for user `rig` / password `secret`, anonymous clients refused."""
    exe = need_binary("mosquitto", "/usr/sbin/mosquitto")
    passwd = need_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    port = free_port()
    pwfile = tmp_path / "mosquitto.passwd"
    subprocess.run([passwd, "-c", "-b", str(pwfile), "rig", "secret"], check=True)
    pwfile.chmod(0o600)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
        "persistence false\nlog_dest stderr\n"
        # started as root, mosquitto drops to the `mosquitto` user, which cannot read the
        # test's private folder: stay who we are
        f"user {getpass.getuser()}\n"
    )
    log = open(tmp_path / "mosquitto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, proc, "mosquitto")
        secret = tmp_path / "mqtt.pw"
        secret.write_text("secret\n")
        yield {"host": "127.0.0.1", "port": port, "user": "rig", "password_file": str(secret)}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
