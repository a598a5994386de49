# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Firmware benchmarks on the MicroPython unix port (fake HAL, virtual clock).

fw_alloc_bytes_per_sample  heap bytes allocated per recorded sample over 2000 loop
                    iterations with every stream on (load 80 Hz, FBG 1 kHz x 3 gratings,
                    elec 1 kHz, temp 10 Hz), streaming, a waveform running, STATUS 1 Hz.
                    Must be 0 (the tests also run this under micropython.heap_lock()).
fw_alloc_bytes_per_sample_wasm32  the same on the 32-bit WebAssembly VM (31-bit small ints:
                    a CRC or counter >= 2**30 would allocate there). Must be 0.
fw_peak_heap_kb     on the 32-bit WebAssembly VM (a board's object sizes): the largest live
                    heap (gc.mem_alloc() right after a collection) of the firmware, compiled to
                    .mpy, after boot and after each of 10 s of streaming every channel with a
                    pulse train, answering GET_INFO each second. Baseline: the RP2040's ~160
                    KiB free heap (241 184 B free after boot on the v1.28 RPI_PICO image; the
                    rp2040 module measures what is left there with the real board running).
fw_min_heap_kb_unix64  informational: the smallest -X heapsize (KiB, 4 KiB steps) in which
                    the same run works on the 64-bit unix port, the emulated board's VM (its
                    pointers and object headers are twice a board's).
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
from tests import mpvm  # noqa: E402

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


def _wasm_hot_alloc():
    """(records, bytes allocated, us) of HOT on the 32-bit VM, or None without it."""
    if mpvm.wasm_module() is None:
        return None
    pre = "import sys\n" + "".join("sys.path.insert(0, %r)\n" % d for d in (TESTS, ROOT))
    p = mpvm.run("wasm32", pre + HOT, trees=(*mpvm.SOURCE_TREES, TESTS))
    for line in p.stdout.decode().splitlines():
        if line.startswith("@@"):
            return [int(x) for x in line[2:].split()]
    return None


def _wasm_peak_live_kb(tree):
    """Largest live heap and live heap after boot (KiB) on the 32-bit VM over boot and 10 s
    of streaming. Its gc.collect() runs only between top-level chunks (tests/mpvm), so the
    run is unrolled into one chunk per device second."""
    if mpvm.wasm_module() is None:
        return None
    seconds = [
        "r.run_s(1.0)\nr.link.frames = []\nr.link.seqs = []\n"
        "assert r.cmd(defs.CMD_GET_INFO)[0] == 'ack'\ngc.collect()\n"
    ] * 10
    chunks = [
        "import sys, gc\nsys.path.insert(0, %r)\nfrom rig import Rig\nfrom protocol import defs\n"
        "live = []\nr = Rig()\nr.cmd(defs.CMD_SET_STREAMING, (1,))\n"
        "r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.05, 0.2, 0.3, 0, 0, 0, 0, 0))\ngc.collect()\n" % tree
    ]
    chunks += seconds
    script = "\n#@@toplevel\nlive.append(gc.mem_alloc())\n".join(chunks)
    script += "\n#@@toplevel\nlive.append(gc.mem_alloc())\n"
    script += "assert r.link.samples[2] >= 950\n"
    script += "print('@@', max(live), live[0])\n"
    p = mpvm.run("wasm32", script, trees=(tree,))
    for line in p.stdout.decode().splitlines():
        if line.startswith("@@"):
            peak, boot = (int(x) for x in line[2:].split())
            return peak / 1024, boot / 1024
    return None


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
    hot32 = _wasm_hot_alloc()
    if hot32 is not None:
        out.append(
            {
                "name": "fw_alloc_bytes_per_sample_wasm32",
                "value": hot32[1] / hot32[0],
                "unit": "B/sample",
                "baseline": None,
                "ratio": None,
                "note": "32-bit WebAssembly VM, %d records (every stream, streaming, a "
                "waveform running)" % hot32[0],
            }
        )
    with tempfile.TemporaryDirectory() as tree:
        extra = [(os.path.join(TESTS, m + ".py"), m + ".mpy") for m in ("fakehal", "rig")]
        build.build(None, tree, None, extra)
        wasm = _wasm_peak_live_kb(tree)
        kb = _smallest_heap_kb(tree)
    if wasm is not None:
        peak, boot = wasm
        out.append(
            {
                "name": "fw_peak_heap_kb",
                "value": round(peak, 1),
                "unit": "KiB",
                "baseline": 160,
                "ratio": peak / 160,
                "note": "32-bit WebAssembly VM, .mpy firmware + test HAL: largest live heap "
                "after a collection over boot and 10 s of every stream with a pulse train "
                "(%.1f KiB after boot). Its heap grows on demand, so the smallest heap that "
                "works cannot be searched there; the real board on the rp2 VM: "
                "rp2040_heap_free_kb." % boot,
            }
        )
    out.append(
        {
            "name": "fw_min_heap_kb_unix64",
            "value": kb,
            "unit": "KiB",
            "baseline": None,
            "ratio": None,
            "note": "informational: smallest -X heapsize for the same run on the 64-bit unix "
            "port (64-bit objects; not a board figure)",
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
