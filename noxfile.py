"""The one entry point for stressrig's sessions: tests, lint, firmware, hil, bench, demo.

Every session installs what it needs into its own virtualenv, so a fresh machine with
Python 3.11 and pip needs only `python3 -m pip install nox` first.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
BOARDS = ["rp2040_pico", "esp32s3", "emulated"]
HOST_CODE = ["host_sdk", "protocol", "tests", "hil_tests", "bench", "noxfile.py"]


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


def _install_mpwasm(session: nox.Session) -> None:
    # the official MicroPython WebAssembly port: a 32-bit VM (31-bit small ints, ticks
    # wrapping at 2**30, heap_lock) for the firmware and protocol tests and the firmware
    # heap figure (tests/mpvm); build/ is gitignored
    session.run(
        "npm",
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        "build/mpwasm",
        "@micropython/micropython-webassembly-pyscript@1.27.0",
        external=True,
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, property, firmware (MicroPython unix port) and HIL tests on the emulated board."""
    _install(session)
    _install_mpwasm(session)
    session.run("pytest", "-q", "-ra", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy on the host code."""
    _install(session)
    session.run("ruff", "check", *HOST_CODE)
    session.run("ruff", "format", "--check", *HOST_CODE)
    session.run("mypy", "host_sdk")


@nox.session(python=PYTHON)
def firmware(session: nox.Session) -> None:
    """Compile firmware/, protocol/ and each board file with mpy-cross; report sizes.

    Output goes to build/<board>/. Pass board names to build only those:
    `nox -s firmware -- rp2040_pico`.
    """
    _install(session)
    for board in session.posargs or BOARDS:
        session.run("python", "firmware/build.py", "--board", board)


@nox.session(python=PYTHON)
def hil(session: nox.Session) -> None:
    """The HIL bench. Emulated board by default; `nox -s hil -- --port /dev/ttyACM0
    --board rp2040_pico` runs the same suite on a real board."""
    _install(session)
    session.run("pytest", "-q", "-ra", "hil_tests", *session.posargs)


@nox.session(python=PYTHON)
def hil_rp2040(session: nox.Session) -> None:
    """The official MicroPython rp2 image on an instruction-level RP2040 (rp2040py) with
    the real boards/rp2040_pico module and simulated parts, driven through the SDK over a
    pty (hil_tests/rp2040/README.md). Needs ../shared/rp2-firmware/ (or
    STRESSRIG_RP2_IMAGE). Smoke subset for CI: `nox -s hil_rp2040 -- -m smoke`."""
    session.install("-e", ".[dev,rp2040]")
    session.run("pytest", "-q", "-ra", "hil_tests/rp2040", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: prints a table and writes bench/results.json."""
    session.install("-e", ".[dev,bench]")  # PyBaMM: the film solver's baseline
    _install_mpwasm(session)  # fw_peak_heap_kb is measured on the 32-bit VM
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: a pulsed experiment on the emulated board, recorded and analysed."""
    _install(session)
    session.run("stressrig", "demo", *session.posargs)
