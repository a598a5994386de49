"""The decoder never raises and never gets stuck, whatever it is fed; strict HELLOs.

The crash this guards against: a CRC-valid HELLO whose record format held no values was
accepted, and every later SAMPLES frame of that stream raised in np.frombuffer, forever
(the consumed bytes were dropped only after the scan returned).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.wire import (
    Decoder,
    Event,
    FieldInfo,
    Hello,
    SampleBlock,
    StreamInfo,
    encode_event,
    encode_frame,
    encode_hello,
    encode_samples,
    parse_hello,
    reference_hello,
)
from host_sdk.wire.encoder import hello_payload
from protocol import defs

GOOD = reference_hello()


def _stream(fmt: str, names: list[str], sid: int = 2, name: str = "s") -> StreamInfo:
    return StreamInfo(sid, name, 10.0, True, fmt, tuple(FieldInfo(n, "") for n in names))


BAD_HELLOS = {
    "empty format": _stream("<", []),
    "zero repeat": _stream("<0i", []),
    "code Q": _stream("<IQ", ["t_us", "q"]),
    "code d": _stream("<Id", ["t_us", "d"]),
    "no byte order": _stream("Ii", ["t_us", "x"]),
    "big endian": _stream(">Ii", ["t_us", "x"]),
    "empty field name": _stream("<Ii", ["t_us", ""]),
    "duplicate field": _stream("<Ii", ["t_us", "t_us"]),
    "field count": _stream("<Ii", ["t_us"]),
    "not an identifier": _stream("<Ii", ["t_us", "a b"]),
}


@pytest.mark.parametrize("what", sorted(BAD_HELLOS))
def test_a_bad_stream_layout_is_rejected_and_samples_keep_flowing(what: str) -> None:
    bad = Hello(2, (0, 1, 0), "b", "u", (BAD_HELLOS[what],), {})
    rec = np.zeros(3, GOOD.stream(2).dtype)
    dec = Decoder(GOOD)
    out = dec.feed(
        encode_frame(defs.MSG_HELLO, hello_payload(bad), seq=1)
        + encode_samples(2, 0, rec, seq=2)
        + encode_event(9, defs.EV_EDGE, seq=3)
    )
    assert dec.bad["payload"] == 1, what
    # the previous (good) layout still applies: the samples decode, the event follows
    assert [type(m) for m in out] == [SampleBlock, Event]
    assert dec.feed(encode_event(10, defs.EV_EDGE, seq=4))  # not stuck


def test_other_hello_rules() -> None:
    s = GOOD.streams
    bads = {
        "duplicate stream id": Hello(2, (0, 1, 0), "b", "u", (s[0], s[0]), {}),
        "duplicate stream name": Hello(
            2,
            (0, 1, 0),
            "b",
            "u",
            (s[0], StreamInfo(9, s[0].name, 1.0, True, "<I", s[0].fields[:1])),
            {},
        ),
        "empty board id": Hello(2, (0, 1, 0), "", "u", s, {}),
        "other version": Hello(1, (0, 1, 0), "b", "u", s, {}),
        "nan rate": Hello(
            2, (0, 1, 0), "b", "u", (StreamInfo(0, "x", math.nan, True, "<I", s[0].fields[:1]),), {}
        ),
        "empty limit name": Hello(2, (0, 1, 0), "b", "u", s, {"": 1.0}),
    }
    for what, h in bads.items():
        with pytest.raises(ValueError):
            parse_hello(hello_payload(h))
        assert not Decoder().feed(encode_hello(h)), what
    # limits out of order on the wire (the encoder sorts them, so build it by hand)
    p = bytearray(hello_payload(Hello(2, (0, 1, 0), "b", "u", (), {"a": 1.0, "b": 2.0})))
    i, j = p.index(b"\x01a"), p.index(b"\x01b")
    p[i + 1], p[j + 1] = ord("b"), ord("a")
    with pytest.raises(ValueError, match="sorted"):
        parse_hello(bytes(p))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 0xFF), st.integers(0, 3))
def test_no_exception_on_any_crc_valid_frame(payload: bytes, mtype: int, stream: int) -> None:
    """Any payload of any type in an intact frame: counted or decoded, never raised; the
    decoder is not stuck after it."""
    dec = Decoder(GOOD)
    dec.feed(encode_frame(mtype, payload, stream=stream, seq=1))
    out = dec.feed(encode_event(1, defs.EV_EDGE, seq=2))
    assert len(out) == 1 and isinstance(out[0], Event)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20), st.binary(max_size=2000))
def test_no_exception_on_any_bytes(chunks: list[bytes], junk: bytes) -> None:
    dec = Decoder(GOOD)
    for c in chunks:
        dec.feed(c)
    dec.feed(junk)
    dec.flush()
    # and it still decodes after all that
    assert dec.feed(encode_event(3, defs.EV_EDGE, seq=7, boot=77))[-1] == Event(
        3, defs.EV_EDGE, "edge", 0, "none", 0, 0.0
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=60))
def test_random_hello_payloads_never_raise_out_of_the_decoder(payload: bytes) -> None:
    dec = Decoder(GOOD)
    dec.feed(encode_frame(defs.MSG_HELLO, b"\x02\x00\x01\x00" + payload, seq=1))
    rec = np.zeros(2, GOOD.stream(2).dtype)
    dec.feed(encode_samples(2, 0, rec, seq=2))
    assert dec.feed(encode_event(3, defs.EV_EDGE, seq=3))
