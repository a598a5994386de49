"""The self-paced parts (the HX711 converting at its own rate, the interrogator sweeping at
its own) against the board's sample grid: every conversion and every line becomes a record,
on an ideal board and under the rp2040 cost model, where each loop pass costs device time
and the board looks at a part later than its due time. Following the part's phase from a
late look (instead of from a look that found nothing) moved the grid later at every
reading there: 6 % of the HX711 conversions and 10 % of the interrogator lines were
overwritten or skipped, and nothing counted them."""

from __future__ import annotations

import numpy as np
import pytest

from host_sdk.client import Block, Rig
from tests.emulator.device_time import run_until

SPAN_S = 10.0  # device seconds compared, after 2 s of settling
RATES = {"load": 80.0, "fbg": 100.0}  # the nak50_pulsed parts' own rates


@pytest.mark.parametrize("cpu", ["ideal", "rp2040"])
def test_every_conversion_and_line_is_recorded(cpu: str) -> None:
    try:
        rig = Rig.open(f"emu://nak50_pulsed?speed=max&cpu={cpu}&seed=3")
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    try:
        blocks: list[Block] = []
        rig.on_block(blocks.append)
        rig.set_streaming(True)
        t0 = rig.device_time_s + 2.0
        run_until(rig, t0 + SPAN_S)
        assert rig.wait_data(t0 + SPAN_S, list(RATES)), "the streams fell silent"
        assert not any(rig.lost_samples.values())
        for name, hz in RATES.items():
            t = np.concatenate([b.t_s for b in blocks if b.stream == name])
            t = t[(t >= t0) & (t < t0 + SPAN_S)]
            # one record per period of the part: the count, and no gap of a whole period
            assert abs(len(t) - SPAN_S * hz) <= 1, (name, cpu, len(t))
            assert np.diff(t).max() < 1.5 / hz, (name, cpu, np.diff(t).max())
    finally:
        rig.close()


def test_no_load_gap_across_the_tick_wrap() -> None:
    """ticks_us wraps at 2**30 us (17.9 min) on the emulated board as on a Pico: a phase
    anchor kept from an old check was no valid tick there, and the load stream stopped for
    268 s at every wrap."""
    try:
        rig = Rig.open("emu://gain_solid_state?speed=max&load_sps=10&seed=2")
    except Exception as e:  # pragma: no cover - environment without MicroPython
        pytest.skip(f"emulated board cannot start here: {e}")
    try:
        blocks: list[Block] = []
        rig.on_block(blocks.append)
        rig.configure_stream("elec", rate_hz=1.0)
        rig.configure_stream("temp", rate_hz=1.0)
        rig.set_streaming(True)
        end_s = 2.5 * (1 << 30) / 1e6  # past two wraps
        run_until(rig, end_s)
        assert rig.wait_data(end_s, ["load"]), "the load stream fell silent"
        t = np.concatenate([b.t_s for b in blocks if b.stream == "load"])
        t = t[(t >= 10.0) & (t < end_s)]
        assert np.diff(t).max() < 0.15, t[np.argmax(np.diff(t))]
        assert abs(len(t) - (t[-1] - t[0]) * 10.0) <= 2
        assert not any(rig.lost_samples.values())
    finally:
        rig.close()
