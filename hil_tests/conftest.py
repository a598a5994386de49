"""The HIL bench: every test talks to a board through the wire, via the SDK's public API.

By default each test module gets its own emulated board (host_sdk.emulator) with the
scenario, speed and seed the module asks for in a module-level ``BENCH = BenchSpec(...)``.
With ``--port PORT --board NAME`` the same modules run against a real board (speed 1);
tests that need the plant's hidden truth (``bench.truth``) skip there with a reason.

    pytest hil_tests                                  # emulated boards
    pytest hil_tests --port /dev/ttyACM0 --board rp2040_pico

Measured figures (edge timing p99, recovered vs true parameters) are collected with the
``figure`` fixture, attached to the test report (``record_property``) and printed in the
terminal summary.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host_sdk.client import Rig

_FIGURES = pytest.StashKey[list]()


@dataclass
class BenchSpec:
    """What a test module needs from an emulated board.

    overrides: deep-merged into the scenario (a derived scenario file is written for it);
    used to lower acquisition rates that the emulated hardware produces whether or not they
    are streamed (HX711 conversions, interrogator sweeps), so long experiments can run at a
    high clock speed on a 2-core machine. The plant physics is never overridden silently:
    each module says what it changes and why.
    """

    scenario: str = "nak50_pulsed"
    speed: float = 5.0
    seed: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    rig_options: dict[str, Any] = field(default_factory=dict)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("stressrig-hil", "stressrig hardware-in-the-loop bench")
    g.addoption(
        "--port",
        default=None,
        help="serial port or URL of a real board (default: an emulated board per module)",
    )
    g.addoption(
        "--hil-long",
        action="store_true",
        default=False,
        help="also run the long variants of the closed-loop experiments (minutes more)",
    )
    g.addoption(
        "--board",
        default=None,
        help="board definition name of the board on --port (e.g. rp2040_pico)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FIGURES] = []
    config.addinivalue_line(
        "markers", "needs_plant: needs the emulated plant's hidden truth (skipped on hardware)"
    )


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Bench:
    """One board for one test module: the Rig, the emulator (None on hardware), helpers."""

    def __init__(self, rig: Rig, emu: Any, speed: float, board_name: str) -> None:
        self.rig = rig
        self.emu = emu
        self.speed = speed
        self.board_name = board_name

    @property
    def emulated(self) -> bool:
        return self.emu is not None

    @property
    def truth(self) -> dict[str, Any]:
        """The plant's hidden parameters (skips the test on real hardware)."""
        if self.emu is None:
            pytest.skip("needs the emulated plant's hidden truth (not available on hardware)")
        return self.emu.scenario

    def require_emulator(self, why: str) -> Any:
        if self.emu is None:
            pytest.skip(f"emulator only: {why}")
        return self.emu

    def wall_s(self, device_s: float) -> float:
        """Wall seconds that `device_s` of device time take at the nominal speed."""
        return device_s / self.speed

    def timeout_s(self, device_s: float) -> float:
        """A generous wall-clock timeout for `device_s` of device time: the emulated
        board's clock slips below the requested speed when the VM cannot keep up."""
        return 10.0 * self.wall_s(device_s) + 20.0

    def sleep_device(self, device_s: float) -> None:
        """Let `device_s` of device time pass. Measured on the samples/events arriving when
        a stream is on (the emulator's speed is a maximum, not a promise); at the nominal
        speed in wall time when nothing arrives to measure it by."""
        rig = self.rig
        t0 = rig.device_time_s
        time.sleep(self.wall_s(device_s))
        if rig.device_time_s == t0:
            return  # nothing streaming: no device time to go by
        deadline = time.monotonic() + self.timeout_s(device_s)
        while rig.device_time_s < t0 + device_s and time.monotonic() < deadline:
            time.sleep(0.01)

    def wait_device_time(self, t_dev_s: float, timeout_wall_s: float = 30.0) -> None:
        """Wait until the rig has seen device time >= t_dev_s (needs a stream or events)."""
        deadline = time.monotonic() + timeout_wall_s
        while self.rig.device_time_s < t_dev_s:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"device time stuck at {self.rig.device_time_s:.3f} s, "
                    f"waiting for {t_dev_s:.3f} s"
                )
            time.sleep(0.01)

    @contextlib.contextmanager
    def world_held_at(self, t_dev_s: float) -> Iterator[None]:
        """On an emulated board, stop device time at `t_dev_s` (or where it is, if it is
        already past) until the block ends; the board still answers at the frozen time, so
        a host slowed down by a busy machine cannot let a waveform run on into a cutoff.
        On a real board device time is wall time and nothing is held."""
        if self.emu is None:
            yield
            return
        self.emu.hold(t_dev_s)
        try:
            yield
        finally:
            self.emu.release()

    def wait_held(self, t_dev_s: float, timeout_wall_s: float = 120.0) -> float:
        """After `emu.hold(t_dev_s)`: wait until the board stands at the hold (its STATUS,
        answered at the frozen time, stops moving close to it); returns the board's device
        time there. On a real board, the host's view of device time now."""
        rig = self.rig
        if self.emu is None:
            rig.status()
            return rig.device_time_s
        deadline = time.monotonic() + timeout_wall_s
        last = -1.0
        while True:
            rig.status()
            now = rig.device_time_s
            if now == last and now >= t_dev_s - 0.2:
                return now
            last = now
            if time.monotonic() > deadline:
                raise TimeoutError(f"the board did not stop at the hold at {t_dev_s:.3f} s")
            time.sleep(0.05)

    def quiet(self) -> None:
        """Back to a known state: no waveform, no latch, streaming off, streams at rest."""
        rig = self.rig
        rig.stop()
        st = rig.status()
        if st.state == 2:  # latched
            rig.clear_fault()
        rig.set_streaming(False)


