"""MicroPython script preludes shared by the firmware tests (run by tests.mpvm on each VM)."""

# An App on the fake HAL streaming every stream fast (elec at 1 kHz), the watchdog out of
# the way: the start of the closed-loop heap-lock tests, which then arm a loop and run.
FAST_STREAMING_APP = """
import gc, micropython
import fakehal
from firmware.app import App
from protocol import defs
hal = fakehal.FakeHal(link=fakehal.NullLink())
d = dict(fakehal.DEFINITION)
d["streams"] = {"load": {"rate_hz": 80.0, "enabled": True},
                "fbg": {"rate_hz": 100.0, "enabled": True},
                "elec": {"rate_hz": 1000.0, "enabled": True},
                "temp": {"rate_hz": 10.0, "enabled": True}}
app = App(d, hal)
app.safety.watchdog_ms = 600000
app.set_streaming(1)
"""

# A UART fed by the test (`u.data.extend(...)`) for the interrogator driver, FbgUart: `u`.
FAKE_UART = """
class U:  # reads without allocating (a position into the data, no slicing)
    def __init__(self): self.data = bytearray(); self.pos = 0
    def any(self): return len(self.data) - self.pos
    def readinto(self, buf, nbytes=-1):
        n = len(buf) if nbytes < 0 else nbytes
        left = len(self.data) - self.pos
        if n > left: n = left
        p = self.pos
        for i in range(n): buf[i] = self.data[p + i]
        self.pos = p + n
        return n
u = U()
"""
