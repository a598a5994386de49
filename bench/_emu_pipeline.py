"""Helpers of bench_emulator: the emulated board streaming through the pty into Rig + Recorder.

Every trial starts its own emulator in this process (the launcher's proxy thread included),
opens the pty with `Rig`, attaches an HDF5 `Recorder` and checks afterwards that nothing was
lost: the rig's gap accounting, the recording's gap list, STATUS samples_dropped, index
contiguity, and the sample count each stream's rate implies over the device time streamed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from host_sdk.client import Rig
from host_sdk.emulator import start_emulator
from host_sdk.recording import Recorder, load_recording
from protocol import defs

SCENARIO = "nak50_pulsed"  # load 80 Hz, FBG 100 Hz (2 gratings), elec 100 Hz, temp 1 Hz
DEFAULT_RATES = {"load": 80.0, "fbg": 100.0, "elec": 100.0, "temp": 1.0}
# a small pulsed current (0.05 mA cm^-2 on 0.385 cm^2): the plant works, no cutoff is reached
PULSE_A = 2e-5


@contextlib.contextmanager
def hogs(n: int = 2) -> Iterator[list[int]]:
    """`n` busy-loop processes (one per core of this machine); killed by pid on exit."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        time.sleep(0.5)  # let them get going
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _streams_on(rig: Rig, rates: dict[str, float]) -> None:
    for name, hz in rates.items():
        rig.configure_stream(name, rate_hz=hz)


def _streaming_window(rig: Rig) -> tuple[float, float]:
    on = [e.t_s for e in rig.events if e.code == defs.EV_STREAMING and e.index == 1]
    off = [e.t_s for e in rig.events if e.code == defs.EV_STREAMING and e.index == 0]
    if not on or not off:
        raise RuntimeError("no streaming on/off events")
    return on[-1], off[-1]


def check_recording(path: Path, rates: dict[str, float], t_on: float, t_off: float) -> dict:
    """Counts and the problems found in a closed recording (empty `problems`: no loss)."""
    rec = load_recording(path)
    problems: list[str] = []
    counts: dict[str, int] = {}
    if len(rec.gaps):
        problems.append(f"{len(rec.gaps)} gaps in the recording")
    for name, hz in rates.items():
        s = rec.streams.get(name)
        idx = np.asarray(s.records["sample_index"]) if s is not None else np.zeros(0, np.int64)
        n = int(idx.size)
        counts[name] = n
        if n and (idx[-1] - idx[0] + 1 != n or np.any(np.diff(idx) != 1)):
            problems.append(f"{name}: indices not contiguous")
        expected = hz * (t_off - t_on)
        if abs(n - expected) > 2:
            problems.append(f"{name}: {n} samples, device time implies {expected:.1f}")
    return {"counts": counts, "gaps": len(rec.gaps), "problems": problems, "file": rec.problems}


def stream_trial(elec_hz: float, wall_s: float, *, cpu: str = "ideal", pulses: bool = True) -> dict:
    """Stream the default streams with elec at `elec_hz` for `wall_s` wall seconds at speed
    max through Rig + Recorder (HDF5 in a temp dir); samples per wall second and loss."""
    rates = {**DEFAULT_RATES, "elec": float(elec_hz)}
    with (
        tempfile.TemporaryDirectory(prefix="bench-emu-") as tmp,
        start_emulator(SCENARIO, speed="max", cpu=cpu, seed=0) as emu,
    ):
        path = Path(tmp) / "trial.h5"
        with Rig.open(emu.port) as rig:
            rig.set_cell(3.85e-5)
            _streams_on(rig, rates)
            rec = Recorder.attach(rig, path)
            try:
                if pulses:
                    rig.pulse_train(amplitude_a=PULSE_A, t_on_s=0.2, t_off_s=0.3, count=65535)
                w0 = time.perf_counter()
                rig.set_streaming(True)
                time.sleep(wall_s)
                rig.set_streaming(False)
                wall = time.perf_counter() - w0
                status = rig.status()
                lost = rig.lost_samples
                edges = sum(1 for e in rig.events if e.code == defs.EV_EDGE)
                ended = [e.name for e in rig.events if e.code == defs.EV_STOP_LATCHED]
                t_on, t_off = _streaming_window(rig)
                speed = emu.achieved_speed(since_start=True)
            finally:
                rec.close()
        chk = check_recording(path, rates, t_on, t_off)
    problems = list(chk["problems"])
    problems += [f"recording: {p}" for p in chk["file"]]
    if any(lost.values()):
        problems.append(f"rig.lost_samples {lost}")
    if status.samples_dropped:
        problems.append(f"STATUS samples_dropped {status.samples_dropped}")
    if ended:
        problems.append("safety stop latched during the trial")
    total = sum(chk["counts"].values())
    return {
        "elec_hz": elec_hz,
        "rate_wall": total / wall,
        "samples": total,
        "wall_s": wall,
        "device_s": t_off - t_on,
        "achieved_speed": speed,
        "edges": edges,
        "dropped": int(status.samples_dropped),
        "ok": not problems,
        "problems": problems,
    }


