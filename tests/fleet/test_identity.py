"""Board identity: `stressrig ports` shows unique ids, `uid:` finds a board whatever its port
name (after a replug onto another name too), a missing board is an error listing those
present, and a port another program holds is never touched."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from host_sdk import cli
from host_sdk.client import Rig
from host_sdk.fleet.identity import scan_boards
from host_sdk.transport import PortNotFound


def test_ports_shows_each_boards_unique_id(emulated, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = emulated(seed=11), emulated(seed=12)
    assert cli.main(["ports", "--json"]) == 0
    seen = {s["device"]: s for s in json.loads(capsys.readouterr().out)}
    ids = {seen[a.port]["unique_id"], seen[b.port]["unique_id"]}
    assert len(ids) == 2 and all(len(u) == 12 for u in ids)
    assert cli.main(["ports"]) == 0
    text = capsys.readouterr().out
    assert "running emulated boards:" in text and "uid:" in text
    for u in ids:
        assert f"uid {u}" in text


def test_uid_url_opens_that_board_and_never_another(emulated) -> None:
    a, b = emulated(seed=21), emulated(seed=22)
    by_dev = {s.device: s.unique_id for s in scan_boards()}
    uid_b = by_dev[b.port]
    with Rig.open(f"uid:{uid_b.upper()}") as rig:
        assert rig.unique_id == uid_b and rig.link.device == b.port
        # the port is held: a scan leaves it alone and names the holder, with the uid it
        # had when last seen
        held = {s.device: s for s in scan_boards()}[b.port]
        assert held.busy and f"pid {os.getpid()}" in held.busy
        assert held.unique_id == uid_b and held.cached
    with pytest.raises(PortNotFound) as e:
        Rig.open("uid:e711deadbeef")
    msg = str(e.value)
    assert "no board with unique id e711deadbeef" in msg
    assert f"uid:{by_dev[a.port]}" in msg and f"uid:{uid_b}" in msg


def test_uid_finds_the_board_again_after_a_replug_onto_another_name(
    emulated, _own_boards: Path
) -> None:
    # the board's pty appears as boards/usbA/ttyEMU0, as a udev name would
    emu = emulated(seed=31, hidden=True)
    usb_a = _own_boards / "usbA"
    usb_a.mkdir()
    os.symlink(emu.port, usb_a / "ttyEMU0")
    uid = {s.device: s.unique_id for s in scan_boards()}[str(usb_a / "ttyEMU0")]
    with Rig.open(f"uid:{uid}", reconnect_timeout_s=60.0) as rig:
        rig.set_streaming(True)
        assert rig.link.device == str(usb_a / "ttyEMU0")
        before = rig.reconnects
        emu.unplug(1.0)
        usb_a.rename(_own_boards / "usbB")  # replugged: another name
        deadline = time.monotonic() + 60
        while rig.reconnects == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rig.reconnects == before + 1
        assert rig.link.device == str(_own_boards / "usbB" / "ttyEMU0")
        assert rig.unique_id == uid
        n0 = sum(rig.last_index.values())
        blocks = rig.blocks(timeout_s=30.0)
        assert next(blocks) is not None  # samples flow again
        assert sum(rig.last_index.values()) >= n0
