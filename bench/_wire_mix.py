"""The board's real output at its default rates, and the header-check hold-back.

capture(seconds): bytes the emulated board (the real firmware, ideal CPU, virtual time at
maximum speed) sends at its default stream rates (load 80 Hz, FBG 100 Hz, elec 100 Hz,
temperature 1 Hz) with a pulse train running (EVENTs), STATUS at 1 Hz, and a HELLO from
get_info every 10 s; replies to the commands included.

holdback(frames, version): how many bytes of intact frames a reader holds back behind
corrupted headers: the frames are fed byte by byte, 10 % of them with one bit flipped in
the header, and the decoder's pending bytes beyond the current intact frame's own are
measured after every byte. Version 1 frames (no header check) are decoded by the same
decoder's version-1 path, which waits for the claimed length as the v1 reader did.
"""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import serial

from host_sdk.emulator import start_emulator
from host_sdk.wire import Decoder, SampleBlock, Status, encode_command
from protocol import defs


def capture(seconds: float = 60.0, seed: int = 5) -> bytes:
    out = bytearray()
    with start_emulator("nak50_pulsed", speed="max", seed=seed) as emu:
        ser = serial.Serial(emu.port, timeout=0.05)
        seq = 0x4000

        def cmd(name: str, **fields: object) -> None:
            nonlocal seq
            seq += 1
            ser.write(encode_command(name, seq, seq, **fields))

        cmd("set_watchdog", timeout_ms=600000)
        cmd("set_streaming", on=1)
        cmd(
            "pulse_train",
            unit=0,
            amplitude=0.0005,
            t_on_s=0.5,
            t_off_s=0.5,
            count=10000,
            v_min_v=0.0,
            v_max_v=0.0,
            max_charge_c=0.0,
            max_duration_s=0.0,
        )
        dec = Decoder()
        t_dev = 0.0
        next_info = 10.0
        deadline = time.monotonic() + 600
        while t_dev < seconds and time.monotonic() < deadline:
            data = ser.read(65536)
            out += data
            for m in dec.feed(data):
                if isinstance(m, Status):
                    t_dev = m.uptime_ms / 1000.0
                    if t_dev >= next_info:
                        next_info += 10.0
                        cmd("get_info")
                    cmd("heartbeat")
        ser.close()
    return bytes(out)


def frames_of(wire: bytes) -> list[bytes]:
    """The intact frames of a capture, in order."""
    out = []
    pos = 0
    while True:
        i = wire.find(b"\xa5\x5a", pos)
        if i < 0 or i + defs.HEADER_SIZE > len(wire):
            return out
        length = wire[i + 2] | (wire[i + 3] << 8)
        end = i + 4 + length + 4
        if end <= len(wire) and zlib.crc32(wire[i + 2 : end - 4]) == int.from_bytes(
            wire[end - 4 : end], "little"
        ):
            out.append(wire[i:end])
            pos = end
        else:
            pos = i + 1


def as_v1(frame: bytes) -> bytes:
    """The same frame in the version-1 layout (10-byte header, no boot id, no check)."""
    body = bytes([1]) + frame[5:10] + frame[defs.HEADER_SIZE : -4]
    head = struct.pack("<BBH", 0xA5, 0x5A, len(body))
    return head + body + struct.pack("<I", zlib.crc32(head[2:] + body))


def holdback(frames: list[bytes], seed: int = 3) -> tuple[int, float]:
    """(max, mean over corrupted headers) bytes held back behind a corrupted header."""
    rng = np.random.default_rng(seed)
    wire = bytearray()
    starts = []
    bad = []
    for f in frames:
        b = bytearray(f)
        if rng.random() < 0.1:
            bit = int(rng.integers(16, 8 * 10))  # bytes 2..9: the header both versions have
            b[bit >> 3] ^= 1 << (bit & 7)
            bad.append(len(wire))
        starts.append(len(wire))
        wire += b
    dec = Decoder()
    # pending bytes beyond the start of the frame being received = held back
    k = 0
    worst = 0
    per_bad: dict[int, int] = {}
    for pos in range(len(wire)):
        dec.feed(wire[pos : pos + 1])
        while k + 1 < len(starts) and starts[k + 1] <= pos:
            k += 1
        own = pos + 1 - starts[k]
        held = dec.pending_bytes - own
        if held > 0:
            worst = max(worst, held)
            # attribute to the latest corrupted frame before this one
            j = max((s for s in bad if s <= pos), default=-1)
            per_bad[j] = max(per_bad.get(j, 0), held)
    mean = float(np.mean([per_bad.get(s, 0) for s in bad])) if bad else 0.0
    return worst, mean


def sample_records(wire: bytes) -> tuple[int, int]:
    """(record bytes, sample frames) in a capture."""
    dec = Decoder()
    rec = 0
    for m in dec.feed(wire):
        if isinstance(m, SampleBlock):
            rec += m.records.nbytes
    n = sum(1 for f in frames_of(wire) if f[5] == defs.MSG_SAMPLES)
    return rec, n
