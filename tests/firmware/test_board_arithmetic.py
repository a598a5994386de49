"""The board's arithmetic modelled in CPython (REAL_BOARDS.md): float32 (numpy) and 32-bit
ports' 31-bit small ints. The 32-bit VM of the other firmware tests has double floats, so
float32 effects are shown here.

- Staircase step count (defect 8): the firmware counts the levels in exact integer
  arithmetic on the float32 values the command carried, so a float32 board and a float64
  host agree (-0.1 .. 0.1 by 0.001: 201 levels).
- Durations (defect 8): integer microseconds on the wire (u64), held on the board as
  (chunks of 2**28 us, remainder), every part a small int; 3600.5 s and 86 400.123 s exact.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from host_sdk.wire import layouts
from protocol import _cpython

SMALL_INT_MAX = 2**30 - 1  # 31-bit small ints on the rp2 and ESP32 ports
F32 = np.float32


@pytest.fixture(scope="module")
def fw():
    """firmware.wave_plan and firmware.waveform on CPython (`micropython.const` stubbed, the
    viper kernels absent: the pure-Python fallbacks, as on a port without the emitter)."""
    stub = ModuleType("micropython")
    stub.const = _cpython.micropython.const  # type: ignore[attr-defined]
    names = ("micropython", "firmware._viper")
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules["micropython"] = stub
    sys.modules["firmware._viper"] = None  # type: ignore[assignment]  # -> ImportError
    try:
        from firmware import wave_plan, waveform

        yield wave_plan, waveform
    finally:
        for n, m in saved.items():
            if m is None:
                del sys.modules[n]
            else:
                sys.modules[n] = m


def _exact_steps(start: float, step: float, stop: float) -> int:
    """floor(|stop - start| / |step| + 1/1024) + 1 on the exact float32 values."""
    a, s, b = (Fraction(float(F32(x))) for x in (start, step, stop))
    return int(abs(b - a) / abs(s) + Fraction(1, 1024)) + 1


def test_staircase_count_float32_board_and_float64_host_agree(fw) -> None:
    wave_plan, _ = fw
    # the old formula, int((stop - start) / step + 1e-6) + 1, on the float32 values the
    # command carries, depends on the float width of the VM
    a, s, b = F32(-0.1), F32(0.001), F32(0.1)
    old32 = int((b - a) / s + F32(1e-6)) + 1  # a board
    old64 = int((float(b) - float(a)) / float(s) + 1e-6) + 1  # the unix port
    assert (old32, old64) == (201, 200)
    # the firmware's count: the same for the float32 values and the float64 ones
    assert wave_plan.staircase_steps(-0.1, 0.001, 0.1) == 201
    assert wave_plan.staircase_steps(F32(-0.1), F32(0.001), F32(0.1)) == 201
    assert _exact_steps(-0.1, 0.001, 0.1) == 201
    # exact cases stay exact
    assert wave_plan.staircase_steps(0.0, 0.25, 1.0) == 5
    assert wave_plan.staircase_steps(1.0, -0.25, 0.0) == 5
    assert wave_plan.staircase_steps(0.5, 0.5, 0.5) == 1


f32s = st.floats(-0.25, 0.25, width=32, allow_subnormal=False)


@given(start=f32s, step=f32s.filter(lambda s: abs(s) > 1e-5), stop=f32s)
def test_staircase_count_is_exact_on_float32_values(fw, start, step, stop) -> None:
    wave_plan, _ = fw
    want = _exact_steps(start, step, stop)
    assert wave_plan.staircase_steps(start, step, stop) == want
    assert wave_plan.staircase_steps(F32(start), F32(step), F32(stop)) == want


@pytest.mark.parametrize(
    ("seconds", "us", "float32_exact"),
    [(3600.5, 3_600_500_000, False), (86400.123, 86_400_123_000, False), (0.001, 1000, True)],
)
def test_durations_are_exact_integer_us(fw, seconds, us, float32_exact) -> None:
    commands, waveform = fw
    # what a float32 of seconds times 1e6 gave on the board (protocol version 1): time lost
    # above 2**24 us
    old = int(round(float(F32(seconds) * F32(1e6))))
    assert (old == us) is float32_exact
    # now: the SDK sends integer us, the board splits them into small ints, exactly
    assert layouts.seconds_to_us(seconds) == us
    hi, lo = waveform.split_us(us)
    assert 0 <= hi <= SMALL_INT_MAX and 0 <= lo < 2**28
    assert waveform.pair_us((hi, lo)) == us
    # a board limit in seconds (float32 there) -> us: whole seconds in integers
    assert commands.s_to_us(F32(seconds)) == layouts.seconds_to_us(float(F32(seconds)))
    assert commands.s_to_us(F32(1e6)) == 10**12


class _Ticks30:
    """time.ticks_* of a board: wrap at 2**30, ticks_diff in [-2**29, 2**29)."""

    def __init__(self, t: int) -> None:
        self.t = t

    def ticks_add(self, a: int, d: int) -> int:
        return (a + d) & SMALL_INT_MAX

    def ticks_diff(self, a: int, b: int) -> int:
        return ((a - b + 2**29) & SMALL_INT_MAX) - 2**29


@pytest.mark.parametrize("us", [3_600_500_000, 86_400_123_000])
def test_long_deadline_expires_on_the_exact_us(fw, us) -> None:
    """A Deadline steps through 2**28-us chunks with a clock that wraps every 2**30 us."""
    _, waveform = fw
    clock = _Ticks30(2**30 - 12345)
    d = waveform.Deadline()
    t0 = clock.t
    d.start(clock, t0, waveform.split_us(us))
    elapsed = 0
    stride = 2**27 + 17  # the loop looks at least this often (it sleeps <= 1 s)
    while True:
        nxt = d.next_tick(clock)
        wait = clock.ticks_diff(nxt, clock.t)
        step = min(stride, max(wait, 1))
        clock.t = clock.ticks_add(clock.t, step)
        elapsed += step
        if d.due(clock, clock.t):
            break
        assert elapsed <= us
    assert elapsed == us
