"""Cross-implementation: the protocol code on the MicroPython unix port against the host.

Board -> host: MicroPython builds frames of every type with protocol.frame/messages and
writes them to stdout; the host decoder must return exactly the values we asked for.
Host -> board: the host encodes every command; MicroPython reads them with FrameReader
(garbage and 0x03 bytes in between) and decode_command must return the same arguments.
The alloc test proves the board encode path allocates nothing per frame, on the unix port
and on the 32-bit WebAssembly port (tests/mpvm), where big ints appear as on a board.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from wire_strategies import INT_RANGES, f32, sdk_fields, wire_values
from wire_testutil import ROOT, run_mpy

from host_sdk.wire import (
    Ack,
    Decoder,
    Event,
    Log,
    Nack,
    SampleBlock,
    Status,
    encode_command,
    reference_hello,
)
from protocol import defs, messages
from tests import mpvm


def _rand_value(rng: random.Random, code: str) -> float | int:
    if code in "fd":
        return f32(rng.uniform(-1e4, 1e4))
    lo, hi = INT_RANGES[code]
    return rng.randint(lo, hi)


def _hello_dict() -> dict:
    h = reference_hello(n_gratings=8)
    return {
        "protocol_version": h.protocol_version,
        "firmware_version": h.firmware_version,
        "board_id": h.board_id,
        "unique_id": h.unique_id,
        "streams": [
            {
                "id": s.id,
                "name": s.name,
                "rate_hz": s.rate_hz,
                "enabled": s.enabled,
                "record_format": s.record_format,
                "fields": [
                    {"name": f.name, "unit": f.unit, "scale": f.scale, "offset": f.offset}
                    for f in s.fields
                ],
            }
            for s in h.streams
        ],
        "limits": dict(h.limits),
    }


BOARD_SCRIPT = r"""
import struct
from protocol import defs, frame, messages
out = sys.stdout.buffer
CASES = %(cases)r
HELLO = %(hello)r
w = frame.FrameWriter()
seq = 0

def send(mtype, flags, stream, n):
    global seq
    w.seq = seq
    out.write(w.buf, w.finish(mtype, flags, stream, n))
    seq += 1

p = messages.encode_hello(HELLO)
w.buf[w.payload_offset:w.payload_offset + len(p)] = p
send(defs.MSG_HELLO, 0, 0, len(p))  # no FLAG_BOOT: the sample indices are random
sframes = {}
for s in HELLO["streams"]:
    sframes[s["id"]] = frame.SampleFrame(s["id"], struct.calcsize(s["record_format"]))
for case in CASES:
    kind = case[0]
    if kind == "event":
        n = messages.pack_event(w.buf, w.payload_offset, *case[1])
        send(defs.MSG_EVENT, 0, 0, n)
    elif kind == "status":
        n = messages.pack_status(w.buf, w.payload_offset, case[1])
        send(defs.MSG_STATUS, defs.FLAG_LATCHED, 0, n)
    elif kind == "ack":
        n = messages.pack_ack(w.buf, w.payload_offset, case[1], case[2], case[3])
        send(defs.MSG_ACK, 0, 0, n)
    elif kind == "nack":
        n = messages.pack_nack(w.buf, w.payload_offset, case[1], case[2], case[3], case[4])
        send(defs.MSG_NACK, 0, 0, n)
    elif kind == "log":
        n = messages.pack_log(w.buf, w.payload_offset, case[1], case[2])
        send(defs.MSG_LOG, 0, 0, n)
    elif kind == "samples":
        sid, first, fmt, recs = case[1], case[2], case[3], case[4]
        sf = sframes[sid]
        sf.reset(first)
        for r in recs:
            struct.pack_into(fmt, sf.buf, sf.record_offset(), *r)
            sf.added(r[0])
        out.write(sf.buf, sf.seal(0, seq))
        seq += 1
