# ruff: noqa: UP031  (MicroPython snippets built with %-formatting)
"""The firmware on an instruction-level RP2040 (rp2040py, the official MicroPython v1.28 rp2
image, the real boards/rp2040_pico module, simulated parts: hil_tests/rp2040/).

The board streams its default streams (load 80 SPS from the PIO HX711 program, FBG from 100
interrogator lines/s on UART0, elec 100 Hz, temp 1 Hz) to the SDK over the USB CDC pty for
RP2040_BENCH_S (default 10) seconds of device time after 1 s of warm-up. A probe runs inside
MicroPython: main.py is replaced by one that wraps the HAL clock's sleep_us (the loop's only
idle point) to add up the time slept, and once per device second stores (device µs, µs slept,
idle calls, and gc.mem_alloc(), gc.mem_free() only at the snapshots just before and just after
the window and while not streaming: each is a ~9 ms heap scan) in a preallocated array. The
loop's idle point is hal.link.wait (sleep until a deadline or host input) when the link has
one, else hal.clock.sleep_us; both are wrapped. After the window the host sends CMD_ENTER_REPL; the
probe writes the array to /probe.txt first (the HAL may reset into the REPL) and the host
reads it over the raw REPL.

rp2040_cpu_fraction_default_streams  busy / elapsed device time in the window, busy =
    elapsed - idle - the probe's own measured cost per idle call. Target <= 0.5.
rp2040_us_per_sample           busy µs / samples taken in the window (all streams).
rp2040_alloc_bytes_per_sample  growth of gc.mem_alloc() from the snapshot before the window
    to the one after it / samples (a collection in between, where mem_alloc fell, is said
    so). Must be 0.
rp2040_heap_free_kb            gc.mem_free() after a gc.collect() with the app and every stream
    running (taken when CMD_ENTER_REPL arrives).
rp2040_missed_samples_default_streams  samples missing in the window: load/elec/temp slots
    of their rate grid with no record (the loop came too late, or the board dropped the
    frame), load records flagged LOAD_NOT_READY, interrogator lines with no FBG record. The
    issue asks for 0. (STATUS samples_dropped over the whole streaming run, start and stop
    included: the slots the board skipped and the records it dropped, is in the note.)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WINDOW_S = float(os.environ.get("RP2040_BENCH_S", "10"))
# RP2040_BENCH_ELEC_HZ: the elec rate to measure at instead of the default 100 Hz (goal: is
# the highest rate the CPU budget check accepts sustainable?). The figures are then printed
# only, not merged into bench/results.json (those keys are for the default streams).
ELEC_HZ = float(os.environ.get("RP2040_BENCH_ELEC_HZ", "100"))
WARMUP_S = 1.0

PROBE = """
import gc, time
from array import array
N = 200
F = 6
snap = array('i', [0] * (N * F))
# n, origin, idle us, idle calls, next snapshot, overhead ns/call, live heap free, 0,
# heap readings taken in the window (0, 1, 2); state[7]: the snapshot that saw streaming
state = array('i', [0] * 9)
_ticks = time.ticks_us
_diff = time.ticks_diff


def _idle(fn, us):
    # the loop's idle point: time spent here is not work; once a device second, a snapshot
    t0 = _ticks()
    r = fn(us)
    t1 = _ticks()
    state[2] += _diff(t1, t0)
    state[3] += 1
    if _diff(t1, state[4]) >= 0:
        n = state[0]
        if n < N:
            i = n * F
            snap[i] = _diff(t1, state[1])
            snap[i + 1] = state[2]
            snap[i + 2] = state[3]
            # gc.mem_alloc()/mem_free() scan the heap: about 9 ms each here. Taken once a
            # second they stalled the loop 18 ms a second (a skipped FBG line and late elec
            # and load samples every second, counted as the firmware's): only at the
            # snapshots before and after the host's window, and while not streaming. (Taken
            # at the window's first snapshot, that 20 ms stall was inside the window: the
            # elec slot it skipped and the interrogator line it lost were its only misses)
            app = app_ref[0]
            if app is not None and app.sampler.streaming and not streaming[0]:
                streaming[0] = True
                state[7] = n  # the host's window starts at the next snapshot
            k = state[8]
            if k < 2 and streaming[0] and n - state[7] >= MARKS_N[k]:
                state[8] = k + 1
                k = -1
            if k < 0 or not streaming[0]:
                snap[i + 3] = gc.mem_alloc()
                snap[i + 4] = gc.mem_free()
            else:
                snap[i + 3] = -1
                snap[i + 4] = -1
            snap[i + 5] = 0
            state[0] = n + 1
        state[4] = time.ticks_add(state[4], 1000000)
    return r