def edge_errors_ms(cpu: str, count: int, t_on: float = 0.02, t_off: float = 0.03) -> np.ndarray:
    """|EV_EDGE device time - commanded edge time| (ms) over a pulse train at speed max,
    default streams streaming; edges are anchored to the waveform's start event."""
    with (
        start_emulator(SCENARIO, speed="max", cpu=cpu, seed=0) as emu,
        Rig.open(emu.port) as rig,
    ):
        rig.set_cell(3.85e-5)
        _streams_on(rig, DEFAULT_RATES)
        rig.set_streaming(True)
        mark = rig.event_mark()
        rig.pulse_train(amplitude_a=PULSE_A, t_on_s=t_on, t_off_s=t_off, count=count)
        end = rig.wait_event(after=mark, timeout_s=600.0)
        if end is None or end.code != defs.EV_WAVEFORM_END:
            raise RuntimeError(f"pulse train did not end normally: {end}")
        events = list(rig.events[mark:])
    start = [e.t_s for e in events if e.code == defs.EV_WAVEFORM_START]
    edges = [e.t_s for e in events if e.code == defs.EV_EDGE]
    if not start or len(edges) < 2 * count:
        raise RuntimeError(f"{len(edges)} edges for {count} pulses")
    k = np.arange(len(edges))
    expected = start[0] + (k // 2) * (t_on + t_off) + (k % 2) * t_on
    return np.abs(np.asarray(edges) - expected) * 1e3


def rp2040_default_streams(device_s: float) -> dict:
    """The default streams on the rp2040 cost model for `device_s` of device time."""
    with (
        start_emulator(SCENARIO, speed="max", cpu="rp2040", seed=0) as emu,
        Rig.open(emu.port) as rig,
    ):
        rig.set_cell(3.85e-5)
        _streams_on(rig, DEFAULT_RATES)
        rig.pulse_train(amplitude_a=PULSE_A, t_on_s=0.2, t_off_s=0.3, count=65535)
        counts = dict.fromkeys(DEFAULT_RATES, 0)

        def count(block: Any) -> None:
            counts[block.stream] += len(block)

        rig.on_block(count)
        s0 = rig.status()
        rig.set_streaming(True)
        t0 = rig.device_time_s
        while rig.device_time_s - t0 < device_s:
            time.sleep(0.2)
        rig.set_streaming(False)
        # the frame carrying a stream's last drops can come after the next STATUS: ask
        # until the board's frames have told what STATUS counts (a bounded number of times)
        for _ in range(50):
            status = rig.status()
            if rig.decoder.board_dropped_told() == status.samples_dropped:
                break
        before = sum(rig.decoder.board_dropped_before.values())
        t_on, t_off = _streaming_window(rig)
        on_board = sum(g.count for g in rig.gaps if g.kind == "lost_on_board" and g.count > 0)
        on_link = sum(g.count for g in rig.gaps if g.kind != "lost_on_board" and g.count > 0)
        per_stream = {
            s: sum(g.count for g in rig.gaps if g.stream == s and g.count > 0) for s in counts
        }
        bytes_in = rig.bytes_in
    span = t_off - t_on
    dropped = int(status.samples_dropped) - int(s0.samples_dropped)
    return {
        "device_s": span,
        "dropped": dropped,
        "dropped_at_start": int(s0.samples_dropped),
        # drops before each stream's first frame (the Rig joined a running board): no gap
        # holds them; on_board_gaps + this = STATUS samples_dropped, exactly
        "dropped_before_tracking": before,
        "on_board_gaps": on_board,
        "link_gaps": on_link,
        "per_stream_lost": per_stream,
        "received": counts,
        "frames_sent": int(status.frames_sent) - int(s0.frames_sent),
        "bytes_in": bytes_in,
    }


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def soak(device_h: float, warmup_device_s: float, elec_hz: float = 100.0) -> dict:
    """Stream the default streams (elec at `elec_hz`) with a pulse train for `device_h`
    hours of device time at speed max into Rig + Recorder, all in this process; RSS
    (VmRSS, no tracemalloc) from the end of the warm-up to the end."""
    rates = {**DEFAULT_RATES, "elec": float(elec_hz)}
    samples: list[tuple[float, float]] = []  # (device s, RSS MB)
    w0 = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench-emu-soak-") as tmp,
        start_emulator(SCENARIO, speed="max", seed=0) as emu,
    ):
        path = Path(tmp) / "soak.h5"
        with Rig.open(emu.port) as rig:
            rig.set_cell(3.85e-5)
            _streams_on(rig, rates)
            rec = Recorder.attach(rig, path)
            try:
                rig.pulse_train(amplitude_a=PULSE_A, t_on_s=5.0, t_off_s=5.0, count=65535)
                rig.set_streaming(True)
                t0 = rig.device_time_s
                while (t := rig.device_time_s - t0) < device_h * 3600.0:
                    samples.append((t, rss_mb()))
                    time.sleep(1.0)
                rig.set_streaming(False)
                samples.append((rig.device_time_s - t0, rss_mb()))
                status = rig.status()
                lost = sum(rig.lost_samples.values())
                n_events = len(rig.events)
            finally:
                rec.close()
            written = sum(rec.records_written.values())
            file_mb = path.stat().st_size / 1e6
    wall = time.perf_counter() - w0
    t = np.array([s[0] for s in samples])
    m = np.array([s[1] for s in samples])
    after = t >= warmup_device_s
    if after.sum() < 2:
        raise RuntimeError("soak too short for its warm-up")
    t_w, m_w = t[after], m[after]
    growth = (m_w[-1] - m_w[0]) / ((t_w[-1] - t_w[0]) / 3600.0)
    slope = float(np.polyfit(t_w / 3600.0, m_w, 1)[0])
    return {
        "mb_per_device_h": float(growth),
        "slope_mb_per_device_h": slope,
        "rss_warm_mb": float(m_w[0]),
        "rss_end_mb": float(m_w[-1]),
        "device_s": float(t[-1]),
        "warmup_device_s": warmup_device_s,
        "wall_s": wall,
        "samples": written,
        "file_mb": file_mb,
        "lost": lost,
        "dropped": int(status.samples_dropped),
        "events": n_events,
        "pid": os.getpid(),
    }


