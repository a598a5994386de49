"""Robustness: >100 000 corrupted frames through the decoder.

Corruptions: bit flips, truncation, dropped bytes, inserted bytes (0x03 and stray sync
bytes included), a frame replaced by garbage, a frame lost; plus garbage between frames
that corrupts nothing. Checked: the decoder never raises, yields exactly the content of
the intact frames (no corrupted content, nothing intact missed, so it resynchronises at the
next intact frame), in order, and its gap accounting equals the true loss, frame by frame
and sample by sample. Chunk boundaries are random.
"""

from __future__ import annotations

import time

import numpy as np

from host_sdk.wire import (
    Decoder,
    Event,
    Gap,
    Log,
    SampleBlock,
    Status,
    encode_event,
    encode_hello,
    encode_log,
    encode_samples,
    encode_status,
    reference_hello,
)
from protocol import defs

N_ROUNDS = 4
FRAMES_PER_ROUND = 55_000
P_CORRUPT = 0.5
MIN_CORRUPTED_TOTAL = 100_000

HELLO = reference_hello(n_gratings=6)
STREAMS = [s for s in HELLO.streams]
CAP = {
    s.id: (defs.DEFAULT_SAMPLE_PAYLOAD - defs.SAMPLES_HEADER_SIZE) // s.record_size for s in STREAMS
}


def _garbage(rng: np.random.Generator, n: int) -> bytes:
    g = rng.integers(0, 256, n, dtype=np.uint8)
    # salt with Ctrl-C, Ctrl-D and the sync bytes so the resync logic is exercised
    salt = rng.random(n)
    g[salt < 0.1] = 0x03
    g[(salt >= 0.1) & (salt < 0.2)] = defs.SYNC0
    g[(salt >= 0.2) & (salt < 0.3)] = defs.SYNC1
    g[(salt >= 0.3) & (salt < 0.33)] = 0x04
    return g.tobytes()


def _corrupt(rng: np.random.Generator, f: bytes, kind: int) -> bytes:
    n = len(f)
    if kind == 0:  # 1 to 3 distinct bits flipped (the same bit twice would be no change)
        b = bytearray(f)
        for bit in rng.choice(8 * n, size=int(rng.integers(1, 4)), replace=False):
            b[int(bit) >> 3] ^= 1 << (int(bit) & 7)
        return bytes(b)
    if kind == 1:  # truncated
        cut = int(rng.integers(0, n))
        # not just before a tail of A5 or A5 5A: the next frame's sync word would complete
        # the frame (decoded intact) and lose its own
        while cut > 0 and bytes([defs.SYNC0, defs.SYNC1]).startswith(f[cut:]):
            cut -= 1
        return f[:cut]
    if kind == 2:  # bytes dropped inside
        b = bytearray(f)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(b)))
            if at == len(b) - 1 and b[at] == defs.SYNC0:
                # a last A5 dropped is a truncation the next frame's sync word completes
                # (the frame arrives intact, the next one loses its sync): as in kind 1
                at -= 1
            del b[at]
        return bytes(b)
    if kind == 3:  # bytes inserted inside (strictly inside: before byte 0 it is harmless)
        at = int(rng.integers(1, n))
        return f[:at] + _garbage(rng, int(rng.integers(1, 6))) + f[at:]
    if kind == 4:  # replaced by garbage
        return _garbage(rng, int(rng.integers(1, 2 * n)))
    return b""  # lost


def _make_round(rng: np.random.Generator, seq0: int):
    """Frames (clean), their descriptions, and the corrupted wire."""
    frames: list[bytes] = []
    desc: list[tuple] = []
    index = {s.id: int(rng.integers(0, 2**32)) for s in STREAMS}
    index[defs.STREAM_ELEC] = 2**32 - 5000  # wraps past 2**32 during the round
    rand = rng.integers(0, 256, 2_000_000, dtype=np.uint8).tobytes()
    rpos = 0
    seq = seq0
    frames.append(encode_hello(HELLO, seq=seq))  # a running board: indices anywhere
    desc.append(("hello",))
    kinds = rng.integers(0, 100, FRAMES_PER_ROUND)
    for k in range(1, FRAMES_PER_ROUND):
        seq = (seq + 1) & 0xFFFF
        c = kinds[k]
        edge = k < 10 or k >= FRAMES_PER_ROUND - 10  # every stream at both ends
        if c < 88 or edge:
            s = STREAMS[(k if edge else int(c)) % len(STREAMS)]
            n = int(rng.integers(1, CAP[s.id] + 1))
            nb = n * s.record_size
            if rpos + nb > len(rand):
                rpos = 0
            data = rand[rpos : rpos + nb]
            rpos += nb
            frames.append(
                encode_samples(s.id, index[s.id], data, n_records=n, t_first_us=k, seq=seq)
            )
            desc.append(("samples", s.id, index[s.id], data))
            index[s.id] += n
        elif c < 94:
            ev = Event(k, defs.EV_EDGE, "edge", defs.CAUSE_NONE, "none", k & 0xFFFF, 0.5)
            frames.append(encode_event(ev.t_us, ev.code, ev.cause, ev.index, ev.value, seq=seq))
            desc.append(("msg", ev))
        elif c < 98:
            st = Status(k, k, 0, 1, 2, 1, 0, 0.25)
            frames.append(encode_status(st, seq=seq))
            desc.append(("msg", st))
        else:
            lg = Log(defs.LOG_INFO, f"line {k} \x03 ok")
            frames.append(encode_log(lg.level, lg.text, seq=seq))
            desc.append(("msg", lg))
    # the first 10 and the last 10 frames stay intact (loss before the first or after the
    # last frame of a stream cannot be seen by anyone)
    corrupt = rng.random(len(frames)) < P_CORRUPT
    corrupt[:10] = False
    corrupt[-10:] = False
    ckind = rng.integers(0, 6, len(frames))
    between = rng.random(len(frames)) < 0.1
    parts: list[bytes] = []
    for k, f in enumerate(frames):
        if between[k]:
            parts.append(_garbage(rng, int(rng.integers(1, 40))))
        if corrupt[k]:
            bad = _corrupt(rng, f, int(ckind[k]))
            # garbage inserted after the first byte can end in A5 and so rebuild the sync
            # word: the frame then arrives intact after some garbage, and must be decoded
            # (or the garbage before it ends in A5 and the damage took the frame's own A5)
            tail = parts[-1][-len(f) :] if parts else b""
            if f in bad or f in tail + bad:
                corrupt[k] = False
            parts.append(bad)
        else:
            parts.append(f)
    return frames, desc, corrupt, b"".join(parts), seq


