"""The rp2040 cost model: a board asked for more than its CPU can do misses sample slots, and
the firmware flags and counts every one, as a Pico would. The ideal board misses none."""

from __future__ import annotations

import time
from typing import Any

import pytest

from host_sdk.client import CommandRefused, Rig
from host_sdk.emulator import start_emulator

DEVICE_S = 5.0


def _stream(
    cpu: str, elec_hz: float, overrides: dict[str, Any] | None = None
) -> tuple[Rig, dict[str, int], int]:
    with start_emulator("nak50_pulsed", speed="max", cpu=cpu, seed=4, overrides=overrides) as emu:
        with Rig.open(emu.port) as rig:
            rig.configure_stream("elec", rate_hz=elec_hz)
            t0 = rig.status().uptime_ms / 1000.0
            rig.set_streaming(True)
            deadline = time.monotonic() + 300
            while rig.device_time_s < t0 + DEVICE_S:
                assert time.monotonic() < deadline, "device time stopped"
                time.sleep(0.05)
            rig.set_streaming(False)
            # STATUS can count drops whose frame is still to come: the 0-record frame that
            # carries a stream's last drops, when the link refused it at the stop, leaves
            # after the next STATUS. Compare once the board's frames have told them all
            # (a bounded number of round trips, not a time)
            dec = rig.decoder
            for _ in range(50):
                status = rig.status()
                if dec.board_dropped_told() == status.samples_dropped:
                    break
            on_board = sum(g.count for g in rig.gaps if g.kind == "lost_on_board")
            link = sum(g.count for g in rig.gaps if g.kind == "lost")
            lost = {
                "on_board": on_board,
                "link": link,
                # the Rig joined the booted board: drops before a stream's first frame
                # (its first board_dropped) are in no gap
                "before": sum(dec.board_dropped_before.values()),
                "told": dec.board_dropped_told(),
            }
            return rig, lost, status.samples_dropped


@pytest.mark.timeout(600)
def test_an_overloaded_rp2040_misses_slots_and_counts_every_one() -> None:
    # an elec record costs about 1.2 ms of RP2040 time: 2 kHz is beyond its CPU, so the
    # board refuses it (its CPU budget, with the percentage it would need) ...
    with start_emulator("nak50_pulsed", speed="max", cpu="rp2040", seed=4) as emu:
        with Rig.open(emu.port) as rig:
            with pytest.raises(CommandRefused, match=r"would need \d+ % of the CPU"):
                rig.configure_stream("elec", rate_hz=2000.0)
    # ... and with the budget lifted, it misses slots and counts every one
    _rig, lost, dropped = _stream("rp2040", 2000.0, {"limits": {"max_cpu_fraction": 0}})
    assert lost["link"] == 0
    assert dropped > 0.2 * 2000 * DEVICE_S
    # every missed slot reaches the host as a board loss, exactly: each SAMPLES frame carries
    # its stream's cumulative drop count, and a stream that dropped after its last frame
    # sends a frame of 0 records with the count when streaming stops. The board's frames
    # tell STATUS's count exactly; the gaps hold all of it but the drops before the first
    # frame of the stream (the Rig joined a running board: its baseline; 1 or 2 slots
    # missed as streaming starts, which were the 1 to 4 "unseen" of earlier runs)
    assert lost["told"] == dropped
    assert lost["on_board"] + lost["before"] == dropped


@pytest.mark.timeout(600)
def test_the_ideal_board_takes_every_slot_at_the_same_rate() -> None:
    _rig, lost, dropped = _stream("ideal", 2000.0)
    assert lost == {"on_board": 0, "link": 0, "before": 0, "told": 0}
    assert dropped == 0
