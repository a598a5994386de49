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
