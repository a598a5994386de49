"""Fixtures of the instruction-level RP2040 bench (see README.md beside this file).

These tests run only when asked for by path (`pytest hil_tests/rp2040`, `nox -s
hil_rp2040`): a plain `pytest` from the repository root collects them but skips them, since
one board takes minutes of wall time. They also skip when rp2040py or the firmware image is
missing, with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil_tests.rp2040.harness import (
    FAULT_JIG,
    Rp2040Sim,
    build_filesystem,
    missing_requirements,
)
from host_sdk.client import Rig

HERE = Path(__file__).resolve().parent

# Wall-clock bounds only: every assertion is on device time (emulator ns or the board's µs).
# The emulated board runs 15-60x slower than a Pico, slower still on a busy machine: the
# device-time waits of these tests (< 0.5 s each) take seconds to a minute of wall time.
# The boot to the HELLO is 1.6 s of device time (1 s of it main.py's REPL-escape window):
# up to 5 min of wall time with both cores hogged (60 s was too short: the fixture then
# reset the board and the boot test failed on the wall clock, not on the firmware).
CONNECT_TIMEOUT_S = 300.0
# A retry is not harmless here: it feeds the board's watchdog and repeats GET_STATUS/GET_INFO,
# which changes what the tests measure in device time. With both cores hogged the emulator ran
# 110-200x slower than a Pico, so 8 s of wall time was only 40-70 ms of device time.
COMMAND_TIMEOUT_S = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "smoke: the short subset of the RP2040 bench that CI runs (-m smoke)"
    )


def _asked_for(config: pytest.Config) -> bool:
    for arg in config.args:
        p = Path(str(arg).split("::")[0]).resolve()
        if p == HERE or HERE in p.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _asked_for(config):
        return
    skip = pytest.mark.skip(reason="RP2040 bench: run it by path (nox -s hil_rp2040)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


class PicoBench:
    """One emulated Pico for one test module: the runner process, the SDK client (opened the
    way a host opens a freshly plugged board: right away, while it boots) and helpers."""

    def __init__(self, sim: Rp2040Sim) -> None:
        self.sim = sim
        self.first_connect_error: str | None = None
        self.boot_to_hello_device_s: float | None = None
        self.app_running = True  # False once a test left the app (REPL, exception)
        self._rig: Rig | None = None

    @property
    def rig(self) -> Rig:
        if self._rig is None:
            self._rig = self.connect()
        return self._rig

    def _open(self) -> Rig:
        return Rig.open(
            self.sim.port,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            command_timeout_s=COMMAND_TIMEOUT_S,
            retries=2,
            reconnect_timeout_s=180.0,  # a reboot takes ~20 s of wall time here
            heartbeat_s=None,  # the watchdog test needs a silent host; no test outlives 5 s
        )

    def connect(self) -> Rig:
        """Handshake during boot; when that fails (the board fell to the REPL, or never
        answered), note why, reset the board, wait for its boot HELLO and connect again."""
        t0 = self.sim.device_s()
        try:
            rig = self._open()
            self.boot_to_hello_device_s = self.sim.device_s() - t0
            return rig
        except Exception as e:  # noqa: BLE001 - recorded for test_boot_handshake
            self.first_connect_error = f"{type(e).__name__}: {e}"
        sent = self.sim.reset()["bytes_to_host"]
        self.sim.wait_output(after_bytes=sent)
        return self._open()

    def restart(self) -> Rig:
        """Pull the RUN pin and connect after the boot HELLO (a test left the app)."""
        if self._rig is not None:
            try:
                self._rig.close(leave_current_off=False)
            except Exception:  # noqa: BLE001 - the board may be at the REPL
                pass
            self._rig = None
        sent = self.sim.reset()["bytes_to_host"]
        self.sim.wait_output(after_bytes=sent)
        self._rig = self._open()
        resync = self._rig._resync_thread  # the boot flag starts one: let it finish first
        if resync is not None:
            resync.join(timeout=120.0)
        # The simulated HX711 comes out of the reset powered down (power_downs +1) and at
        # 10 SPS (RATE low until board.py sets it): its first word reaches the firmware ~0.3 s
        # after main.py starts, after the firmware's 3-period timeout (EV_SENSOR_FAULT at
        # 0.07 s), and a waveform started before it latched on CAUSE_SENSOR_FAULT
        # (test_output_off_when_the_loop_raises after test_enter_repl_then_raw_repl). Wait
        # until the PIO program has read a few conversions.
        reads = self.sim.state()["hx711"]["reads"]
        deadline = time.monotonic() + 300.0
        while self.sim.state()["hx711"]["reads"] < reads + 3:
            if time.monotonic() > deadline:
                raise TimeoutError("the HX711 was not read after the reset")
            self.sim.wait_device_s(self.sim.device_s() + 0.05)
        self.app_running = True
        return self._rig

    def close(self) -> None:
        if self._rig is not None:
            try:
                self._rig.close(leave_current_off=False)
            except Exception:  # noqa: BLE001 - the board may be at the REPL by now
                pass
        self.sim.close()

    # ---- waiting on device time -------------------------------------------------------------
    def wait_rig_time(self, t_s: float, timeout_s: float = 180.0) -> None:
        """Until the SDK has seen device time >= t_s (needs streams or events)."""
        deadline = time.monotonic() + timeout_s
        while self.rig.device_time_s < t_s:
            if time.monotonic() > deadline:
                raise TimeoutError(f"device time stuck at {self.rig.device_time_s:.3f} s")
            time.sleep(0.05)

    def settle(self, device_s: float = 0.005) -> None:
        """Let `device_s` of device time pass. The firmware sends EV_WAVEFORM_START just
        before it sets the output (same loop pass): a test that reads the pins as soon as
        the event arrives can be faster than that."""
        self.sim.wait_device_s(self.sim.device_s() + device_s)

    def wait_event(self, codes: tuple[int, ...], after: int, timeout_s: float = 120.0) -> Any:
        ev = self.rig.wait_event(codes, after=after, timeout_s=timeout_s)
        assert ev is not None, f"no event {codes} within {timeout_s} s of wall time"
        return ev


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """On a failure, attach the last bytes the board sent (a traceback, a REPL prompt)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    bench = getattr(item, "funcargs", {}).get("pico")
    if report.failed and isinstance(bench, PicoBench) and bench.sim.proc.poll() is None:
        try:
            tail = bench.sim.log()["tail"]
        except Exception as e:  # noqa: BLE001 - diagnostics only
            tail = f"(runner did not answer: {e})"
        text = "".join(c if c.isprintable() or c in "\r\n" else "." for c in tail)
        report.sections.append(("last bytes from the board", text[-2000:]))


@pytest.fixture(scope="module")
def pico(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PicoBench]:
    why = missing_requirements()
    if why and os.environ.get("STRESSRIG_RP2_REQUIRED"):
        pytest.fail(f"STRESSRIG_RP2_REQUIRED is set (CI): {why}")  # a skip would pass CI
    if why:
        pytest.skip(why)
    # boot.py: the fault jig (harness.FAULT_JIG) for test_output_off_when_the_loop_raises
    fs = build_filesystem(tmp_path_factory.mktemp("rp2040"), extra_files={"boot.py": FAULT_JIG})
    # The HX711 runs 5 % fast (its RC oscillator is not a crystal): the PIO RX FIFO fills
    # within a second unless the firmware drains it, so a stale reading shows at once.
    sim = Rp2040Sim.start(fs, hx711_drift=0.05)
    bench = PicoBench(sim)
    try:
        yield bench
    finally:
        bench.close()


@pytest.fixture
def rig(pico: PicoBench) -> Rig:
    return pico.rig
