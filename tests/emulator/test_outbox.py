"""The outbox: one buffer, one position per host port; each byte delivered once."""

from __future__ import annotations

from host_sdk.emulator.outbox import Outbox


def test_each_port_reads_at_its_own_pace_and_bytes_count_once() -> None:
    box = Outbox()
    box.push(b"lost", 0, 4)  # no port: nothing is kept
    assert box.end == 0
    box.add("pty")
    box.add("tcp")
    box.push(b"abcdef", 4, 10)
    assert box.pending("tcp", 4) == b"abcd"
    box.advance("tcp", 6)  # the fast port takes everything
    assert box.pending_bytes("tcp") == 0 and box.backlog() == 6  # held for the slow one
    assert box.delivered == 6
    box.advance("pty", 2)
    assert box.pending("pty") == b"cdef" and box.delivered == 6  # not counted twice
    box.push(b"gh", 10, 12)
    assert box.pending("tcp") == b"gh" and box.pending("pty") == b"cdefgh"
    box.advance("pty", 6)
    assert box.delivered == 8 and box.backlog() == 2  # tcp has not taken gh yet


def test_a_port_that_leaves_says_what_it_never_took() -> None:
    box = Outbox()
    box.add("pty")
    box.push(b"0123456789", 100, 110)
    box.advance("pty", 4)
    box.add("late")  # a port that joins gets what comes from now on
    box.push(b"xy", 110, 112)
    assert box.pending("late") == b"xy"
    pos, pending = box.remove("pty")
    assert (pos, pending) == (4, 8)
    assert box.backlog() == 2
    pos, pending = box.remove("late")
    assert (pos, pending) == (10, 2) and not box.has_ports() and box.backlog() == 0


def test_output_offsets_map_back_to_board_offsets() -> None:
    box = Outbox()
    box.add("pty")
    box.push(b"abcd", 50, 54)
    box.push(b"efghij", 60, 66)  # board bytes 54..60 went to nobody (no host) in between
    assert box.board_offset(0, default=0) == 50
    assert box.board_offset(2, default=0) == 52
    assert box.board_offset(5, default=0) == 61
    assert box.board_offset(10, default=0) == 66  # the end
