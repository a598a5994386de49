# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""The sampling + packing hot path allocates nothing; the whole firmware runs in an
RP2040-sized heap (-X heapsize=160k) from compiled .mpy files; dropped samples counted."""

from protocol import defs

HOT = """
import gc, micropython
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
# a waveform in its steady state (edges allocate their events; 100 s on-time here)
from rig import Rig
app.commands.apply(defs.CMD_CONSTANT, (0, 0.01, 0.0, 0.0, 0.0, 0))
app.commands.after()
hal.freeze_adcs()
for i in range(500):
    app.step()
smp = app.sampler
r0 = r1 = a0 = a1 = 0   # globals exist before measuring (a new global allocates)
err = None
r0 = smp.records
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for i in range(2000):
    app.step()
a1 = gc.mem_alloc()
r1 = smp.records
micropython.heap_lock()
try:
    for i in range(3000):
        app.step()
except MemoryError as e:
    err = "MemoryError"
micropython.heap_unlock()
emit({"records": smp.records - r1, "alloc_per_sample": (a1 - a0) / (r1 - r0), "err": err,
      "fresh_streams": [smp.enabled[s] for s in range(4)], "running": app.waveform.running,
      "bytes": hal.link.bytes})
"""


def test_hot_path_allocates_nothing_all_streams(mp):
    (r,) = mp(HOT)
    print(
        "alloc per sample: %s B, records under heap_lock: %d"
        % (r["alloc_per_sample"], r["records"])
    )
    assert r["err"] is None
    assert r["alloc_per_sample"] == 0
    assert r["fresh_streams"] == [True] * 4 and r["running"] is True
    assert r["records"] > 3000 and r["bytes"] > 0


def test_whole_firmware_in_160k_heap(mp, mpy_tree):
    # The Pico's heap holds 32-bit objects: the 32-bit VM (wasm) is held to 160 KiB. The
    # 64-bit unix port doubles every pointer and object header, so the same firmware
    # needs more there; it runs with 1.6x the heap, as a check that nothing else grows.
    wide = mp.keywords["vm"] == "unix"
    (r,) = mp(
        """
import gc, micropython
from rig import Rig
from protocol import defs
gc.collect()
live_boot = 0
live_boot = gc.mem_alloc()
r = Rig()
gc.collect()
#@@toplevel
live_boot = gc.mem_alloc()
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.05, 0.2, 0.3, 1000, 0, 0, 0, 0))
for k in range(10):
    r.run_s(1.0)
    r.link.frames = []
    r.link.seqs = []
    r.cmd(defs.CMD_GET_INFO)
r.cmd(defs.CMD_STOP)
gc.collect()
#@@toplevel
emit({"live_boot": live_boot, "live_end": gc.mem_alloc(), "samples": r.link.samples,
      "bad": r.link.bad_crc})
""",
        heapsize="256k" if wide else "160k",
        paths=(mpy_tree,),
    )
    print(
        "live heap after boot: %.1f KiB, at the end: %.1f KiB"
        % (r["live_boot"] / 1024, r["live_end"] / 1024)
    )
    assert r["bad"] == 0
    assert r["samples"][2] >= 950
    # code + buffers; ~30 KiB spare for transients on the board's 32-bit heap
    assert r["live_boot"] < (205 if wide else 128) * 1024


def test_dropped_samples_counted_and_flagged(mp):
    (r,) = mp("""
import struct
from rig import Rig
from protocol import defs
r = Rig(keep_samples=True, rates=(80, 100, 100, 1))
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.run_s(1.0)
r.link.accept = 0          # host stops reading: frames refused
r.run_s(3.0)
r.link.accept = 7          # link takes only partial frames
r.run_s(1.0)
r.link.accept = None
r.run_s(1.0)
r.cmd(defs.CMD_GET_STATUS)
st = r.statuses()[-1]
frames = [(f[1], struct.unpack_from("<IIH", f[4], 0)) for f in r.link.frames
          if f[0] == defs.MSG_SAMPLES and f[2] == 2]
emit({"dropped": r.app.sampler.dropped, "status_dropped": st[2], "frames": frames,
      "recorded": r.app.sampler.index[2], "received": r.link.samples[2]})
""")
    fr = r["frames"]
    gaps = 0
    flagged = 0
    nxt = 0
    for flags, (first, _t0, n) in fr:
        if first != nxt:
            gaps += first - nxt
            assert flags & defs.FLAG_DROPPED
            flagged += 1
        nxt = first + n
    assert gaps > 0 and flagged >= 1
    assert r["received"] + gaps == nxt
    assert r["dropped"] >= gaps and r["status_dropped"] >= r["dropped"]
