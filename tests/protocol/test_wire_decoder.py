"""Decoder behaviour, case by case: rejection rules, resync, gaps, resets, wrap-around."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from host_sdk.wire import (
    Decoder,
    Event,
    Gap,
    RawSamples,
    Reboot,
    SampleBlock,
    encode_event,
    encode_frame,
    encode_hello,
    encode_samples,
    reference_hello,
)
from protocol import defs

HELLO = reference_hello()
ELEC = HELLO.stream(defs.STREAM_ELEC)


def recs(n: int, start: int = 0) -> np.ndarray:
    r = np.zeros(n, ELEC.dtype)
    r["t_us"] = np.arange(start, start + n) * 200
    r["voltage"] = np.arange(start, start + n)
    return r


def raw_frame(
    version: int, mtype: int, flags: int, stream: int, seq: int, payload: bytes, boot: int = 1
) -> bytes:
    """A frame built from the spec's layout (protocol/README.md §2), not by the encoder."""
    head = bytearray(
        struct.pack(
            defs.HEADER_FMT,
            defs.SYNC0,
            defs.SYNC1,
            defs.LENGTH_BASE + len(payload),
            version,
            mtype,
            flags,
            stream,
            seq,
            boot,
            0,
        )
    )
    head[12] = zlib.crc32(head[2:12]) & 0xFF
    body = bytes(head[2:]) + payload
    return bytes(head[:2]) + body + struct.pack("<I", zlib.crc32(body))


def v1_frame(mtype: int, seq: int, payload: bytes) -> bytes:
    """A protocol version 1 frame: 10-byte header, no boot id, no header check."""
    head = struct.pack("<BBHBBBBH", 0xA5, 0x5A, 6 + len(payload), 1, mtype, 0, 0, seq)
    body = head[2:] + payload
    return head[:2] + body + struct.pack("<I", zlib.crc32(body))


def test_unknown_flag_bits_and_versions_are_rejected_and_counted() -> None:
    ev = struct.pack(defs.EVENT_FMT, 1, defs.EV_EDGE, 0, 0, 0.0)
    good = raw_frame(defs.PROTOCOL_VERSION, defs.MSG_EVENT, 0, 0, 2, ev)
    wire = (
        raw_frame(defs.PROTOCOL_VERSION, defs.MSG_EVENT, 0x80, 0, 0, ev)
        + raw_frame(defs.PROTOCOL_VERSION + 1, defs.MSG_EVENT, 0, 0, 1, ev)
        + good
    )
    dec = Decoder()
    out = dec.feed(wire)
    assert [type(m) for m in out] == [Event]
    assert dec.bad["flags"] == 1 and dec.bad["version"] == 1 and dec.bad_frames == 2
    assert dec.bytes_skipped == len(wire) - len(good) and dec.foreign_version == 3
    for flag in (defs.FLAG_DROPPED, defs.FLAG_LATCHED, defs.FLAG_BOOT):
        assert Decoder().feed(raw_frame(defs.PROTOCOL_VERSION, defs.MSG_EVENT, flag, 0, 0, ev))


def test_unknown_message_type_and_malformed_payloads_are_counted() -> None:
    dec = Decoder(HELLO)
    wire = (
        encode_frame(0x7F, b"xyz", seq=0)
        + encode_frame(defs.MSG_EVENT, b"\x00" * 11, seq=1)  # one byte short
        + encode_frame(defs.MSG_ACK, b"\x01\x00\x05", seq=2)  # set_cell without its value
        + encode_frame(defs.MSG_HELLO, b"\x01\x00", seq=3)  # truncated HELLO
        + encode_frame(defs.MSG_SAMPLES, b"\x00" * 14 + b"\x00" * 5, stream=2, seq=4)  # 5 extra
        + encode_event(5, defs.EV_EDGE, seq=5)
    )
    out = dec.feed(wire)
    assert len(out) == 1 and isinstance(out[0], Event)
    assert dec.bad == {
        "header": 0,
        "length": 0,
        "crc": 0,
        "version": 0,
        "flags": 0,
        "type": 1,
        "payload": 4,
        "internal": 0,
    }


