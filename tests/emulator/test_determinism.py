"""The emulated board is reproducible: device time is virtual, so machine load changes how
fast the world runs, never what it measures.

The same session runs twice, the second time with both cores hogged by busy loops. The
world holds at a device time until the waveform is set up, so the waveform starts at the
same device time in both runs; from there every sample must be identical to the byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from host_sdk.client import Rig
from host_sdk.emulator import start_emulator
from protocol import defs

HOLD_AT_S = 1.0
RUN_S = 6.0
STREAM_RATES = {"elec": 1000.0, "load": 80.0, "fbg": 100.0, "temp": 10.0}


def _busy_loops(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _session(seed: int) -> tuple[float, dict[str, np.ndarray]]:
    """(waveform start device time, {stream: records from the start on})."""
    emu = start_emulator("nak50_pulsed", speed="max", seed=seed, hold_at_s=HOLD_AT_S)
    try:
        with Rig.open(emu.port, watchdog_s=2.0) as rig:
            deadline = time.monotonic() + 120
            while rig.status().uptime_ms < HOLD_AT_S * 1000:
                assert time.monotonic() < deadline, "the board never reached its hold"
                time.sleep(0.05)
            assert rig.status().uptime_ms == HOLD_AT_S * 1000  # held there
            for name, hz in STREAM_RATES.items():
                rig.configure_stream(name, rate_hz=hz)
            rig.set_cell(area_m2=3.85e-5)
            blocks = []
            rig.on_block(blocks.append)
            rig.set_streaming(True)
            mark = rig.event_mark()
            rig.pulse_train(amplitude_a_m2=10.0, t_on_s=0.25, t_off_s=0.25, count=8)
            emu.release()
            start = rig.wait_event((defs.EV_WAVEFORM_START,), after=mark, timeout_s=60)
            assert start is not None
            deadline = time.monotonic() + 300
            while rig.device_time_s < start.t_s + RUN_S + 0.5:
                assert time.monotonic() < deadline, "device time stopped"
                time.sleep(0.05)
            assert rig.wait_data(start.t_s + RUN_S, list(STREAM_RATES)), "streams fell silent"
            assert not any(rig.lost_samples.values())
    finally:
        emu.stop()
    out: dict[str, np.ndarray] = {}
    for name in STREAM_RATES:
        parts = [b for b in blocks if b.stream == name]
        recs = np.concatenate([b.records for b in parts])
        t = np.concatenate([b.t_s for b in parts])
        out[name] = recs[(t >= start.t_s) & (t < start.t_s + RUN_S)]
    return start.t_s, out


@pytest.mark.timeout(900)
def test_same_session_gives_identical_samples_on_an_idle_and_a_busy_machine() -> None:
    t0_idle, idle = _session(seed=5)
    hogs = _busy_loops(os.cpu_count() or 2)
    try:
        t0_busy, busy = _session(seed=5)
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    assert t0_idle == t0_busy == pytest.approx(HOLD_AT_S, abs=1e-3)
    for name in STREAM_RATES:
        a, b = idle[name], busy[name]
        assert len(a) == len(b) > 0, name
        assert a.tobytes() == b.tobytes(), f"{name}: samples differ between the two runs"
    # the waveform really ran: the current switched during the compared window
    current_counts = idle["elec"][idle["elec"].dtype.names[2]]
    assert np.ptp(current_counts) > 100
