"""Device client against the loopback FakeBoard: handshake, ACK/NACK, retry, timeout,
streaming, time unwrapping, lost samples, reconnect, reboot, safe exit, several rigs."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import numpy as np
import pytest

from host_sdk import wire
from host_sdk.client import (
    BoardNotAnswering,
    CommandRefused,
    CommandTimeout,
    IncompatibleBoard,
    Rig,
    TimeUnwrapper,
    open_rigs,
)
from host_sdk.transport import Link, PortNotFound
from protocol import defs
from tests.sdk.fakeboard import FakeBoard


def _rig(board: FakeBoard, **kw: object) -> Rig:
    kw.setdefault("heartbeat_s", None)
    kw.setdefault("command_timeout_s", 0.2)
    return Rig(Link(opener=board.port), **kw).connect()  # type: ignore[arg-type]


@pytest.fixture
def board() -> FakeBoard:
    return FakeBoard()


@pytest.fixture
def rig(board: FakeBoard) -> Iterator[Rig]:
    r = _rig(board)
    yield r
    r.close()


def _wait(cond, timeout: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_handshake_reads_hello(rig: Rig, board: FakeBoard) -> None:
    assert rig.unique_id == "fake0001"
    assert rig.board_id == "fake"
    assert set(rig.streams) == {"load", "fbg", "elec", "temp"}
    assert rig.stream_id("elec") == defs.STREAM_ELEC


def test_ack_carries_applied_values(rig: Rig) -> None:
    ack = rig.configure_stream("elec", rate_hz=250.0)
    assert isinstance(ack, wire.Ack)
    assert ack.applied["rate_hz"] == pytest.approx(250.0)


def test_nack_raises_command_refused_with_reason(rig: Rig) -> None:
    with pytest.raises(CommandRefused) as e:
        rig.constant_current(current_a=50.0)
    assert e.value.reason == defs.NACK_OUT_OF_RANGE
    assert e.value.reason_name == "out_of_range"
    assert "50 A" in e.value.text
    assert "constant" in str(e.value)


def test_lost_ack_is_retried_with_same_seq_and_applied_once(rig: Rig, board: FakeBoard) -> None:
    board.drop_replies = 1
    rig.set_cell(3.85e-5)
    sent = [c for c in board.received if c.name == "set_cell"]
    applied = [c for c in board.applied if c.name == "set_cell"]
    assert len(sent) == 2 and sent[0].cmd_seq == sent[1].cmd_seq
    assert len(applied) == 1


def test_ignored_command_is_retried(rig: Rig, board: FakeBoard) -> None:
    board.ignore = 2
    rig.heartbeat()
    assert len([c for c in board.received if c.name == "heartbeat"]) == 3


def test_command_timeout_is_bounded(rig: Rig, board: FakeBoard) -> None:
    board.silent = True
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout, match="set_watchdog"):
        rig.set_watchdog(2.0)
    assert time.monotonic() - t0 < (rig.retries + 1) * 0.2 + 1.0
    board.silent = False


def test_board_not_answering_says_what_was_tried() -> None:
    b = FakeBoard()
    b.silent = True
    t0 = time.monotonic()
    with pytest.raises(BoardNotAnswering) as e:
        Rig(Link(opener=b.port), connect_timeout_s=0.6, heartbeat_s=None).connect()
    assert time.monotonic() - t0 < 2.0
    assert "GET_INFO" in str(e.value) and "stressrig ports" in str(e.value)


def test_incompatible_firmware_names_both_versions() -> None:
    b = FakeBoard(wire.reference_hello(firmware_version=(7, 2, 0), unique_id="x"))
    with pytest.raises(IncompatibleBoard) as e:
        Rig(Link(opener=b.port), heartbeat_s=None).connect()
    msg = str(e.value)
    assert "7.2.0" in msg and "0.1.0" in msg and "2.0.0" in msg


def test_incompatible_protocol_names_both_versions() -> None:
    b = FakeBoard(wire.reference_hello(protocol_version=9, unique_id="x"))
    with pytest.raises(IncompatibleBoard) as e:
        Rig(Link(opener=b.port), heartbeat_s=None).connect()
    assert "protocol version 9" in str(e.value)
    assert f"protocol version {defs.PROTOCOL_VERSION}" in str(e.value)


def test_unknown_port_lists_existing_ports() -> None:
    with pytest.raises(PortNotFound, match="Ports on this machine"):
        Rig.open("/dev/does-not-exist-stressrig", connect_timeout_s=0.5)


def test_streaming_blocks_are_contiguous_and_timed(rig: Rig) -> None:
    rig.configure_stream("elec", rate_hz=2000)
    rig.configure_stream("load", rate_hz=80)
    blocks = rig.blocks(timeout_s=1.0)  # subscribed from here on
    rig.set_streaming(True)
    got: dict[str, list[int]] = {"elec": [], "load": []}
    times: list[np.ndarray] = []
    t_end = time.monotonic() + 0.6
    for block in blocks:
        got[block.stream].append(block.first_index)
        got[block.stream].append(block.first_index + len(block))
        if block.stream == "elec":
            times.append(block.t_s)
        if time.monotonic() > t_end:
            break
    idx = got["elec"]
    assert idx[0] == 0 and all(idx[k] == idx[k + 1] for k in range(1, len(idx) - 1, 2))
    t = np.concatenate(times)
    assert np.all(np.diff(t) > 0)
    assert np.allclose(np.diff(t), 1 / 2000, atol=2e-6)
    assert rig.lost_samples["elec"] == 0


def test_callbacks_receive_blocks(rig: Rig) -> None:
    seen: list[int] = []
    unsub = rig.on_block(lambda b: seen.append(len(b)))
    rig.configure_stream("elec", rate_hz=1000)
    rig.set_streaming(True)
    assert _wait(lambda: sum(seen) > 100)
    unsub()


def test_wait_data_returns_once_every_named_stream_reached_the_time(rig: Rig) -> None:
    rig.configure_stream("elec", rate_hz=1000)
    rig.configure_stream("load", rate_hz=20)
    rig.set_streaming(True)
    assert rig.wait_data(0.0, ["elec", "load"])
    t = rig.device_time_s + 0.3
    assert rig.wait_data(t, ["elec", "load"])
    ids = (rig.stream_id("elec"), rig.stream_id("load"))
    assert min(rig.last_t_s[i] for i in ids) >= t


def test_wait_data_is_false_when_the_streams_fall_silent(rig: Rig) -> None:
    rig.configure_stream("elec", rate_hz=1000)
    rig.set_streaming(True)
    assert rig.wait_data(0.0, ["elec"])
    rig.set_streaming(False)
    assert not rig.wait_data(rig.device_time_s + 100.0, stall_s=0.5)  # every stream that sent
    with pytest.raises(ValueError, match="unknown stream"):
        rig.wait_data(0.0, ["nope"])


def test_time_unwraps_past_2_32_us() -> None:
    b = FakeBoard(t_offset_us=(1 << 32) - 200_000)  # wraps 0.2 s after boot
    r = _rig(b)
    try:
        r.configure_stream("elec", rate_hz=1000)
        r.set_streaming(True)
        ts = []
        for block in r.blocks(timeout_s=1.0):
            ts.append(block.t_s)
            if block.t_s[-1] > ((1 << 32) + 200_000) * 1e-6:
                break
        t = np.concatenate(ts)
        assert np.all(np.diff(t) > 0)
        assert t[-1] > (1 << 32) * 1e-6
    finally:
        r.close()


def test_unwrapper_handles_wrap_and_small_reordering() -> None:
    u = TimeUnwrapper()
    a = u.unwrap(np.array([(1 << 32) - 10, (1 << 32) - 5]))
    b = u.unwrap(np.array([3, 8]))
    c = u.unwrap(np.array([(1 << 32) - 1]))  # another stream, slightly behind
    assert b[0] - a[1] == pytest.approx(8e-6)
    assert c[0] == pytest.approx(a[1] + 4e-6)


def test_lost_sample_frames_are_counted(rig: Rig, board: FakeBoard) -> None:
    rig.configure_stream("elec", rate_hz=5000)
    rig.set_streaming(True)
    time.sleep(0.1)
    board.drop_sample_frames = 3
    assert _wait(lambda: board.drop_sample_frames == 0 and rig.lost_samples["elec"] > 0)
    time.sleep(0.1)
    assert rig.lost_samples["elec"] == board.dropped_samples
    assert any(g.kind == "lost" for g in rig.gaps)


def test_reconnects_after_port_disappears(rig: Rig, board: FakeBoard) -> None:
    rig.configure_stream("elec", rate_hz=1000)
    rig.set_streaming(True)
    time.sleep(0.1)
    board.unplug()
    time.sleep(0.5)
    board.replug()
    assert _wait(lambda: rig.reconnects == 1)
    assert any(g.kind == "link_down" for g in rig.gaps)
    first = None
    for block in rig.blocks(timeout_s=2.0):
        first = block
        break
    assert first is not None and first.stream == "elec"
    rig.heartbeat()  # commands work again


def test_board_reboot_marks_gap_and_reapplies_configuration(rig: Rig, board: FakeBoard) -> None:
    rig.set_cell(3.85e-5)
    rig.configure_stream("elec", rate_hz=1000)
    rig.set_streaming(True)
    assert _wait(lambda: rig.last_index.get(defs.STREAM_ELEC, 0) > 50)
    t_before = rig.device_time_s
    board.reboot()
    assert _wait(lambda: rig.boots == 1)
    assert any(g.kind == "board_reset" for g in rig.gaps)
    assert _wait(lambda: board.streaming and board.enabled[defs.STREAM_ELEC])
    assert _wait(lambda: rig.last_index.get(defs.STREAM_ELEC, 0) > 10)
    assert rig.device_time_s > t_before  # time keeps increasing across the reboot
    assert [c.name for c in board.applied].count("set_cell") == 2


def test_exit_always_leaves_current_off(board: FakeBoard) -> None:
    with pytest.raises(RuntimeError):
        with _rig(board) as r:
            r.constant_current(current_a=0.5)
            assert board.state == defs.STATE_RUNNING
            raise RuntimeError("user code failed")
    assert board.state == defs.STATE_IDLE and board.setpoint_a == 0.0
    names = [c.name for c in board.applied]
    assert names.index("stop") < len(names) - 1 and "get_status" in names[names.index("stop") :]


def test_rest_ends_with_waveform_end_event(rig: Rig) -> None:
    mark = rig.event_mark()
    rig.rest(0.2)
    ev = rig.wait_event(after=mark, timeout_s=2.0)
    assert ev is not None and ev.name == "waveform_end" and ev.cause_name == "completed"


def test_several_rigs_in_one_process() -> None:
    b1, b2 = FakeBoard(unique_id="cell-A"), FakeBoard(unique_id="cell-B")
    r1, r2 = _rig(b1), _rig(b2)
    try:
        rigs = open_rigs()
        assert rigs["cell-A"] is r1 and rigs["cell-B"] is r2
        r1.constant_current(current_a=0.1)
        assert b1.state == defs.STATE_RUNNING and b2.state == defs.STATE_IDLE
    finally:
        r1.close()
        r2.close()
    assert "cell-A" not in open_rigs()


def test_heartbeat_thread_feeds_board(board: FakeBoard) -> None:
    r = _rig(board, heartbeat_s=0.05)
    try:
        # the heartbeat is a timesync exchange (protocol §8): it feeds the watchdog too
        assert _wait(lambda: sum(c.name == "timesync" for c in board.received) >= 3)
    finally:
        r.close()


def test_heartbeats_are_timesync_exchanges_that_map_device_time_to_utc(board: FakeBoard) -> None:
    """The heartbeat measures the device clock against UTC continuously (protocol §8)."""
    rig = _rig(board, heartbeat_s=0.05)
    assert _wait(lambda: rig.clock_sync.exchanges >= 3, timeout=30.0)
    m = rig.clock_mapping
    assert m is not None and m.exchanges >= 3 and m.uncertainty_s >= 0
    assert any(c.name == "timesync" for c in board.received)
    # the fake board's clock started at its t0: device time 0 was then, in UTC
    t0_utc = time.time() - (time.monotonic() - board.t0)
    assert abs(m.utc_at_zero_s - t0_utc) < 0.5 + m.uncertainty_s
    m2 = rig.timesync()  # one more exchange on demand
    assert m2 is not None and m2.exchanges > m.exchanges
    rig.close()


def test_a_new_command_seq_starts_at_random() -> None:
    seqs = {Rig(Link(opener=FakeBoard().port))._cmd_seq for _ in range(8)}  # type: ignore[arg-type]
    assert len(seqs) > 1


class _V1Board(FakeBoard):
    """A board with protocol version 1 firmware: the same frames in the v1 layout."""

    def _emit(self, frame: bytes) -> None:
        if frame:
            body = bytes([1]) + frame[5:10] + frame[defs.HEADER_SIZE : -4]
            head = bytes([0xA5, 0x5A]) + len(body).to_bytes(2, "little")
            frame = head + body + zlib.crc32(head[2:] + body).to_bytes(4, "little")
        super()._emit(frame)

    def receive(self, data: bytes) -> None:  # a v1 board cannot read v2 commands: it
        with self.lock:  # answers every GET_INFO with its (v1) HELLO
            self._emit(wire.encode_hello(self.hello, seq=self._seq()))


def test_a_version_1_board_gets_an_error_naming_both_versions() -> None:
    with pytest.raises(
        IncompatibleBoard, match="protocol version 1; this SDK speaks protocol version 2"
    ):
        _rig(_V1Board(), connect_timeout_s=0.6)