def _expected(desc, corrupt):
    samples: dict[int, list[bytes]] = {}
    gaps: list[Gap] = []
    msgs: list[object] = [HELLO]
    pending: dict[int, list[int]] = {}  # stream -> [unwrapped first lost, count]
    unwrapped: dict[int, int] = {}
    base: dict[int, int] = {}
    for d, bad in zip(desc, corrupt, strict=True):
        if d[0] == "hello":
            continue
        if d[0] == "msg":
            if not bad:
                msgs.append(d[1])
            continue
        _, sid, first, data = d
        # unwrap exactly as the board's u32 counter would
        if sid not in base:
            base[sid] = first
            unwrapped[sid] = first
        n = len(data) // HELLO.stream(sid).record_size
        u = unwrapped[sid]
        if bad:
            p = pending.setdefault(sid, [u, 0])
            p[1] += n
        else:
            if sid in pending:
                gaps.append(Gap(sid, pending[sid][0], pending[sid][1]))
                del pending[sid]
            samples.setdefault(sid, []).append(data)
        unwrapped[sid] = u + n
    assert not pending
    return msgs, gaps, {sid: b"".join(v) for sid, v in samples.items()}


def test_corrupted_frames() -> None:
    rng = np.random.default_rng(20261121)
    total_corrupted = 0
    t0 = time.perf_counter()
    seq = 0
    for _ in range(N_ROUNDS):
        frames, desc, corrupt, wire, seq = _make_round(rng, (seq + 1000) & 0xFFFF)
        total_corrupted += int(corrupt.sum())
        # random chunking, from 1 byte to 8 KiB
        cuts = np.cumsum(rng.integers(1, 8192, len(wire) // 2000 + 10))
        cuts = cuts[cuts < len(wire)]
        dec = Decoder()  # learns the layouts from the (intact) HELLO
        out = []
        prev = 0
        for c in [*cuts.tolist(), len(wire)]:
            out += dec.feed(wire[prev:c])
            prev = c
        out += dec.flush()

        want_msgs, want_gaps, want_samples = _expected(desc, corrupt)
        got_msgs = [m for m in out if not isinstance(m, SampleBlock | Gap)]
        got_gaps = [m for m in out if isinstance(m, Gap)]
        assert got_msgs == want_msgs
        assert sorted(got_gaps, key=lambda g: (g.stream, g.first_index)) == sorted(
            want_gaps, key=lambda g: (g.stream, g.first_index)
        )
        got_samples: dict[int, list[bytes]] = {}
        for m in out:
            if isinstance(m, SampleBlock):
                got_samples.setdefault(m.stream, []).append(m.records.tobytes())
        assert {sid: b"".join(v) for sid, v in got_samples.items()} == want_samples

        n_lost_frames = int(corrupt.sum())
        assert dec.lost_frames == n_lost_frames
        assert dec.frames_ok == len(frames) - n_lost_frames
        for sid in want_samples:
            assert dec.lost_samples.get(sid, 0) == sum(
                g.count for g in want_gaps if g.stream == sid
            )
        assert dec.bytes_ok + dec.bytes_skipped == len(wire)
        assert dec.pending_bytes == 0
    assert total_corrupted >= MIN_CORRUPTED_TOTAL
    assert time.perf_counter() - t0 < 60


def test_pure_garbage_never_raises_or_yields() -> None:
    rng = np.random.default_rng(7)
    dec = Decoder(HELLO)
    data = _garbage(rng, 3_000_000)
    out = []
    for k in range(0, len(data), 4096):
        out += dec.feed(data[k : k + 4096])
    out += dec.flush()
    assert out == []
    assert dec.frames_ok == 0 and dec.bytes_skipped == len(data)


def test_block_sample_ordering_with_messages() -> None:
    """A message comes after every sample that was sent before it."""
    wire = encode_hello(HELLO, flags=defs.FLAG_BOOT)
    s = HELLO.stream(defs.STREAM_ELEC)
    rec = np.zeros(5, s.dtype)
    wire += encode_samples(2, 0, rec, seq=1) + encode_event(1, defs.EV_EDGE, seq=2)
    wire += encode_samples(2, 5, rec, seq=3)
    out = Decoder().feed(wire)
    assert [type(m).__name__ for m in out] == ["Hello", "SampleBlock", "Event", "SampleBlock"]
