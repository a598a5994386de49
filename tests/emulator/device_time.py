"""Waiting on an emulated board's device time from a test."""

from __future__ import annotations

import time

from host_sdk.client import Rig


def run_until(rig: Rig, t_dev_s: float, stall_s: float = 120.0) -> None:
    """Until the host sees device time t_dev_s. No wall-clock limit (a busy machine only
    slows the board down): only a device clock that stands still for `stall_s` wall
    seconds fails."""
    last, moved = rig.device_time_s, time.monotonic()
    while rig.device_time_s < t_dev_s:
        time.sleep(0.02)
        if rig.device_time_s != last:
            last, moved = rig.device_time_s, time.monotonic()
        assert time.monotonic() - moved < stall_s, "device time stopped"
