"""protocol/README.md agrees with the code: worked examples byte for byte, every code named."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np

from host_sdk.wire import (
    Ack,
    Command,
    Decoder,
    Event,
    SampleBlock,
    encode_ack,
    encode_command,
    encode_event,
    encode_samples,
    reference_hello,
)
from protocol import defs

SPEC = (Path(__file__).resolve().parents[2] / "protocol" / "README.md").read_text("utf-8")


def example(name: str) -> bytes:
    m = re.search(rf"<!-- example: {name} -->\s*```\s*([0-9a-f ]+?)\s*```", SPEC)
    assert m, f"example {name} missing from protocol/README.md"
    return bytes.fromhex(m.group(1))


def test_worked_examples_match_the_code() -> None:
    boot = 0x3A7C
    cmd = encode_command(defs.CMD_SET_CELL, 7, frame_seq=3, area_m2=1e-4)
    assert example("set_cell") == cmd
    assert example("set_cell_ack") == encode_ack(
        defs.CMD_SET_CELL, 7, seq=0x12, boot=boot, area_m2=1e-4
    )
    s = reference_hello().stream(defs.STREAM_ELEC)
    r = np.zeros(2, s.dtype)
    r["t_us"] = [1_000_000, 1_000_200]
    r["voltage"] = [1_893_000, 1_893_010]
    r["current"] = [-52_000, -52_001]
    r["state"] = 3
    assert example("elec_samples") == encode_samples(
        2, 5000, r, seq=0x0203, boot=boot, board_dropped=12
    )
    ev = encode_event(
        1_234_567,
        defs.EV_STOP_LATCHED,
        defs.CAUSE_WATCHDOG,
        seq=0x0102,
        flags=defs.FLAG_LATCHED,
        boot=boot,
    )
    assert example("stop_event") == ev
    assert example("timesync") == encode_command("timesync", 0x9001, frame_seq=4, t_us=0)
    assert example("timesync_ack") == encode_ack(
        "timesync", 0x9001, seq=0x13, boot=boot, t_us=3_000_123_456
    )


def test_header_check_as_the_spec_says() -> None:
    for name in ("set_cell", "set_cell_ack", "elec_samples", "stop_event", "timesync_ack"):
        f = example(name)
        assert zlib.crc32(f[2:12]) & 0xFF == f[12]
        assert zlib.crc32(f[12:-4], zlib.crc32(f[2:12])) == int.from_bytes(f[-4:], "little")
        assert len(f) == 8 + int.from_bytes(f[2:4], "little")


def test_worked_examples_decode() -> None:
    dec = Decoder(reference_hello())
    # the host's command and the board's frames are two directions: decode them apart
    cmd = Decoder().feed(example("set_cell"))
    out = cmd + dec.feed(example("set_cell_ack") + example("elec_samples") + example("stop_event"))
    assert isinstance(out[0], Command) and out[0].name == "set_cell"
    assert isinstance(out[1], Ack) and out[1].cmd_seq == 7
    assert isinstance(out[2], SampleBlock) and out[2].records["current"].tolist() == [
        -52000,
        -52001,
    ]
    assert isinstance(out[3], Event) and out[3].cause_name == "watchdog"
    assert dec.bad_frames == 0


def test_every_code_is_documented() -> None:
    for cid, (name, fmt, _names) in defs.COMMANDS.items():
        size = defs.COMMAND_HEADER_SIZE + struct.calcsize("<" + fmt)
        assert re.search(rf"\| 0x{cid:02X} \| {name} \| {size} \|", SPEC), name
    for table in (defs.NACK_NAMES, defs.EVENT_NAMES, defs.CAUSE_NAMES, defs.STATE_NAMES):
        for code, name in table.items():
            assert re.search(rf"{code}\D.*`{name}`", SPEC), name
    for mtype, name in defs.MESSAGE_NAMES.items():
        assert f"| 0x{mtype:02X} | `{name}`" in SPEC
    for const in ("MAX_PAYLOAD", "DEFAULT_SAMPLE_PAYLOAD", "HEADER_SIZE", "FRAME_OVERHEAD"):
        assert f"`{const}`" in SPEC
    assert "`<IIIIIBBf`" in SPEC and defs.STATUS_FMT == "<IIIIIBBf"
    assert "`<IBBHf`" in SPEC and defs.EVENT_FMT == "<IBBHf"
    for fmt in (defs.LOAD_RECORD_FMT, defs.ELEC_RECORD_FMT, defs.TEMP_RECORD_FMT):
        assert f"`{fmt}`" in SPEC
