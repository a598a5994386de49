"""Flow control between the emulated board and its hosts: a host that reads slowly makes the
board wait instead of losing data; the TCP bridge sends each byte once; with no host the
board's output is discarded and counted; a host that leaves hands nothing stale to the next.

No test here depends on wall-clock durations: each waits for a condition, with a generous
timeout, so the suite passes on a machine whose cores are busy with other work.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import serial

from host_sdk.client import Block, Rig
from host_sdk.emulator import start_emulator, start_emulator_from_url
from host_sdk.emulator.cli import status_line
from host_sdk.emulator.proxy import BACKLOG_LIMIT
from host_sdk.wire.decoder import Decoder
from host_sdk.wire.encoder import encode_command
from host_sdk.wire.messages import Ack, Hello, SampleBlock
from protocol import defs
from tests.emulator.test_emulator import _read_until, _start_streaming

pytestmark = pytest.mark.timeout(300)

MAX_FRAME = defs.FRAME_OVERHEAD + defs.MAX_PAYLOAD
FULL = BACKLOG_LIMIT - MAX_FRAME  # the proxy holds at least this once the board must wait
RATES = {"load": 10.0, "fbg": 100.0, "elec": 2000.0, "temp": 10.0}


def _wait(pred: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def _sent(rig: Rig, led: Any) -> dict[str, int]:
    """Samples per stream name in every SAMPLES frame the board sent (the ledger's count)."""
    return {rig.stream_name(sid): n for sid, n in led.sent_samples().items() if n}


def _heartbeat_until(ser: serial.Serial, pred: Callable[[], bool], what: str) -> None:
    """A host that holds the port open, writes its heartbeats, and reads nothing."""
    deadline = time.monotonic() + 120.0
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        ser.write(encode_command("heartbeat", 0xFFFE))
        time.sleep(0.1)


def test_a_host_that_stops_reading_loses_nothing() -> None:
    """The SDK's reader stops (a callback that blocks); the pty and the proxy fill up and
    the board waits. When the host reads again, every sample the board sent arrives."""
    with start_emulator("nak50_pulsed", speed=20.0, seed=5) as emu:
        led = emu.ledger
        got: dict[str, int] = {}
        reading = threading.Event()
        reading.set()

        def on_block(b: Block) -> None:
            got[b.stream] = got.get(b.stream, 0) + len(b)
            reading.wait(240)  # a host busy elsewhere: its reader thread stops here

        with Rig.open(emu.port, heartbeat_s=0.2) as rig:
            rig.on_block(on_block)
            for s, r in RATES.items():
                rig.configure_stream(s, rate_hz=r)
            rig.set_streaming(True)
            _wait(lambda: sum(got.values()) > 0, "a first block")
            reading.clear()
            _wait(lambda: emu.held_bytes >= FULL, "the proxy to hold a full backlog")
            # the board must wait now: the proxy takes no more than its bound
            assert emu.held_bytes <= BACKLOG_LIMIT
            assert led.lost_samples() == {}
            reading.set()
            rig.set_streaming(False)
            assert emu.held_bytes <= BACKLOG_LIMIT

            # the board flushes its last partial frames as streaming stops, after the ACK:
            # wait until the reader has handed on everything the board sent
            _wait(lambda: got == _sent(rig, led), "every sample the board sent")
            assert led.lost_samples() == {}
            assert not any(rig.lost_samples.values()), rig.gaps  # not on the link, not on board
        assert led.bytes_flushed == 0


def test_a_stall_holds_bytes_and_loses_none() -> None:
    with start_emulator("nak50_pulsed", speed=20.0, seed=9) as emu:
        led = emu.ledger
        got: dict[str, int] = {}

        def on_block(b: Block) -> None:
            got[b.stream] = got.get(b.stream, 0) + len(b)

        with Rig.open(emu.port, heartbeat_s=0.2) as rig:
            rig.on_block(on_block)
            for s, r in RATES.items():
                rig.configure_stream(s, rate_hz=r)
            rig.set_streaming(True)
            _wait(lambda: sum(got.values()) > 0, "a first block")
            emu.inject(stall=600.0)  # ended below, once the board has had to wait
            _wait(lambda: emu.held_bytes >= FULL, "the stall to fill the backlog")
            assert emu.held_bytes <= BACKLOG_LIMIT
            emu.clear_faults()
            rig.set_streaming(False)

            # the last frames (the stall's backlog, the flush at streaming off) can still be
            # on their way to the SDK when the ACK of set_streaming is here
            _wait(lambda: got == _sent(rig, led), "every sample the board sent to reach the SDK")
            assert got == _sent(rig, led)
            assert led.lost_samples() == {} and not any(rig.lost_samples.values())


def test_tcp_bridge_sends_each_byte_once_while_nobody_reads_the_pty() -> None:
    with start_emulator("nak50_pulsed", speed=20.0, seed=6, tcp_port=0) as emu:
        led = emu.ledger
        assert emu.tcp_url is not None
        ser = serial.serial_for_url(emu.tcp_url, timeout=0.05)
        _wait(lambda: emu.hosts == ["tcp"], "the TCP host to be seen")
        counted = _CountingPort(ser)
        dec = Decoder()
        _start_streaming(ser, {defs.STREAM_ELEC: 1000.0})
        msgs = _read_until(counted, dec, lambda m: _n_records(m, 2) >= 20_000, 240.0)
        ser.write(encode_command("set_streaming", 77, on=0))
        _read_until(
            counted,
            dec,
            lambda m: any(isinstance(x, Ack) and x.cmd_seq == 77 for x in m),
            60.0,
            msgs,
        )
        got = {s: _n_records(msgs, s) for s in range(defs.N_STREAMS)}
        assert {s: n for s, n in got.items() if n} == {
            s: n for s, n in led.sent_samples().items() if n
        }
        # every byte at most once (before, unread pty data was sent again and again)
        assert counted.received <= led.bytes_out - led.bytes_discarded
        assert dec.bad_frames == 0 and not any(dec.lost_samples.values())
        ser.close()


def _n_records(msgs: list[Any], stream: int) -> int:
    return sum(len(x.records) for x in msgs if isinstance(x, SampleBlock) and x.stream == stream)


class _CountingPort:
    """A port that counts the bytes read through it."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self.received = 0

    def read(self, size: int) -> bytes:
        data: bytes = self.port.read(size)
        self.received += len(data)
        return data

    def write(self, data: bytes) -> int | None:
        n: int | None = self.port.write(data)
        return n


def test_with_no_host_the_board_output_is_discarded_and_counted() -> None:
    with start_emulator("nak50_pulsed", speed=5.0, seed=8) as emu:
        led = emu.ledger
        _wait(lambda: led.frames_lost >= 2, "the HELLO and the boot event, sent to nobody")
        assert emu.hosts == [] and led.bytes_delivered == 0
        assert led.bytes_discarded > 0 and list(led.unplugged)[0][0] == 0
        ser = serial.Serial(emu.port, timeout=0.05)
        _wait(lambda: emu.hosts == ["pty"], "the host to be seen")
        ser.close()
        _wait(lambda: emu.hosts == [], "the host to be gone")


def test_a_host_that_leaves_hands_nothing_stale_to_the_next() -> None:
    """A host stops reading, then closes the port: what it left unread is drained and
    counted lost; the next host gets only what the board sent after that."""
    with start_emulator("nak50_pulsed", speed=20.0, seed=7) as emu:
        led = emu.ledger
        ser = serial.Serial(emu.port, timeout=0.05)
        dec = Decoder()
        _start_streaming(ser, {defs.STREAM_ELEC: 2000.0})
        msgs = _read_until(ser, dec, lambda m: any(isinstance(x, SampleBlock) for x in m))
        hello = next(x for x in msgs if isinstance(x, Hello))
        _heartbeat_until(ser, lambda: emu.held_bytes >= FULL, "a full backlog")
        lost_before = led.frames_lost
        ser.close()
        _wait(lambda: emu.hosts == [], "the host to be gone")
        assert led.bytes_flushed >= FULL
        assert led.frames_lost > lost_before and led.lost_samples().get(defs.STREAM_ELEC)
        newest = max(
            f.first_index + f.n_records
            for f in list(led.frames)
            if f.msg_type == defs.MSG_SAMPLES and f.stream == defs.STREAM_ELEC
        )
        ser = serial.Serial(emu.port, timeout=0.05)
        dec = Decoder()
        dec.set_hello(hello)  # so that a stale frame would decode, and be caught below
        msgs = _read_until(
            ser, dec, lambda m: sum(isinstance(x, SampleBlock) and x.stream == 2 for x in m) >= 3
        )
        first = next(x for x in msgs if isinstance(x, SampleBlock) and x.stream == 2)
        assert first.first_index >= newest
        ser.close()


def test_achieved_speed_is_reported_at_max_speed() -> None:
    emu = start_emulator_from_url("emu://nak50_pulsed?speed=max&cpu=rp2040&seed=1")
    try:
        assert emu.speed == math.inf and emu.cpu == "rp2040"
        with Rig.open(emu.port, heartbeat_s=0.2) as rig:  # a host that keeps the board going
            rig.configure_stream("elec", rate_hz=100.0)
            rig.set_streaming(True)
            _wait(lambda: emu.device_time_s() > 5.0 and emu.achieved_speed() > 0, "speed")
            assert emu.achieved_speed(since_start=True) > 0
            line = status_line(emu)
            assert "requested max" in line and "host: pty" in line and "device time" in line
            rig.set_streaming(False)
    finally:
        emu.stop()