class ProbeClock:
    def __init__(self, clock):
        self._sleep = clock.sleep_us
        self.ticks_diff = clock.ticks_diff
        self.ticks_add = clock.ticks_add

    def ticks_us(self):
        # the first reading is the firmware's DevClock origin (wire time 0); then the real one
        t = _ticks()
        state[1] = t
        state[4] = t
        self.ticks_us = _ticks
        return t

    def sleep_us(self, us):
        return _idle(self._sleep, us)


def _overhead(fn):
    # the probe's own cost per idle call (outside the timed interval): busy time to subtract
    s = state[0], state[2], state[3], state[4]
    state[4] = time.ticks_add(_ticks(), 100000000)
    n = 200
    t0 = _ticks()
    for _ in range(n):
        _idle(fn, 0)
    t1 = _ticks()
    for _ in range(n):
        fn(0)
    t2 = _ticks()
    state[0], state[2], state[3], state[4] = s
    state[5] = max(0, (_diff(t1, t0) - _diff(t2, t1)) * 1000 // n)


streaming = [False]
app_ref = [None]
# snapshots after the one that first saw streaming with a heap reading: that one (before the
# window) and the first after the window's end (heap
# readings there; the host's window runs from the first snapshot 1 s after streaming began)
MARKS_N = (0, @END_N@)


def save(path='/probe.txt'):
    with open(path, 'w') as f:
        f.write('state ' + ' '.join(str(v) for v in state) + '\\n')
        for k in range(state[0]):
            f.write('snap ' + ' '.join(str(snap[k * F + j]) for j in range(F)) + '\\n')


def run(board):
    hal = board.make_hal()
    link = hal.link
    wait = getattr(link, 'wait', None)
    _overhead(wait if wait is not None else hal.clock.sleep_us)
    hal.clock = ProbeClock(hal.clock)
    if wait is not None:  # the loop idles in hal.link.wait (input wakes it) when there is one
        link.wait = lambda us: _idle(wait, us)
    enter_repl = hal.enter_repl

    def saved_enter_repl():
        gc.collect()  # the app's objects are still alive: what the firmware really holds
        state[6] = gc.mem_free()
        save()  # before the HAL resets the board into the REPL (RAM is lost then)
        enter_repl()

    hal.enter_repl = saved_enter_repl
    from firmware.app import App
    app = App(board.DEFINITION, hal)
    app_ref[0] = app
    app.run()
"""

PROBE = PROBE.replace("@END_N@", str(2 + int(round(WINDOW_S))))

MAIN = """import micropython
micropython.kbd_intr(-1)
import os
try:
    os.stat('/repl_once')
    os.remove('/repl_once')
    stay = True
except OSError:
    stay = False
if stay:
    micropython.kbd_intr(3)
else:
    import board
    import stressrig_probe
    stressrig_probe.run(board)
"""


def _window_counts(times: dict[str, np.ndarray], t_a: float, t_b: float) -> dict[str, int]:
    return {k: int(np.sum((t >= t_a) & (t < t_b))) for k, t in times.items()}


def collect(window_s: float = WINDOW_S) -> dict[str, Any]:
    """Boot the probed board, stream, read the probe: the raw material of analyse()."""
    from hil_tests.rp2040.harness import booted, raw_repl_exec
    from host_sdk.client import Rig
    from protocol import defs

    blocks: list[Any] = []
    raw: dict[str, Any] = {"window_s": window_s}
    wall0 = time.monotonic()
    with booted(
        main_source=MAIN, extra_files={"stressrig_probe.py": PROBE}, pwm_pin_alarms_off=True
    ) as sim:
        sim.wait_output()  # the boot HELLO: connect to a running app
        rig = Rig.open(sim.port, connect_timeout_s=120, command_timeout_s=30, heartbeat_s=None)
        raw["boot_wall_s"] = time.monotonic() - wall0
        rig.on_block(blocks.append)
        st0 = rig.status()
        mark = rig.event_mark()
        if ELEC_HZ != 100.0:
            ack = rig.configure_stream("elec", rate_hz=ELEC_HZ)
            raw["elec_ack"] = dict(ack.applied)
        rig.set_streaming(True)
        on = rig.wait_event((defs.EV_STREAMING,), after=mark, timeout_s=120)
        assert on is not None
        t_on = on.t_s
        polls: list[dict[str, Any]] = []
        w0 = time.monotonic()
        deadline = time.monotonic() + 200 * (WARMUP_S + window_s) + 600
        # to the snapshot after the window's end (its heap reading), and a little more
        while rig.device_time_s < t_on + WARMUP_S + window_s + 2.3:
            if time.monotonic() > deadline:
                raise RuntimeError(f"device time stuck at {rig.device_time_s:.2f} s")
            time.sleep(2.0)
            polls.append(sim.state())
        raw["wall_s_per_device_s"] = (time.monotonic() - w0) / (rig.device_time_s - t_on)
        rig.set_streaming(False)
        st1 = rig.status()
        raw.update(
            t_on=t_on,
            polls=polls,
            truth_log=sim.log(),
            truth=sim.state(),
            gaps=[(g.stream, g.kind, g.count, g.t_s) for g in rig.gaps],
            # where each gap is in its stream (the SDK's t_s is when the frame after it came)
            gap_index=[(g.stream, g.kind, g.first_index, g.count) for g in rig.gaps],
            block_index=[
                (b.stream, b.first_index, len(b), b.flags, float(b.t_s[0]) if len(b) else None)
                for b in blocks
            ],
            dropped=st1.samples_dropped - st0.samples_dropped,
        )
        rig.enter_repl()
        rig.close(leave_current_off=False)
        raw["dump"] = raw_repl_exec(sim.port, "print(open('/probe.txt').read())")
    by: dict[str, list[Any]] = {}
    for b in blocks:
        by.setdefault(b.stream, []).append(b)
    raw["recs"] = {k: np.concatenate([b.records for b in v]) for k, v in by.items()}
    raw["times"] = {k: np.concatenate([b.t_s for b in v]) for k, v in by.items()}
    return raw


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    from protocol import defs

    window_s = raw["window_s"]
    t_on = raw["t_on"]
    dump = raw["dump"]
    truth_log, truth = raw["truth_log"], raw["truth"]
    recs, times = raw["recs"], raw["times"]
    out: dict[str, Any] = {k: raw[k] for k in ("boot_wall_s", "wall_s_per_device_s", "dropped")}
    state = [int(v) for v in dump.split("state", 1)[1].split("\n", 1)[0].split()]
    snaps = [
        [int(v) for v in line.split()[1:]] for line in dump.splitlines() if line.startswith("snap")
    ]
    out["snaps"] = len(snaps)
    origin_ns = state[1] * 1000.0  # ticks_us = the RP2040 timer = emulator µs since power-on
    overhead_us = state[5] / 1000.0
    # the window: whole probe snapshots from 1 s after streaming started
    t_a = t_on + WARMUP_S
    sa = next(s for s in snaps if s[0] / 1e6 >= t_a)
    sb = [s for s in snaps if s[0] / 1e6 <= sa[0] / 1e6 + window_s + 0.5][-1]
    t_a, t_b = sa[0] / 1e6, sb[0] / 1e6
    elapsed_us = sb[0] - sa[0]
    calls = sb[2] - sa[2]
    busy_us = elapsed_us - (sb[1] - sa[1]) - overhead_us * calls
    # heap readings: the probe takes them only at the snapshots just before and after the
    # window (a heap scan stalls the loop ~18 ms) and while not streaming
    read = [s for s in snaps if s[3] >= 0]
    ha = next((s for s in reversed(read) if s[0] <= sa[0]), sa)
    hb = next((s for s in read if s[0] >= sb[0]), ha)
    allocs, collections = [], 0
    if hb[3] < ha[3]:
        collections = 1
    else:
        allocs.append(hb[3] - ha[3])
    inside = [ha, hb]
    # samples in the window
    counts = _window_counts(times, t_a, t_b)
    n_samples = sum(counts.values())
    # missed: what the simulated parts produced in the window vs what was recorded
    hx = truth["hx711"]

    def dev_s(t_ns: float) -> float:
        return (t_ns - origin_ns) / 1e9

    # what the parts produced early enough in the window to be recorded inside it
    conv = [(k, dev_s(t)) for k, t in truth_log["hx711_ready"] if t_a <= dev_s(t) < t_b - 0.03]
    load = recs["load"][(times["load"] >= t_a) & (times["load"] < t_b)]
    not_ready = int(np.sum((load["status"] & defs.LOAD_NOT_READY) != 0))
    load_t = times["load"][(times["load"] >= t_a) & (times["load"] < t_b)]
    fresh = load["status"] == 0
    k_rec = ((load["counts"][fresh] - hx["base"]) // hx["step"]).astype(int)
    ready_t = dict(truth_log["hx711_ready"])
    load_age_ms = [
        (t - dev_s(ready_t[int(k)])) * 1e3
        for k, t in zip(k_rec, load_t[fresh], strict=True)
        if int(k) in ready_t
    ]
    lines = [(k, dev_s(t)) for k, t in truth_log["newline"] if t_a <= dev_s(t) < t_b - 0.03]
    fbg = recs["fbg"][(times["fbg"] >= t_a) & (times["fbg"] < t_b)]
    fbg_t = times["fbg"][(times["fbg"] >= t_a) & (times["fbg"] < t_b)]
    p0 = truth["interrogator"]["peaks_nm"][0]
    line_mod = np.round((fbg["g0"] - p0 * 1e6) / 1000.0).astype(int)
    # a record's line: the nearest newline with that peak offset (k mod 1000, 10 s apart).
    # The record's time is the loop's clock reading before the UART poll, so it may precede
    # the newline by up to one loop iteration.
    by_mod: dict[int, list[tuple[float, int]]] = {}
    for k, t in truth_log["newline"]:
        by_mod.setdefault(int(k) % 1000, []).append((dev_s(t), int(k)))
    fbg_lat_ms, fbg_k = [], set()
    for m, t in zip(line_mod.tolist(), fbg_t.tolist(), strict=True):
        cand = by_mod.get(m, [])
        if cand:
            t_nl, k = min(cand, key=lambda c: abs(c[0] - t))  # noqa: B023 - used at once
            fbg_lat_ms.append((t - t_nl) * 1e3)
            fbg_k.add(k)
    missed_fbg = len({k for k, _ in lines} - fbg_k)
    missed_grid = {}
    for name, rate in (("load", 80.0), ("elec", ELEC_HZ), ("temp", 1.0)):
        # slots of the stream's rate in the window with no record. (Summing round(diff *
        # rate) - 1 let two records half a period apart, -1, cancel a real gap, and did not
        # see a stream whose records came 3 % too slowly, each gap rounding to one period.)
        n = int(np.sum((times[name] >= t_a) & (times[name] < t_b)))
        missed_grid[name] = max(0, int(round((t_b - t_a) * rate)) - n)
    dropped = raw["dropped"]
    polls = raw["polls"]
    active = [
        (b["cycles"] - a["cycles"]) / ((b["t_ns"] - a["t_ns"]) * 0.125)
        for a, b in zip(polls, polls[1:], strict=False)
        if t_a <= dev_s(a["t_ns"]) and dev_s(b["t_ns"]) <= t_b and b["t_ns"] > a["t_ns"]
    ]
    out.update(
        window_s=(t_b - t_a),
        busy_us=busy_us,
        cpu_fraction=busy_us / elapsed_us,
        sleep_calls=calls,
        probe_overhead_us=overhead_us,
        n_samples=n_samples,
        counts=counts,
        us_per_sample=busy_us / max(1, n_samples),
        alloc_bytes=sum(allocs),
        alloc_intervals=len(allocs),
        collections=collections,
        heap_free=state[6],
        heap_free_end=hb[4],
        heap_span_s=(hb[0] - ha[0]) / 1e6,
        heap_free_min=min(s[4] for s in inside),
        not_ready=not_ready,
        missed_fbg=missed_fbg,
        missed_grid=missed_grid,
        dropped=dropped,
        link_lost=sum(g[2] for g in raw["gaps"] if g[1] == "lost"),
        conversions=len(conv),
        lines=len(lines),
        load_age_ms=(statistics.median(load_age_ms), float(np.percentile(load_age_ms, 99)))
        if load_age_ms
        else None,
        fbg_latency_ms=(statistics.median(fbg_lat_ms), float(np.percentile(fbg_lat_ms, 99)))
        if fbg_lat_ms
        else None,
        core_active=statistics.mean(active) if active else None,
    )
    return out


def run() -> list[dict[str, Any]]:
    from hil_tests.rp2040.harness import missing_requirements

    why = missing_requirements()
    if why and not os.environ.get("RP2040_BENCH_REANALYSE"):
        raise RuntimeError(why)
    import pickle

    dump_to = os.environ.get("RP2040_BENCH_RAW")
    if os.environ.get("RP2040_BENCH_REANALYSE") and dump_to:
        raw = pickle.loads(Path(dump_to).read_bytes())  # a run's raw data, analysed again
    else:
        raw = collect()
        if dump_to:
            Path(dump_to).write_bytes(pickle.dumps(raw))
    m = analyse(raw)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(m["counts"].items()))
    where = (
        f"{m['window_s']:.1f} s of device time after {WARMUP_S:.0f} s of warm-up, default "
        f"streams ({counts} records); probe in MicroPython (hil_tests/rp2040, bench_rp2040.py "
        "docstring)"
    )
    missed = sum(m["missed_grid"].values()) + m["not_ready"] + m["missed_fbg"]
    grid = ", ".join(f"{k} {v}" for k, v in m["missed_grid"].items())
    alloc_per = m["alloc_bytes"] / max(1, m["n_samples"])
    age = m["load_age_ms"]
    lat = m["fbg_latency_ms"]
    return [
        {
            "name": "rp2040_us_per_sample",
            "value": m["us_per_sample"],
            "unit": "us/sample (RP2040)",
            "baseline": 1300.0,
            "ratio": m["us_per_sample"] / 1300.0,
            "note": f"busy {m['busy_us'] / 1e3:.0f} ms of RP2040 time / {m['n_samples']} samples "
            f"over {where}. Busy = elapsed - time in the loop's idle call (hal.link.wait or "
            f"hal.clock.sleep_us, {m['sleep_calls']} calls) - the probe's own cost "
            f"({m['probe_overhead_us']:.1f} us/call). "
            "baseline = the 1.3 ms/sample estimate of ../shared/rp2-firmware/README.md.",
        },
        {
            "name": "rp2040_alloc_bytes_per_sample",
            "value": alloc_per,
            "unit": "B/sample",
            "baseline": None,
            "ratio": None,
            "note": f"gc.mem_alloc() grew by {m['alloc_bytes']} B from the snapshot before the "
            f"window to the one after it ({m['heap_span_s']:.1f} s; {m['collections']} if a "
            "collection came between, when it says nothing). "
            f"Must be 0. {where}.",
        },
        {
            "name": "rp2040_heap_free_kb",
            "value": m["heap_free"] / 1024,
            "unit": "KiB",
            "baseline": 241184 / 1024,
            "ratio": m["heap_free"] / 241184,
            "note": "gc.mem_free() after gc.collect() with the app and every stream running "
            "(taken when CMD_ENTER_REPL arrives, before the app lets go of anything); "
            f"without collecting: {m['heap_free_end'] / 1024:.1f} KiB after the window, "
            f"{m['heap_free_min'] / 1024:.1f} KiB before or after it. "
            "baseline = free heap of the bare v1.28 RPI_PICO image after boot.",
        },
        {
            "name": "rp2040_cpu_fraction_default_streams",
            "value": m["cpu_fraction"],
            "unit": "fraction",
            "baseline": 0.5,
            "ratio": m["cpu_fraction"] / 0.5,
            "note": f"busy / elapsed device time over {where}; target <= 0.5 (baseline). "
            f"The emulated core was executing (not in WFE) "
            + (f"{m['core_active']:.2f}" if m["core_active"] is not None else "?")
            + " of the time: MicroPython busy-waits sleeps below 1 ms.",
        },
        {
            "name": "rp2040_missed_samples_default_streams",
            "value": float(missed),
            "unit": "samples",
            "baseline": 0.0,
            "ratio": None,
            "note": f"in {m['window_s']:.1f} s of device time: grid slots with no record "
            f"({grid}), load records not ready {m['not_ready']}, interrogator lines never "
            f"recorded {m['missed_fbg']} of {m['lines']}. The board counted {m['dropped']} lost in "
            "the whole streaming run, start and stop included (STATUS samples_dropped: slots "
            f"skipped, records dropped); link loss {m['link_lost']}. "
            f"The HX711 (0.5 % fast) made {m['conversions']} conversions. Load value age when "
            "recorded (median/p99) "
            + (f"{age[0]:.1f}/{age[1]:.1f} ms" if age else "?")
            + "; interrogator newline to FBG record (median/p99) "
            + (f"{lat[0]:.2f}/{lat[1]:.2f} ms" if lat else "?")
            + f". Emulator: {m['wall_s_per_device_s']:.0f} s wall per device s.",
        },
    ]


def main() -> int:
    """Run the bench and merge its entries into bench/results.json (other modules kept)."""
    import json

    items = run()
    if ELEC_HZ != 100.0:
        for item in items:
            print(f"{item['name']:<40} {item['value']:12.4g} {item['unit']}  (elec {ELEC_HZ:g} Hz)")
            print(f"    {item['note']}")
        return 0
    for item in items:
        item.setdefault("module", "rp2040")
    path = Path(__file__).resolve().parent / "results.json"
    old = json.loads(path.read_text()) if path.exists() else []
    merged = [r for r in old if r.get("module") != "rp2040"] + items
    path.write_text(json.dumps(merged, indent=2) + "\n")
    for item in items:
        print(f"{item['name']:<40} {item['value']:12.4g} {item['unit']}")
        print(f"    {item['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