def test_a_version_1_frame_is_recognised_and_named() -> None:
    ev = struct.pack(defs.EVENT_FMT, 1, defs.EV_EDGE, 0, 0, 0.0)
    old = v1_frame(defs.MSG_EVENT, 5, ev)
    for chunk in (1, len(old)):  # byte by byte too: no header check to reject it early
        dec = Decoder()
        out = []
        for k in range(0, len(old) + 1, chunk):
            out += dec.feed(old[k : k + chunk])
        assert out == [] and dec.bad["version"] == 1 and dec.foreign_version == 1


def test_frame_inside_a_corrupt_frame_is_found() -> None:
    """A header whose length swallows the next frame: the next frame is still decoded."""
    inner = encode_event(42, defs.EV_EDGE, seq=1)
    bogus = raw_frame(defs.PROTOCOL_VERSION, defs.MSG_EVENT, 0, 0, 0, b"\x00" * 191)[:30]
    tail = b"".join(encode_event(43, defs.EV_EDGE, seq=2 + k) for k in range(20))
    dec = Decoder()
    out = []
    for b in bogus + inner + tail:  # one byte at a time
        out += dec.feed(bytes([b]))
    assert [m.t_us for m in out if isinstance(m, Event)] == [42] + [43] * 20
    assert dec.bad["crc"] >= 1


def test_a_bad_header_is_rejected_after_13_bytes() -> None:
    """A corrupted length no longer holds the frames behind it back (header check)."""
    good = encode_event(42, defs.EV_EDGE, seq=1)
    bad = bytearray(encode_event(41, defs.EV_EDGE, seq=0))
    bad[3] = 0x04  # length 1024 + ...: the header check fails
    dec = Decoder()
    out = dec.feed(bytes(bad) + good)
    assert [m.t_us for m in out if isinstance(m, Event)] == [42]
    assert dec.bad["header"] == 1 and dec.pending_bytes == 0


def test_flush_releases_a_frame_held_behind_a_bogus_length() -> None:
    bogus = v1_frame(defs.MSG_LOG, 0, b"x" * 1000)[:4] + b"\x01"  # a v1 header: no check
    ev = encode_event(7, defs.EV_EDGE)
    dec = Decoder()
    assert dec.feed(bogus + ev) == []
    assert dec.pending_bytes == len(bogus) + len(ev)
    out = dec.flush()
    assert len(out) == 1 and out[0].t_us == 7
    assert dec.bytes_ok + dec.bytes_skipped == len(bogus) + len(ev)


def test_length_above_max_payload_is_rejected_at_once() -> None:
    dec = Decoder(max_payload=64)
    big = encode_frame(defs.MSG_LOG, b"\x14" + b"x" * 100)
    ev = encode_event(1, defs.EV_EDGE)
    out = dec.feed(big + ev)
    assert len(out) == 1 and dec.bad["length"] == 1


def test_gaps_are_exact_and_blocks_gap_free() -> None:
    dec = Decoder(HELLO)
    wire = (
        encode_samples(2, 100, recs(10), seq=0)
        + encode_samples(2, 110, recs(10, 10), seq=1)
        # frames seq 2, 3 lost: 25 samples
        + encode_samples(2, 145, recs(10, 45), seq=4)
        # the board dropped 15 (its cumulative count goes 0 -> 15)
        + encode_samples(2, 170, recs(5, 70), seq=5, flags=defs.FLAG_DROPPED, board_dropped=15)
    )
    out = dec.feed(wire)
    kinds = [(type(m).__name__, m.first_index) for m in out]  # type: ignore[union-attr]
    assert kinds == [
        ("SampleBlock", 100),
        ("Gap", 120),
        ("SampleBlock", 145),
        ("Gap", 155),
        ("SampleBlock", 170),
    ]
    assert out[1] == Gap(2, 120, 25, 0) and out[3] == Gap(2, 155, 15, 15)
    assert not out[1].on_board and out[3].on_board
    assert len(out[0]) == 20 and out[0].stop_index == 120
    assert dec.lost_samples[2] == 25 and dec.board_dropped[2] == 15 and dec.lost_frames == 2


