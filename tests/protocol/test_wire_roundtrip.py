"""Round-trip property tests: every message type, host encoder and board-side encoder."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import (
    command_fields,
    events,
    hellos,
    logs,
    nacks,
    records,
    sdk_fields,
    statuses,
)

from host_sdk.wire import (
    Ack,
    Command,
    CommandError,
    Decoder,
    Event,
    Hello,
    SampleBlock,
    Status,
    command_payload,
    encode_ack,
    encode_command,
    encode_event,
    encode_frame,
    encode_hello,
    encode_log,
    encode_nack,
    encode_samples,
    encode_status,
    layouts,
    parse_hello,
    reference_hello,
)
from host_sdk.wire.decoder import hello_from_dict
from host_sdk.wire.encoder import hello_payload
from protocol import defs, frame, messages


def decode_all(wire: bytes, chunks: list[int] | None = None, hello: Hello | None = None):
    dec = Decoder(hello)
    out = []
    if chunks:
        pos = 0
        for c in chunks:
            out += dec.feed(wire[pos : pos + c])
            pos += c
        out += dec.feed(wire[pos:])
    else:
        out += dec.feed(wire)
    out += dec.flush()
    return dec, out


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


chunkings = st.lists(st.integers(1, 64), max_size=30)


@given(events, chunkings)
def test_event_roundtrip(ev: Event, chunks: list[int]) -> None:
    wire = encode_event(ev.t_us, ev.code, ev.cause, ev.index, ev.value, seq=5)
    dec, out = decode_all(wire, chunks)
    assert out == [ev] and dec.frames_ok == 1 and dec.bad_frames == 0
    # board-side packer produces the same bytes
    w = frame.FrameWriter()
    w.seq = 5
    n = messages.pack_event(w.buf, w.payload_offset, ev.t_us, ev.code, ev.cause, ev.index, ev.value)
    assert bytes(w.buf[: w.finish(defs.MSG_EVENT, 0, 0, n)]) == wire


@given(statuses, chunkings)
def test_status_roundtrip(status: Status, chunks: list[int]) -> None:
    wire = encode_status(status, seq=9, flags=defs.FLAG_LATCHED)
    dec, out = decode_all(wire, chunks)
    assert len(out) == 1 and isinstance(out[0], Status)
    assert out[0].values()[:7] == status.values()[:7]
    assert same_float(out[0].setpoint_a, status.setpoint_a)
    w = frame.FrameWriter()
    w.seq = 9
    n = messages.pack_status(w.buf, w.payload_offset, status.values())
    assert bytes(w.buf[: w.finish(defs.MSG_STATUS, defs.FLAG_LATCHED, 0, n)]) == wire


def _same_values(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        same_float(a[k], b[k]) if isinstance(a[k], float) else a[k] == b[k] for k in a
    )


@given(command_fields(), st.integers(0, 0xFFFF), chunkings)
def test_ack_and_command_roundtrip(cmd: tuple[int, dict], cmd_seq: int, chunks: list[int]) -> None:
    cid, fields = cmd  # wire names and values (integer us); the SDK's: `sdk`
    sdk = sdk_fields(fields)
    name = defs.COMMANDS[cid][0]
    wire = encode_ack(cid, cmd_seq, seq=3, **sdk)
    dec, out = decode_all(wire, chunks)
    assert len(out) == 1 and isinstance(out[0], Ack)
    ack = out[0]
    assert (ack.cmd_seq, ack.cmd_id, ack.name) == (cmd_seq, cid, name)
    assert _same_values(dict(ack.applied), sdk)
    # board-side ACK packer
    w = frame.FrameWriter()
    w.seq = 3
    n = messages.pack_ack(w.buf, w.payload_offset, cmd_seq, cid, tuple(fields.values()))
    assert bytes(w.buf[: w.finish(defs.MSG_ACK, 0, 0, n)]) == wire
    # commands: host encoder -> board decoder, and -> host decoder
    cwire = encode_command(name, cmd_seq, frame_seq=11, **sdk)
    payload = cwire[defs.HEADER_SIZE : -defs.CRC_SIZE]
    seq, got_id, args = messages.decode_command(payload, len(payload))
    assert (seq, got_id) == (cmd_seq, cid)
    assert args is not None and _same_values(dict(zip(fields, args, strict=True)), fields)
    assert payload == messages.encode_command(cmd_seq, cid, tuple(fields.values()))
    _, cout = decode_all(cwire)
    assert len(cout) == 1 and isinstance(cout[0], Command)
    assert _same_values(dict(cout[0].args), sdk)


@given(nacks, chunkings)
def test_nack_roundtrip(nack, chunks: list[int]) -> None:
    wire = encode_nack(nack.cmd_id, nack.cmd_seq, nack.reason, nack.text, seq=1)
    dec, out = decode_all(wire, chunks)
    assert out == [nack]
    w = frame.FrameWriter()
    w.seq = 1
    n = messages.pack_nack(
        w.buf, w.payload_offset, nack.cmd_seq, nack.cmd_id, nack.reason, nack.text
    )
    assert bytes(w.buf[: w.finish(defs.MSG_NACK, 0, 0, n)]) == wire
    assert messages.decode_nack(wire[defs.HEADER_SIZE : -4])[3] == nack.text


@given(logs, chunkings)
def test_log_roundtrip(log, chunks: list[int]) -> None:
    wire = encode_log(log.level, log.text, seq=2)
    _, out = decode_all(wire, chunks)
    assert out == [log]
    w = frame.FrameWriter()
    w.seq = 2
    n = messages.pack_log(w.buf, w.payload_offset, log.level, log.text)
    assert bytes(w.buf[: w.finish(defs.MSG_LOG, 0, 0, n)]) == wire


def _hello_dict(h: Hello) -> dict:
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


@settings(max_examples=60)
@given(hellos(), chunkings)
def test_hello_roundtrip(hello: Hello, chunks: list[int]) -> None:
    wire = encode_hello(hello, seq=0, flags=defs.FLAG_BOOT)
    dec, out = decode_all(wire, chunks)
    assert out == [hello]
    assert dec.hello == hello
    # board-side encoder and decoder agree with the construct layout
    assert messages.encode_hello(_hello_dict(hello)) == hello_payload(hello)
    assert hello_from_dict(messages.decode_hello(hello_payload(hello))) == hello
    assert parse_hello(hello_payload(hello)) == hello


@settings(max_examples=60)
@given(hellos(), st.data())
def test_samples_roundtrip(hello: Hello, data: st.DataObject) -> None:
    """Every stream of a random HELLO; frames of random size, any chunking. (No FLAG_BOOT:
    a board met while running, whose indices can be anywhere, not 0 as after a boot.)"""
    wire = encode_hello(hello)
    expected: dict[int, list[np.ndarray]] = {}
    seq = 1
    for s in hello.streams:
        index = data.draw(st.integers(0, 2**32 - 1))
        for _ in range(data.draw(st.integers(0, 3))):
            rec = data.draw(records(s))
            wire += encode_samples(s.id, index, rec, seq=seq)
            seq += 1
            index += len(rec)
            expected.setdefault(s.id, []).append(rec)
    chunks = data.draw(chunkings)
    dec, out = decode_all(wire, chunks)
    assert dec.bad_frames == 0 and dec.lost_frames == 0 and not dec.lost_samples
    got: dict[int, list[np.ndarray]] = {}
    for m in out[1:]:
        assert isinstance(m, SampleBlock)
        assert m.records.dtype == hello.stream(m.stream).dtype
        got.setdefault(m.stream, []).append(m.records)
    for sid, recs in expected.items():
        want = np.concatenate(recs).tobytes()
        have = np.concatenate(got[sid]).tobytes() if sid in got else b""
        assert have == want


@given(st.data())
def test_board_sample_frame_matches_host(data: st.DataObject) -> None:
    """protocol.frame.SampleFrame (the board's packer) builds what the host decodes."""
    hello = reference_hello(n_gratings=data.draw(st.integers(1, 16)))
    s = hello.stream(data.draw(st.sampled_from([0, 1, 2, 3])))
    rec = data.draw(records(s))
    first = data.draw(st.integers(0, 2**32 - 1))
    sf = frame.SampleFrame(s.id, s.record_size)
    sf.reset(first)
    fmt = s.record_format
    for r in rec:
        struct.pack_into(fmt, sf.buf, sf.record_offset(), *r.tolist())
        sf.added(int(r["t_us"]))
    n = sf.seal(0, 77)
    wire = bytes(sf.buf[:n])
    assert wire == encode_samples(s.id, first, rec, seq=77)
    _, out = decode_all(wire, hello=hello)
    if len(rec):
        assert len(out) == 1 and out[0].records.tobytes() == rec.tobytes()
        assert out[0].first_index == first and out[0].seq == 77
    else:
        assert out == []


def test_every_command_has_a_layout() -> None:
    for cid, (name, fmt, names) in defs.COMMANDS.items():
        assert layouts.COMMANDS[cid].sizeof() == defs.COMMAND_HEADER_SIZE + struct.calcsize(
            "<" + fmt
        )
        assert layouts.COMMAND_IDS[name] == cid and len(names) == len(
            layouts.format_codes("<" + fmt)
        )


def test_command_errors_name_the_field() -> None:
    with pytest.raises(CommandError, match="missing field area_m2"):
        encode_command(defs.CMD_SET_CELL, 1)
    with pytest.raises(CommandError, match="unknown field area"):
        encode_command(defs.CMD_SET_CELL, 1, area_m2=1.0, area=2.0)
    with pytest.raises(CommandError, match="unknown command"):
        encode_command("warp_drive", 1)
    with pytest.raises(CommandError, match="unknown command id"):
        encode_command(0xEE, 1)
    with pytest.raises(CommandError, match="set_watchdog"):
        encode_command("set_watchdog", 1, timeout_ms=-5)
    assert command_payload("heartbeat", 0x1234) == b"\x34\x12\x01"


def test_frame_layout_matches_defs() -> None:
    assert layouts.HEADER.sizeof() == defs.HEADER_SIZE
    assert layouts.EVENT.sizeof() == defs.EVENT_SIZE
    assert layouts.SAMPLES_HEADER.sizeof() == defs.SAMPLES_HEADER_SIZE
    assert defs.FRAME_OVERHEAD == defs.HEADER_SIZE + defs.CRC_SIZE
    f = layouts.FRAME.parse(encode_frame(defs.MSG_LOG, b"\x14hi", seq=0x102, flags=1))
    assert (f.header.sync0, f.header.sync1) == (defs.SYNC0, defs.SYNC1)
    assert f.header.length == defs.LENGTH_BASE + 3 and f.header.seq == 0x102