"""


def test_board_frames_decode_identically_on_host() -> None:
    rng = random.Random(1234)
    hello_d = _hello_dict()
    hello = reference_hello(n_gratings=8)
    cases: list[tuple] = []
    expected: list[object] = []
    index = {s.id: rng.randint(0, 2**32 - 1) for s in hello.streams}
    for k in range(300):
        kind = ["event", "status", "ack", "nack", "log", "samples", "samples"][k % 7]
        if kind == "event":
            v = (
                rng.randint(0, 2**32 - 1),
                rng.randint(0, 255),
                rng.randint(0, 255),
                rng.randint(0, 0xFFFF),
                f32(rng.uniform(-100, 100)),
            )
            cases.append(("event", v))
            expected.append(
                Event(
                    v[0],
                    v[1],
                    defs.EVENT_NAMES.get(v[1], f"event_{v[1]}"),
                    v[2],
                    defs.CAUSE_NAMES.get(v[2], f"cause_{v[2]}"),
                    v[3],
                    v[4],
                )
            )
        elif kind == "status":
            v = [_rand_value(rng, c) for c in "IIIIIBBf"]
            cases.append(("status", v))
            expected.append(Status(*v))
        elif kind == "ack":
            cid = rng.choice(sorted(defs.COMMANDS))
            name, fmt, names = defs.COMMANDS[cid]
            vals = [_rand_value(rng, c) for c in fmt]
            seq = rng.randint(0, 0xFFFF)
            cases.append(("ack", seq, cid, vals))
            expected.append(Ack(seq, cid, name, sdk_fields(dict(zip(names, vals, strict=True)))))
        elif kind == "nack":
            seq, cid, reason = rng.randint(0, 0xFFFF), rng.randint(0, 255), rng.randint(1, 8)
            text = rng.choice(["", "current 9 A > limit 5 A", "latched: over_temp", "x" * 199])
            cases.append(("nack", seq, cid, reason, text))
            expected.append(Nack(seq, cid, reason, defs.NACK_NAMES[reason], text))
        elif kind == "log":
            level, text = rng.choice([10, 20, 30, 40]), f"log line {k} µs"
            cases.append(("log", level, text))
            expected.append(Log(level, text))
        else:
            s = hello.stream(rng.randint(0, 3))
            cap = (defs.DEFAULT_SAMPLE_PAYLOAD - defs.SAMPLES_HEADER_SIZE) // s.record_size
            n = rng.randint(1, cap)
            codes = [c for c in s.record_format[1:] if c.isalpha()]
            recs = [[_rand_value(rng, c) for c in codes] for _ in range(n)]
            cases.append(("samples", s.id, index[s.id] & 0xFFFFFFFF, s.record_format, recs))
            arr = np.array([tuple(r) for r in recs], dtype=s.dtype)
            expected.append((s.id, index[s.id], arr))
            index[s.id] += n
    p = run_mpy(BOARD_SCRIPT % {"cases": cases, "hello": hello_d}, heap="8m")  # big literal
    dec = Decoder()
    got = []
    data = p.stdout
    for k in range(0, len(data), 333):
        got += dec.feed(data[k : k + 333])
    assert dec.bad_frames == 0 and dec.bytes_skipped == 0 and dec.lost_frames == 0
    assert dec.frames_ok == len(cases) + 1
    assert got[0] == hello
    samples: dict[int, list[np.ndarray]] = {}
    firsts: dict[int, int] = {}
    want_samples: dict[int, list[np.ndarray]] = {}
    others = []
    for m in got[1:]:
        if isinstance(m, SampleBlock):
            samples.setdefault(m.stream, []).append(m.records)
            firsts.setdefault(m.stream, m.first_index)
        else:
            others.append(m)
    want_others = []
    want_first: dict[int, int] = {}
    for e in expected:
        if isinstance(e, tuple):
            want_samples.setdefault(e[0], []).append(e[2])
            want_first.setdefault(e[0], e[1])
        else:
            want_others.append(e)
    assert others == want_others
    assert firsts == want_first
    for sid, arrs in want_samples.items():
        assert np.concatenate(samples[sid]).tobytes() == np.concatenate(arrs).tobytes()
    assert not dec.lost_samples


READER_SCRIPT = r"""
import struct
from protocol import defs, frame, messages
data = sys.stdin.buffer.read()
r = frame.FrameReader()
lines = []
def show(v):
    if isinstance(v, float):
        return struct.pack("<f", v).hex()
    return str(v)
for b in data:
    if r.feed_byte(b):
        while True:
            payload = memoryview(r.buf)[defs.HEADER_SIZE:]
            seq, cid, args = messages.decode_command(payload, r.payload_len)
            shown = [show(a) for a in args] if args is not None else ["None"]
            lines.append(" ".join([str(r.msg_type), str(r.seq), str(seq), str(cid)] + shown))
            if not r.consume():
                break
