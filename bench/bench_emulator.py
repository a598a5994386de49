"""Emulated-board benchmarks (the real firmware on MicroPython behind a pty).

emu_sustained_samples_per_s
    The highest total sample rate (all streams, in device time) the emulated board streams
    for 60 s of device time through the pty into the SDK's decoder with zero samples lost
    (no decoder gap, no firmware drop, no missed sampling slot). The device clock runs at
    SPEED x the wall clock to keep the wall time short, so the link carries SPEED x this
    rate in wall time. Baseline: the board's default stream configuration.
emu_edge_error_p99_ms
    p99 of |EV_EDGE time - commanded edge time| in device time over a pulse train at
    SPEED; baseline: the same at speed 1 (fewer pulses).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import serial

from host_sdk.emulator import start_emulator
from host_sdk.wire.decoder import Decoder
from host_sdk.wire.encoder import encode_command
from host_sdk.wire.messages import Event, SampleBlock, Status
from protocol import defs

SPEED = 4.0
DEVICE_S = 60.0
ELEC_RATES = (100.0, 250.0, 500.0, 1000.0, 2000.0)


def _pump(ser: serial.Serial, dec: Decoder, seconds: float, out: list[Any]) -> None:
    t = time.monotonic() + seconds
    while time.monotonic() < t:
        out.extend(dec.feed(ser.read(65536)))


def _sustained_trial(elec_hz: float) -> tuple[bool, float]:
    rates = {
        defs.STREAM_LOAD: 80.0,
        defs.STREAM_FBG: 100.0,
        defs.STREAM_ELEC: elec_hz,
        defs.STREAM_TEMP: 10.0,
    }
    with start_emulator("nak50_pulsed", speed=SPEED, seed=0) as emu:
        ser = serial.Serial(emu.port, timeout=0.02)
        dec = Decoder()
        msgs: list[Any] = []
        seq = 1
        ser.write(encode_command("get_info", seq))
        for s, r in rates.items():
            seq += 1
            ser.write(encode_command("config_stream", seq, stream=s, enabled=1, rate_hz=r))
        _pump(ser, dec, 0.3, msgs)
        msgs.clear()
        ser.write(encode_command("set_streaming", seq + 1, on=1))
        _pump(ser, dec, DEVICE_S / SPEED, msgs)
        ser.write(encode_command("set_streaming", seq + 2, on=0))
        ser.write(encode_command("get_status", seq + 3))
        _pump(ser, dec, 0.5, msgs)
        ser.close()
    ok = dec.bad_frames == 0 and not any(dec.lost_samples.values())
    statuses = [m for m in msgs if isinstance(m, Status)]
    if statuses and statuses[-1].samples_dropped:
        ok = False
    total = 0.0
    for s, r in rates.items():
        blocks = [m.records for m in msgs if isinstance(m, SampleBlock) and m.stream == s]
        if not blocks:
            return False, 0.0
        rec = np.concatenate(blocks)
        t = rec["t_us"].astype(np.int64)
        span_s = float((np.diff(t) % (1 << 32)).sum()) * 1e-6
        if span_s < 0.98 * DEVICE_S or len(rec) < 0.995 * r * span_s:
            ok = False  # sampling slots were missed: the board could not keep up
        total += r
    return ok, total


def _edge_errors_ms(speed: float, count: int) -> np.ndarray:
    t_on, t_off = 0.2, 0.3
    with start_emulator("nak50_pulsed", speed=speed, seed=0) as emu:
        ser = serial.Serial(emu.port, timeout=0.02)
        dec = Decoder()
        msgs: list[Any] = []
        ser.write(encode_command("get_info", 1))
        ser.write(
            encode_command(
                "pulse_train",
                2,
                unit=defs.UNIT_A,
                amplitude=1e-4,
                t_on_s=t_on,
                t_off_s=t_off,
                count=count,
                v_min_v=-4.0,
                v_max_v=4.4,
                max_charge_c=0.0,
                max_duration_s=0.0,
            )
        )
        _pump(ser, dec, count * (t_on + t_off) / speed + 1.0, msgs)
        ser.write(encode_command("stop", 3))
        _pump(ser, dec, 0.2, msgs)
        ser.close()
    ev = [m for m in msgs if isinstance(m, Event)]
    start = [e for e in ev if e.code == defs.EV_WAVEFORM_START]
    edges = [e for e in ev if e.code == defs.EV_EDGE]
    if not start or not edges:
        raise RuntimeError("no waveform events")
    t0 = start[0].t_us
    errs = []
    for k, e in enumerate(edges):
        expected = t0 + (k // 2) * (t_on + t_off) * 1e6 + (k % 2) * t_on * 1e6
        errs.append(abs(((e.t_us - expected + (1 << 31)) % (1 << 32)) - (1 << 31)) / 1000.0)
    return np.asarray(errs)


def run() -> list[dict]:
    best = 0.0
    for hz in ELEC_RATES:
        ok, total = _sustained_trial(hz)
        if not ok:  # the machine is shared: one retry before calling it the limit
            ok, total = _sustained_trial(hz)
        if not ok:
            break
        best = total
    baseline = 80.0 + 100.0 + 100.0 + 1.0
    e_fast = float(np.percentile(_edge_errors_ms(SPEED, 40), 99))
    e_slow = float(np.percentile(_edge_errors_ms(1.0, 6), 99))
    return [
        {
            "name": "emu_sustained_samples_per_s",
            "value": best,
            "unit": f"samples/s dev @x{SPEED:g}",
            "baseline": baseline,
            "ratio": best / baseline,
        },
        {
            "name": "emu_edge_error_p99_ms",
            "value": e_fast,
            "unit": f"ms dev @x{SPEED:g}",
            "baseline": e_slow,
            "ratio": e_fast / e_slow if e_slow else None,
        },
    ]


if __name__ == "__main__":
    for item in run():
        print(item)