def _cost_model(name: str) -> Any:
    """The emulated board's own price list (boards/emulated/costs.py, plain Python)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "boards" / "emulated" / "costs.py"
    spec = importlib.util.spec_from_file_location("_emu_costs", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.cost_model(name)


def charged_fraction_lower_bound(res: dict, cpu: str = "rp2040") -> float:
    """A lower bound of the device time the cost model charged over an rp2040 run, from
    what the host saw: each record's sensor reads, each FBG sweep's line bytes, each frame
    written, and one loop pass per record of the busiest stream (a pass
    takes at most one record of a stream). The board does not report the exact figure."""
    c = _cost_model(cpu)
    n = res["received"]
    t_us = res["device_s"] * 1e6
    sweeps = DEFAULT_RATES["fbg"] * res["device_s"]  # the interrogator sweeps regardless
    seq_mid = int(sweeps / 2) + 1
    line = len(f"#P {seq_mid} 1550.000000 1530.000000\n")
    work = (
        n["elec"] * 2 * c.adc_read_us
        + n["temp"] * c.adc_read_us
        + n["load"] * c.load_word_us
        + sweeps * line * c.uart_byte_us
        + res["frames_sent"] * c.tx_call_us
        + res["bytes_in"] * c.tx_byte_us_x10 / 10
        + max(n.values()) * c.pass_us
    )
    return float(work / t_us)