lines.append("bad %d frames %d" % (r.bad_frames, r.frames))
print("\n".join(lines))
"""


def test_host_commands_decode_identically_on_board() -> None:
    rng = random.Random(99)
    wire = bytearray()
    expected = []
    n_garbage_bursts = 0
    for k in range(400):
        cid = rng.choice(sorted(defs.COMMANDS))
        name, fmt, names = defs.COMMANDS[cid]
        vals = [_rand_value(rng, c) for c in fmt]
        cmd_seq = rng.randint(0, 0xFFFF)
        wire += encode_command(
            cid, cmd_seq, frame_seq=k, **sdk_fields(dict(zip(names, vals, strict=True)))
        )
        shown = [
            struct.pack("<f", v).hex() if c == "f" else str(v)
            for c, v in zip(fmt, vals, strict=True)
        ]
        expected.append(" ".join([str(defs.MSG_COMMAND), str(k), str(cmd_seq), str(cid)] + shown))
        if k % 5 == 0:  # garbage between frames: Ctrl-C bytes and stray sync words
            n_garbage_bursts += 1
            wire += bytes([3, 3, 0xA5, 3, 0xA5, 0x5A, 3]) + bytes(
                rng.randrange(256) for _ in range(7)
            )
    p = run_mpy(READER_SCRIPT, stdin=bytes(wire), heap="2m")
    lines = p.stdout.decode().splitlines()
    assert lines[:-1] == expected
    assert lines[-1].split()[3] == str(len(expected))
    # the same bytes through the host decoder
    dec = Decoder()
    msgs = dec.feed(bytes(wire)) + dec.flush()
    assert len(msgs) == len(expected) and dec.lost_frames == 0
    # and the board-side decoder on CPython agrees
    for m, line in zip(msgs, expected, strict=True):
        payload = messages.encode_command(m.cmd_seq, m.cmd_id, wire_values(m.cmd_id, m.args))
        assert messages.decode_command(payload, len(payload))[1] == int(line.split()[3])


ALLOC_SCRIPT = r"""
import gc, struct, micropython
from protocol import defs, frame, messages
out = sys.stdout.buffer
elec = frame.SampleFrame(defs.STREAM_ELEC, struct.calcsize(defs.ELEC_RECORD_FMT))
load = frame.SampleFrame(defs.STREAM_LOAD, struct.calcsize(defs.LOAD_RECORD_FMT))
w = frame.FrameWriter(64)
applied = [1, 0.5, 2.5, 4.25, 0.0, 0]  # constant: ..., max_duration_us (u64)
status = [1, 2, 3, 4, 5, 1, 0, 0.5]
ELEC = defs.ELEC_RECORD_FMT
LOAD = defs.LOAD_RECORD_FMT

@micropython.native
def sample(sf, fmt, k):
    sf.reset(k * sf.capacity)
    while not sf.full():
        struct.pack_into(fmt, sf.buf, sf.record_offset(), k, 1000, -1000, 1)
        sf.added(k)

@micropython.native
def load_sample(sf, fmt, k):
    sf.reset(k * sf.capacity)
    while not sf.full():
        struct.pack_into(fmt, sf.buf, sf.record_offset(), k, -70000, 0)
        sf.added(k)

@micropython.native
def frames(n, seq):
    for k in range(n):
        sample(elec, ELEC, k)
        out.write(elec.buf, elec.seal(0, seq))
        seq += 1
        load_sample(load, LOAD, k)
        out.write(load.buf, load.seal(defs.FLAG_DROPPED, seq))
        seq += 1
        w.seq = seq
        p = messages.pack_event(w.buf, w.payload_offset, k, defs.EV_EDGE, 0, k, 0.5)
        out.write(w.buf, w.finish(defs.MSG_EVENT, 0, 0, p))
        seq += 1
        w.seq = seq
        p = messages.pack_status(w.buf, w.payload_offset, status)
        out.write(w.buf, w.finish(defs.MSG_STATUS, 0, 0, p))
        seq += 1
        w.seq = seq
        p = messages.pack_ack(w.buf, w.payload_offset, k, defs.CMD_CONSTANT, applied)
        out.write(w.buf, w.finish(defs.MSG_ACK, 0, 0, p))
        seq += 1
    return seq

seq = frames(2, 0)
t0 = t1 = t2 = locked_ok = 0  # globals exist before measuring (a new global allocates)
gc.collect()
gc.disable()  # no collection in between: mem_alloc() only grows with what is allocated
t0 = gc.mem_alloc()
micropython.heap_lock()
try:
    seq = frames(200, seq)
    locked_ok = 1
except MemoryError:
    locked_ok = 0
micropython.heap_unlock()
t1 = gc.mem_alloc()
seq = frames(300, seq)
t2 = gc.mem_alloc()
sys.stderr.write("ALLOC %d %d %d\n" % (locked_ok, t1 - t0, t2 - t1))
"""


@pytest.mark.parametrize("vm", mpvm.VMS)
def test_board_encode_path_allocates_nothing(vm: str) -> None:
    """On the 64-bit unix port and on the 32-bit WebAssembly port, where a CRC or a counter
    >= 2**30 returned as a Python int is a heap-allocated big int (as on a board)."""
    if vm == "unix":
        p = run_mpy(ALLOC_SCRIPT)
    else:  # no native emitter there
        script = ALLOC_SCRIPT.replace("@micropython.native\n", "")
        p = mpvm.run(
            vm,
            f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + script,
            heap="1m",
            trees=mpvm.SOURCE_TREES,
        )
    line = [ln for ln in p.stderr.decode().splitlines() if ln.startswith("ALLOC")][-1]
    locked_ok, under_lock, unlocked = (int(x) for x in line.split()[1:])
    assert locked_ok == 1, "the encode path allocated under heap_lock()"
    assert under_lock == 0
    # without the lock, nothing either (gc disabled: mem_alloc counts every allocation)
    assert unlocked == 0, f"{unlocked} bytes allocated for 1500 frames"
    dec = Decoder(reference_hello())
    msgs = dec.feed(p.stdout) + dec.flush()
    assert dec.bad_frames == 0 and dec.lost_frames == 0
    assert dec.frames_ok == 5 * 502
    assert sum(isinstance(m, Ack) for m in msgs) == 502
