"""The decoder's fast lane (host_sdk/wire/lane.py) changes nothing but speed.

The same bytes, in the same chunks, go to a decoder with the lane and to one without it
(`Decoder(fast=False)`: every frame on the per-frame path); the messages, their order and
block boundaries, and every counter must be identical. Inputs: the accounting test's board
and link models (losses, duplicates, reorders, reboots, index wrap), and a realistic
session of every stream mangled on the way (bit flips, junk, cut frames, lost and
repeated frames, a reboot, a new HELLO, frames with bad fields but good CRCs).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_wire_accounting import links, sessions

from host_sdk.wire import Decoder, Hello, SampleBlock, synth
from host_sdk.wire.encoder import encode_hello, encode_samples, reference_hello
from host_sdk.wire.lane import CRC_RESIDUE
from protocol import defs

SESSION = synth.session(2.0, seed=7, events_per_s=20.0)
FRAMES = SESSION.frames


def _counters(dec: Decoder) -> dict[str, Any]:
    tr = dec.track
    return {
        "frames_ok": dec.frames_ok,
        "bad_frames": dec.bad_frames,
        "bad": dict(dec.bad),
        "bytes_skipped": dec.bytes_skipped,
        "bytes_ok": dec.bytes_ok,
        "foreign_version": dec.foreign_version,
        "unknown_stream_frames": dec.unknown_stream_frames,
        "pending": dec.pending_bytes,
        "boots": tr.boots,
        "boot": tr.boot,
        "next_seq": tr.next_seq,
        "seq_u": tr.seq_u,
        "lost_frames": tr.lost_frames,
        "duplicate_frames": tr.duplicate_frames,
        "reordered_frames": tr.reordered_frames,
        "stale_frames": tr.stale_frames,
        "lost_samples": dict(tr.lost_samples),
        "board_dropped": dict(tr.board_dropped),
        "late_samples": dict(tr.late_samples),
        "index_anomalies": tr.index_anomalies,
        "next_index": dict(tr.next_index),
        "dropped": dict(tr.dropped),
    }


def _same(
    chunks: list[bytes], max_payload: int = defs.MAX_PAYLOAD, hello: Hello | None = None
) -> int:
    """Feed both decoders; assert identical results; return the records delivered."""
    fast = Decoder(hello, fast=True, max_payload=max_payload)
    slow = Decoder(hello, fast=False, max_payload=max_payload)
    assert fast.fast and not slow.fast
    n = 0
    for k, chunk in enumerate([*chunks, None]):
        a = fast.feed(chunk) if chunk is not None else fast.flush()
        b = slow.feed(chunk) if chunk is not None else slow.flush()
        assert len(a) == len(b), f"chunk {k}: {len(a)} vs {len(b)} messages"
        for x, y in zip(a, b, strict=True):
            assert type(x) is type(y)
            if isinstance(x, SampleBlock):
                assert isinstance(y, SampleBlock)
                assert (x.stream, x.first_index, x.flags, x.seq) == (
                    y.stream,
                    y.first_index,
                    y.flags,
                    y.seq,
                )
                assert x.records.dtype == y.records.dtype
                assert x.records.tobytes() == y.records.tobytes()
                n += len(x.records)
            else:
                assert x == y
        assert _counters(fast) == _counters(slow), f"after chunk {k}"
    return n


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


def _reseal(frame: bytearray) -> bytes:
    """Recompute a frame's header check and CRC-32 after its fields were changed."""
    h = zlib.crc32(bytes(frame[2 : defs.HCHECK_OFFSET]))
    frame[defs.HCHECK_OFFSET] = h & 0xFF
    struct.pack_into("<I", frame, len(frame) - 4, zlib.crc32(bytes(frame[2:-4])))
    return bytes(frame)


def test_the_crc_residue_holds_for_any_bytes() -> None:
    rng = np.random.default_rng(1)
    for n in (0, 1, 9, 500, 1100):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        crc = zlib.crc32(data).to_bytes(4, "little")
        assert zlib.crc32(data + crc) == CRC_RESIDUE
        bad = bytes([crc[0] ^ 1]) + crc[1:]
        assert zlib.crc32(data + bad) != CRC_RESIDUE


