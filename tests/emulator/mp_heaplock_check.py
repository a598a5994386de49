# Run by test_emulator.py on the MicroPython unix port: the firmware loop on the emulated
# board, streaming all four streams and running a pulse train, under heap_lock(). The plant
# lifts the lock for itself (it is hardware, not the board's heap); the firmware must not
# allocate.
import sys

import board
import micropython

board.configure(scenario="naion_fbg_pouch", speed=20.0)


class NullLink:
    def readinto(self, buf):
        return 0

    def write(self, buf, n, off=0):
        return n


hal = board.make_hal(NullLink())
from firmware.app import App  # noqa: E402

app = App(board.DEFINITION, hal)
app.set_streaming(True)
n = 0
# a pulse train (1 mA for 50 ms, 50 ms off), so source writes reach the plant under the lock
# the longest watchdog the board allows: the loop below sends no heartbeat, and a watchdog
# stop (like any waveform end) makes one float for the charge passed, outside the edge path
app.commands.apply(0x06, (board.DEFINITION["limits"]["max_watchdog_ms"],))
if "pulse" in sys.argv:
    # no cutoffs: the end of a waveform (one charge float) is outside the per-edge path
    # (times in integer us; count 65535: longer than the run)
    app.commands.apply(0x12, (0, 1e-3, 50000, 50000, 65535, 0.0, 0.0, 0.0, 0))
    app.commands.after()
if "strain" in sys.argv:
    # the FBG strain loops (issue 14) on the real UART interrogator driver: adaptive pulses
    # whose rests need both |dV/dt| and |de/dt| (thresholds the emulated cell meets within
    # a few readings), and a strain-rate derating armed (limit never reached). FBG readings
    # first: the reference grating's wavelength ratio is taken at the command.
    for _ in range(500):
        app.step()
    app.commands.apply(0x33, (1, 8, 0.0, 0.0, 0.5, 1, 0, 1, 0.0, 1e5, 5e4))
    app.commands.apply(
        0x31,
        (0, 1e-3, 50000, 65535, 0, 1000000, 20000, 10.0, 20000, 0.0, 0.0, 0.0, 0)
        + (1, 0, 1, 1e4, 0.0, 20000),
    )
    app.commands.after()
for _ in range(2000):  # warm up: first-use allocations (bound methods, caches) happen here
    app.step()
micropython.heap_lock()
try:
    for _ in range(20000):
        app.step()
        n += 1
finally:
    micropython.heap_unlock()
print(
    "OK",
    n,
    hal.hw.plant.t_us,
    sum(app.sampler.index[s] for s in range(4)),
    app.waveform.edges,
    hal.hw.plant.charge_c,
    app.waveform.index,
)