def _board_name(config: pytest.Config) -> str:
    return str(config.getoption("--board") or "")


@pytest.fixture(scope="module")
def bench(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    spec: BenchSpec = getattr(request.module, "BENCH", BenchSpec())
    port = request.config.getoption("--port")
    emu = None
    if port:
        speed = 1.0
        url = str(port)
        options = {"watchdog_s": None, **spec.rig_options}
    else:
        from host_sdk.emulator import load_scenario, start_emulator

        scenario = spec.scenario
        if spec.overrides:
            sc = _deep_merge(load_scenario(spec.scenario), spec.overrides)
            path = tmp_path_factory.mktemp("scenario") / f"{spec.scenario}.json"
            path.write_text(json.dumps(sc))
            scenario = str(path)
        speed = float(spec.speed)
        emu = start_emulator(scenario, speed=speed, seed=spec.seed)
        url = emu.port
        # The watchdog counts device time while the heartbeat thread ticks in wall time:
        # at `speed` x, 0.2 s of wall is 0.2 * speed s of device time. Give it 10 heartbeats
        # of slack (4 s of wall, board maximum 600 s) so a busy 2-core machine does not trip
        # it; the watchdog itself is tested with the heartbeat off (test_safety).
        options = {
            "heartbeat_s": 0.2,
            # the board shares the machine's cores: under load it may not answer for seconds
            "command_timeout_s": 3.0,
            "watchdog_s": min(600.0, max(5.0, 4.0 * speed)),
            **spec.rig_options,
        }
    try:
        rig = Rig.open(url, **options)
    except BaseException:
        if emu is not None:
            emu.stop()
        raise
    b = Bench(rig, emu, speed, _board_name(request.config) or "emulated")
    try:
        yield b
    finally:
        try:
            rig.close()
        finally:
            if emu is not None:
                emu.stop()


@pytest.fixture
def rig(bench: Bench) -> Rig:
    return bench.rig


@pytest.fixture
def figure(request: pytest.FixtureRequest, record_property: Any):
    """figure(name, value, unit="", **details): report a measured figure."""

    def report(name: str, value: float, unit: str = "", **details: Any) -> None:
        record_property(name, value)
        request.config.stash[_FIGURES].append(
            (request.node.nodeid.split("::")[-1], name, value, unit, details)
        )

    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figs = config.stash.get(_FIGURES, [])
    if not figs:
        return
    tr = terminalreporter
    tr.section("stressrig HIL figures")
    for test, name, value, unit, details in figs:
        extra = ", ".join(f"{k}={_fmt(v)}" for k, v in details.items())
        tr.write_line(f"{name:<34} {_fmt(value):>12} {unit:<10} {extra}   [{test}]")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    return str(v)


def write_scenario(path: Path, sc: dict[str, Any]) -> str:
    path.write_text(json.dumps(sc))
    return str(path)