def test_a_gap_with_board_drops_and_link_losses_is_split_exactly() -> None:
    dec = Decoder(HELLO)
    wire = (
        encode_samples(2, 0, recs(10), seq=0, board_dropped=4)
        # seq 1 (10 samples, 10..19) lost on the link; then the board dropped 7 (20..26)
        + encode_samples(2, 27, recs(10, 27), seq=2, board_dropped=11)
    )
    out = dec.feed(wire)
    gaps = [m for m in out if isinstance(m, Gap)]
    assert gaps == [Gap(2, 10, 17, 7)] and gaps[0].link_count == 10
    assert dec.lost_samples[2] == 10 and dec.board_dropped[2] == 7


def test_u32_index_and_u16_seq_wrap_without_false_gaps() -> None:
    dec = Decoder(HELLO)
    first = 2**32 - 15
    wire = b"".join(
        encode_samples(2, (first + 10 * k) & 0xFFFFFFFF, recs(10), seq=(0xFFFE + k) & 0xFFFF)
        for k in range(5)
    )
    out = dec.feed(wire)
    assert len(out) == 1 and isinstance(out[0], SampleBlock)
    assert out[0].first_index == first and len(out[0]) == 50  # unwrapped past 2**32
    assert dec.lost_frames == 0 and not dec.lost_samples


def test_boot_flag_restarts_tracking_without_a_gap() -> None:
    dec = Decoder(HELLO)
    wire = encode_samples(2, 5000, recs(10), seq=700) + encode_samples(2, 5010, recs(10), seq=701)
    wire += encode_hello(HELLO, seq=0, flags=defs.FLAG_BOOT, boot=2)  # the board rebooted
    wire += encode_samples(2, 0, recs(10), seq=1, boot=2)
    wire += encode_samples(2, 10, recs(10), seq=2, boot=2)
    out = dec.feed(wire)
    blocks = [m for m in out if isinstance(m, SampleBlock)]
    assert [(b.first_index, len(b)) for b in blocks] == [(5000, 20), (0, 20)]
    assert not any(isinstance(m, Gap) for m in out)
    assert Reboot(2, 0) in out
    assert dec.lost_frames == 0 and not dec.lost_samples and dec.boots == 1


def test_reboot_with_lost_boot_frames_counts_what_the_link_lost() -> None:
    """STATUS seq 40000 then (boot frames lost) seq 3 of a new boot: 3 frames lost, not
    25 539; and the new boot's first 12 samples were lost on the link."""
    dec = Decoder(HELLO)
    wire = encode_samples(2, 5000, recs(10), seq=40000) + encode_samples(
        2, 12, recs(10), seq=3, boot=9
    )
    out = dec.feed(wire)
    assert [m.first_index for m in out if isinstance(m, SampleBlock)] == [5000, 12]
    assert dec.lost_frames == 3 and dec.lost_samples[2] == 12 and dec.boots == 1


def test_unknown_stream_layout_is_kept_raw_until_hello() -> None:
    dec = Decoder()
    data = recs(3).tobytes()
    wire = encode_samples(2, 0, data, n_records=3, t_first_us=9)
    out = dec.feed(wire)
    assert out == [] and dec.unknown_stream_frames == 1
    (raw,) = dec.take_raw()
    assert raw == RawSamples(2, 0, 9, 3, data, 0, 0)
    out = dec.feed(encode_hello(HELLO, seq=1) + encode_samples(2, 3, recs(3), seq=2))
    assert isinstance(out[1], SampleBlock) and out[1].records.dtype == ELEC.dtype


def test_records_are_named_numpy_fields() -> None:
    dec = Decoder(HELLO)
    (block,) = dec.feed(encode_samples(2, 0, recs(38)))
    assert block.records.dtype.names == ("t_us", "voltage", "current", "state")
    assert block.records["voltage"].tolist() == list(range(38))
    assert ELEC.dtype.itemsize == 13 and not ELEC.dtype.isalignedstruct