def test_a_clean_session_goes_through_the_lane() -> None:
    wire = SESSION.wire
    chunks = [wire[k : k + 4096] for k in range(0, len(wire), 4096)]
    n = _same(chunks)
    assert n == sum(len(r) for r in SESSION.records.values())
    # and the lane really takes frames: without it the slow path would see every one
    calls = []
    import host_sdk.wire.decoder as decoder_module

    real = decoder_module.lane

    def spy(*a: Any) -> tuple[int, int]:
        r = real(*a)
        calls.append(r[1])
        return r

    decoder_module.lane = spy
    try:
        Decoder().feed(wire)
    finally:
        decoder_module.lane = real
    n_samples = sum(1 for k in SESSION.kinds if k == defs.MSG_SAMPLES)
    assert sum(calls) > 0.9 * n_samples


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_accounting_models_decode_identically(data: st.DataObject) -> None:
    frames, _ = data.draw(sessions())
    arrived = data.draw(links(frames))
    wire = b"".join(f.wire for f in arrived)
    cuts = data.draw(st.lists(st.integers(0, 10**6), max_size=6))
    # a reader with a smaller maximum payload: frames of 4 or more records are too long
    _same(
        _chunks(wire, cuts),
        data.draw(st.sampled_from([defs.MAX_PAYLOAD, 60])),
        reference_hello(),
    )


MUTATIONS = [
    "flip",
    "junk",
    "cut",
    "lose",
    "repeat",
    "swap",
    "hello",
    "reboot",
    "field",
    "hcheck",
    "ok",
    "ok",
    "ok",
]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mangled_session_decodes_identically(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    start = data.draw(st.integers(0, len(FRAMES) - 1))
    take = data.draw(st.integers(1, 80))
    out: list[bytes] = []
    for frame in FRAMES[start : start + take]:
        what = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        f = bytearray(frame)
        if what == "flip":
            f[int(rng.integers(len(f)))] ^= 1 << int(rng.integers(8))
        elif what == "junk":
            out.append(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes())
        elif what == "cut":
            f = f[: int(rng.integers(1, len(f)))]
        elif what == "lose":
            continue
        elif what == "repeat":
            out.append(bytes(f))
        elif what == "swap" and out:
            out.insert(len(out) - 1, bytes(f))
            continue
        elif what == "hello":
            out.append(encode_hello(reference_hello(), seq=f[8] | (f[9] << 8), boot=f[10]))
        elif what == "reboot":
            f[10] ^= 0x5A  # another boot id, same everything else
            f = bytearray(_reseal(f))
        elif what == "field" and len(f) > 27:
            # a CRC-valid frame with one field the lane must not take: version, flags,
            # stream, record count, index or board_dropped
            off = int(rng.choice([4, 6, 7, 13, 21, 23]))
            f[off] ^= 1 << int(rng.integers(8))
            f = bytearray(_reseal(f))
        elif what == "hcheck":  # a wrong header check under a good CRC-32
            f[defs.HCHECK_OFFSET] ^= 1 << int(rng.integers(8))
            struct.pack_into("<I", f, len(f) - 4, zlib.crc32(bytes(f[2:-4])))
        out.append(bytes(f))
    wire = b"".join(out)
    cuts = data.draw(st.lists(st.integers(0, 10**6), max_size=5))
    # a reader that takes smaller frames only: the board's full frames are then too long
    hello = SESSION.hello if data.draw(st.booleans()) else None
    _same(_chunks(wire, cuts), data.draw(st.sampled_from([defs.MAX_PAYLOAD, 300])), hello)


def test_every_field_the_lane_checks_makes_it_stop() -> None:
    """One sample frame in the middle of a clean stretch, with one bit of one field changed
    under a good CRC (or only its header check wrong): both paths must agree on it."""
    frames = FRAMES[:120]
    mid = next(k for k in range(60, 120) if frames[k][5] == defs.MSG_SAMPLES and frames[k][7] == 2)
    for off in (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 21, 23, 26):
        for bit in range(8):
            f = bytearray(frames[mid])
            f[off] ^= 1 << bit
            if off == defs.HCHECK_OFFSET:
                struct.pack_into("<I", f, len(f) - 4, zlib.crc32(bytes(f[2:-4])))
                g = bytes(f)
            else:
                g = _reseal(f)
            wire = b"".join([*frames[:mid], g, *frames[mid + 1 :]])
            _same([wire[:5000], wire[5000:]])
    # and a reader whose maximum payload (60) is below some frames' (5 records: 79 bytes)
    hello = reference_hello()
    dtype = hello.stream(defs.STREAM_ELEC).dtype
    small = []
    index = 0
    for seq, n in enumerate([2, 2, 2, 2, 5, 2, 2, 2, 2, 2]):
        rec = np.zeros(n, dtype)
        flags = defs.FLAG_BOOT if seq == 0 else 0
        small.append(encode_samples(2, index, rec, seq=seq, flags=flags, boot=7))
        index += n
    assert _same([b"".join(small)], 60, hello) == 2 * 9
