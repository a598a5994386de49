"""The watchdog counts device time, and the emulated board's device time can run far ahead of
the wall clock. A host that heartbeats as the SDK does must never be latched, at any speed;
a host that dies must be latched within the watchdog timeout of device time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
import serial

from host_sdk.client import Rig
from host_sdk.emulator import start_emulator
from host_sdk.wire.decoder import Decoder
from host_sdk.wire.messages import Event
from protocol import defs

WATCHDOG_S = 1.0


@pytest.mark.timeout(600)
def test_a_heartbeating_host_is_never_latched_at_max_speed() -> None:
    with start_emulator("nak50_pulsed", speed="max", seed=2) as emu:
        with Rig.open(emu.port, watchdog_s=WATCHDOG_S) as rig:
            rig.set_cell(area_m2=3.85e-5)
            rig.configure_stream("elec", rate_hz=1000.0)
            rig.set_streaming(True)
            mark = rig.event_mark()
            # 40 s of device time: 40 watchdog periods, at whatever speed the machine allows
            rig.pulse_train(amplitude_a_m2=5.0, t_on_s=1.0, t_off_s=1.0, count=20)
            end = rig.wait_event(after=mark, timeout_s=480)
            assert end is not None, "the waveform never ended"
            assert end.code == defs.EV_WAVEFORM_END, end
            assert end.cause_name == "completed", end
            assert not any(rig.lost_samples.values())


_HOST = textwrap.dedent(
    """
    import sys, time
    from host_sdk.client import Rig
    rig = Rig.open(sys.argv[1], watchdog_s=float(sys.argv[2]))
    rig.set_cell(area_m2=3.85e-5)
    rig.configure_stream("elec", rate_hz=1000.0)  # the launcher sees device time often
    rig.set_streaming(True)
    rig.constant_current(current_a=1e-4)
    print("running", flush=True)
    while True:
        time.sleep(1)
    """
)


@pytest.mark.timeout(600)
def test_a_killed_host_is_latched_within_the_watchdog_timeout() -> None:
    with start_emulator("nak50_pulsed", speed="max", seed=3) as emu:
        host = subprocess.Popen(
            [sys.executable, "-c", _HOST, emu.port, str(WATCHDOG_S)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert host.stdout is not None
            assert host.stdout.readline().strip() == "running"
            time.sleep(0.5)  # a few heartbeats
            t_kill = emu.device_time_s()
            host.send_signal(signal.SIGKILL)
            host.wait()
        finally:
            if host.poll() is None:
                host.kill()
        # a silent observer: it reads the port and sends nothing, so it never feeds the
        # watchdog (the board treats a host silent for 6 s of wall time as gone)
        dec = Decoder()
        latch = None
        with serial.Serial(emu.port, timeout=0.1) as port:
            deadline = time.monotonic() + 120
            while latch is None and time.monotonic() < deadline:
                for msg in dec.feed(port.read(65536)):
                    if isinstance(msg, Event) and msg.code == defs.EV_STOP_LATCHED:
                        latch = msg
        assert latch is not None, "the board never latched after its host died"
        assert latch.cause == defs.CAUSE_WATCHDOG
        t_latch = latch.t_us * 1e-6  # device time is far below the u32 wrap (71 min)
        # The last heartbeat reached the board before the kill, and at most 7/8 of a timeout
        # of device time before it (the host lease), so the latch comes one timeout after
        # it. t_kill is the device time of the last frame the launcher saw before the kill;
        # the board may have been up to a few frames further on.
        assert WATCHDOG_S / 8 - 0.01 <= t_latch - t_kill <= WATCHDOG_S + 0.25, (t_kill, t_latch)
