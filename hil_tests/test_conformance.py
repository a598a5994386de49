"""Conformance: HELLO, every command's ACK/NACK with the values the board applied, stream
rates and timestamps, and waveform edge timing, all in device time.

Emulated board: nak50_pulsed (HX711 at 80 SPS, interrogator at 100 Hz) at speed 2: the
timing tolerances below are device time, and the emulator's wall-clock latency is
multiplied by the speed; at 2x the emulated hardware (~600 conversions/s of wall time with
every stream on) stays well inside what MicroPython sustains on a shared 2-core machine.
"""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pytest

from hil_tests._util import Collector, events_after, pulse_edge_schedule, wait_for
from hil_tests.conftest import BenchSpec
from host_sdk.client import CommandRefused, Cutoffs
from protocol import defs

BENCH = BenchSpec(scenario="nak50_pulsed", speed=2.0, seed=1)

LIMIT_NAMES = (
    "max_current_a", "compliance_v", "min_voltage_v", "max_temp_c", "max_force_n",
    "min_watchdog_ms", "max_watchdog_ms", "default_watchdog_ms", "min_area_m2", "max_area_m2",
    "max_duration_s", "min_pulse_s", "max_charge_c", "min_rate_hz", "max_rate_load_hz",
    "max_rate_fbg_hz", "max_rate_elec_hz", "max_rate_temp_hz",
)  # fmt: skip


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


# ---- HELLO ----------------------------------------------------------------------------------
def test_hello_fields(bench, rig):
    h = rig.hello
    assert h.protocol_version == defs.PROTOCOL_VERSION
    assert len(h.firmware_version) == 3 and all(v >= 0 for v in h.firmware_version)
    assert h.board_id == bench.board_name
    assert re.fullmatch(r"[0-9a-f]{4,64}", h.unique_id), h.unique_id
    names = {s.name: s for s in h.streams}
    assert set(defs.STREAM_NAMES) <= set(names)
    for s in h.streams:
        assert s.id == defs.STREAM_NAMES.index(s.name)
        # the record format is the authority: it must match the named fields exactly
        assert struct.calcsize(s.record_format) == s.dtype.itemsize
        assert s.fields[0].name == "t_us" and s.fields[0].unit == "us"
        assert s.rate_hz > 0
        for f in s.fields:
            assert math.isfinite(f.scale) and f.scale != 0 and math.isfinite(f.offset)
    # every limit the firmware validates against is announced
    missing = [n for n in LIMIT_NAMES if n not in h.limits]
    assert not missing, f"HELLO lacks limits {missing}"
    lim = h.limits
    assert lim["min_voltage_v"] < lim["compliance_v"]
    assert lim["min_watchdog_ms"] <= lim["default_watchdog_ms"] <= lim["max_watchdog_ms"]
    assert 0 < lim["min_area_m2"] < lim["max_area_m2"]
    assert lim["max_current_a"] > 0
    # GET_INFO again gives the same HELLO
    again = rig.info()
    assert again == h


# ---- commands: ACK with applied values ---------------------------------------------------------
def test_heartbeat_get_status_acked(rig):
    ack = rig.heartbeat()
    assert ack.name == "heartbeat" and dict(ack.applied) == {}
    st = rig.status()
    assert st.state_name == "idle" and st.latched_cause == 0 and st.setpoint_a == 0.0
    assert st.uptime_ms > 0 and st.frames_sent > 0
    # free heap of a board-sized heap (the emulated board reports 0 while the plant's float
    # garbage is uncollected: see boards/emulated/board.py heap_free, so only bounds here)
    assert 0 <= st.heap_free <= 512 * 1024


@pytest.mark.parametrize(
    "stream, rate",
    [("elec", 123.0), ("elec", 1000.0), ("temp", 3.0), ("load", 10.0), ("load", 80.0)],
)
def test_config_stream_applied_rate(rig, stream, rate):
    ack = rig.configure_stream(stream, rate_hz=rate)
    applied = ack.applied
    assert applied["stream"] == rig.stream_id(stream) and applied["enabled"] == 1
    # the board rounds the rate to a whole microsecond period (1e6 / period)
    assert applied["rate_hz"] == pytest.approx(rate, rel=2e-4)
    assert applied["rate_hz"] <= rig.hello.limits[f"max_rate_{stream}_hz"] * (1 + 1e-6)


def test_config_stream_disable_acked(rig):
    ack = rig.configure_stream("temp", rate_hz=1.0, enabled=False)
    assert ack.applied["enabled"] == 0
    rig.configure_stream("temp", rate_hz=1.0, enabled=True)


def test_set_streaming_acked_with_event(rig):
    m = rig.event_mark()
    assert rig.set_streaming(True).applied["on"] == 1
    assert rig.set_streaming(False).applied["on"] == 0
    wait_for(lambda: len(events_after(rig, m, defs.EV_STREAMING)) >= 2, 5, "streaming events")
    on, off = events_after(rig, m, defs.EV_STREAMING)[:2]
    assert (on.index, off.index) == (1, 0)


def test_set_cell_watchdog_window_acked(bench, rig):
    lim = rig.hello.limits
    area = bench.emu.scenario["cell"]["area_m2"] if bench.emulated else 1e-4
    assert rig.set_cell(area).applied["area_m2"] == pytest.approx(f32(area), rel=1e-7)
    wd = lim["default_watchdog_ms"] / 1000.0
    if bench.emulated:
        wd = min(lim["max_watchdog_ms"], 4000.0 * bench.speed) / 1000.0  # keep the fixture's
    assert rig.set_watchdog(wd).applied["timeout_ms"] == round(wd * 1000)
    lo, hi = lim["min_voltage_v"], lim["compliance_v"]
    applied = rig.set_voltage_window(lo, hi).applied
    assert (applied["v_min_v"], applied["v_max_v"]) == (pytest.approx(lo), pytest.approx(hi))


def test_set_watchdog_cannot_be_switched_off(bench, rig):
    """The watchdog is a safety actor: 0 (off) is refused with the allowed range, and the
    timeout in force stays what it was."""
    with pytest.raises(CommandRefused) as err:
        rig.set_watchdog(0)
    assert err.value.reason == defs.NACK_OUT_OF_RANGE
    assert "timeout_ms" in err.value.text
    low = rig.hello.limits["min_watchdog_ms"]
    assert rig.set_watchdog(low / 1000.0).applied["timeout_ms"] == round(low)
    rig.set_watchdog(min(600.0, max(5.0, 4.0 * bench.speed)))


def _lsb(rig) -> float:
    return float(rig.hello.limits.get("amps_per_lsb", 0.0))


def _assert_quantised(rig, requested: float, applied: float) -> None:
    """Applied current = an integer number of DAC steps, the nearest to the request."""
    lsb = _lsb(rig)
    if not lsb:
        pytest.skip("board does not announce amps_per_lsb")
    # f32 on the wire: allow 1e-6 relative on top of the half-step rounding
    assert abs(applied - requested) <= 0.5 * lsb * (1 + 1e-3) + 1e-6 * abs(requested)
    k = applied / lsb
    assert abs(k - round(k)) < 1e-3, f"{applied} A is not a whole number of {lsb} A steps"


def _run_and_stop(rig, start_cmd, *, expect_edges: int = 1, settle_dev_s: float, bench):
    """Start a waveform with `start_cmd()`, check start/edge events, STOP, check the end."""
    m = rig.event_mark()
    ack = start_cmd()
    # the waveform runs `settle_dev_s` of device time, however late the host's STOP is
    with bench.world_held_at(rig.device_time_s + settle_dev_s):
        wait_for(lambda: events_after(rig, m, defs.EV_WAVEFORM_START), 5, "waveform_start")
        if not bench.emulated:
            bench.sleep_device(settle_dev_s)
        n = expect_edges
        wait_for(lambda: len(events_after(rig, m, defs.EV_EDGE)) >= n, 5, "edge events")
        rig.stop()
        end = rig.wait_event((defs.EV_WAVEFORM_END,), after=m, timeout_s=5)
    assert end is not None and end.cause_name in ("host_stop", "completed")
    st = rig.status()
    assert st.state_name == "idle" and st.setpoint_a == 0.0
    return ack


def test_rest_acked_and_completes(bench, rig):
    m = rig.event_mark()
    ack = rig.rest(0.5)
    assert ack.applied["duration_s"] == pytest.approx(0.5)
    end = rig.wait_event((defs.EV_WAVEFORM_END,), after=m, timeout_s=5)
    assert end is not None and end.cause_name == "completed"
    start = events_after(rig, m, defs.EV_WAVEFORM_START)[0]
    # completes 0.5 s of device time after it started (loop latency tolerance 20 ms)
    assert end.t_s - start.t_s == pytest.approx(0.5, abs=0.02)


def test_constant_acked_with_quantised_current(bench, rig):
    req = 0.37 * rig.hello.limits["max_current_a"] + 1.234e-9
    ack = _run_and_stop(
        rig,
        lambda: rig.constant_current(current_a=req, cutoffs=Cutoffs(v_min_v=-4.0, v_max_v=4.0)),
        settle_dev_s=0.3,
        bench=bench,
    )
    assert ack.applied["unit"] == defs.UNIT_A
    _assert_quantised(rig, req, ack.applied["current"])
    assert ack.applied["v_min_v"] == pytest.approx(-4.0)
    assert ack.applied["v_max_v"] == pytest.approx(4.0)


def test_pulse_train_acked(bench, rig):
    req = -0.21 * rig.hello.limits["max_current_a"]
    ack = _run_and_stop(
        rig,
        lambda: rig.pulse_train(
            amplitude_a=req, t_on_s=0.1, t_off_s=0.1, count=50,
            cutoffs=Cutoffs(max_duration_s=100.0),
        ),
        expect_edges=3,
        settle_dev_s=0.5,
        bench=bench,
    )  # fmt: skip
    a = ack.applied
    _assert_quantised(rig, req, a["amplitude"])
    assert (a["t_on_s"], a["t_off_s"], a["count"]) == (pytest.approx(0.1), pytest.approx(0.1), 50)
    assert a["max_duration_s"] == pytest.approx(100.0)


def test_staircase_acked(bench, rig):
    imax = rig.hello.limits["max_current_a"]
    ack = _run_and_stop(
        rig,
        lambda: rig.staircase(
            start=0.1 * imax, step=0.1 * imax, stop=0.5 * imax, dwell_s=0.2, on_s=0.05
        ),
        expect_edges=3,
        settle_dev_s=0.5,
        bench=bench,
    )
    a = ack.applied
    _assert_quantised(rig, 0.1 * imax, a["start"])
    assert a["dwell_s"] == pytest.approx(0.2) and a["on_s"] == pytest.approx(0.05)


def test_gitt_acked(bench, rig):
    req = 0.5 * rig.hello.limits["max_current_a"]
    ack = _run_and_stop(
        rig,
        lambda: rig.gitt(amplitude_a=req, t_pulse_s=0.2, t_rest_s=0.3, count=3),
        expect_edges=2,
        settle_dev_s=0.3,
        bench=bench,
    )
    a = ack.applied
    _assert_quantised(rig, req, a["amplitude"])
    assert (a["t_pulse_s"], a["t_rest_s"], a["count"]) == (
        pytest.approx(0.2),
        pytest.approx(0.3),
        3,
    )


def test_current_density_acked_in_a_per_m2(bench, rig):
    area = bench.emu.scenario["cell"]["area_m2"] if bench.emulated else 1e-4
    rig.set_cell(area)
    j = 0.4 * rig.hello.limits["max_current_a"] / area
    ack = _run_and_stop(
        rig,
        lambda: rig.constant_current(current_a_m2=j),
        settle_dev_s=0.2,
        bench=bench,
    )
    assert ack.applied["unit"] == defs.UNIT_A_PER_M2
    # the applied density is the quantised current divided by the area
    _assert_quantised(rig, j * f32(area), ack.applied["current"] * f32(area))


def test_stop_and_clear_fault_acked_when_idle(rig):
    assert rig.stop().name == "stop"
    assert rig.clear_fault().name == "clear_fault"  # not latched: nothing to clear, ACK


def test_refusals_name_field_and_range(rig):
    lim = rig.hello.limits
    with pytest.raises(CommandRefused) as e:
        rig.constant_current(current_a=2 * lim["max_current_a"])
    assert e.value.reason_name == "out_of_range"
    assert "current" in e.value.text and "allowed range" in e.value.text
    with pytest.raises(CommandRefused) as e:
        rig.configure_stream("elec", rate_hz=2 * lim["max_rate_elec_hz"])
    assert e.value.reason_name == "out_of_range" and "rate_hz" in e.value.text


# ---- streams: rates and timestamps ---------------------------------------------------------
STREAM_RATES = {"elec": 100.0, "load": 80.0, "fbg": 100.0, "temp": 10.0}
BOARD_PACED_P99 = 0.5  # of a period
SELF_PACED_P99 = 0.8


def test_stream_rates_and_timestamps(bench, rig, figure):
    """Every stream at its configured rate on the one device clock, without gaps on the
    link.

    Tolerances: the mean rate within 0.5 % (the board's clock is the reference: any error
    is a scheduling slip, not a clock error); p99 of the timestamps' distance from the ideal
    grid below half a period (0.8 for the self-paced load and fbg streams, stamped when the
    loop picks the reading up), and at most 0.2 % of the samples a whole period off it (a
    slipped slot: the loop was late by more than a period, a hiccup of the host machine for
    the emulator). The HX711 and the interrogator pace themselves (chip conversion / sweep
    grid): their error is the loop's polling latency.
    """
    applied = {}
    for s, r in STREAM_RATES.items():
        applied[s] = rig.configure_stream(s, rate_hz=r).applied["rate_hz"]
    dev_s = 10.0
    with Collector(rig, STREAM_RATES) as col:
        rig.set_streaming(True)
        bench.sleep_device(dev_s)
        rig.set_streaming(False)
        bench.sleep_device(0.5)
    on_link: dict[str, int] = {}
    on_board: dict[str, int] = {}
    for g in rig.gaps:
        tally = on_board if g.kind == "lost_on_board" else on_link
        tally[g.stream] = tally.get(g.stream, 0) + g.count
    # the streaming window in device time, from the fastest stream: the host measures the
    # 10 s by its view of device time, which lags the board by up to a frame's latency, so
    # the board's window can be a little shorter than asked
    window = max(float(np.ptp(col.records(s)[1])) for s in applied)
    assert window > 0.8 * dev_s
    for s, rate in applied.items():
        rec, t, idx = col.records(s)
        assert on_link.get(s, 0) == 0, f"{s}: samples lost on a clean link"
        # a slot the board's loop was late for by more than a period is a lost sample,
        # flagged by the board and counted (a hiccup of the host machine for the emulator)
        skipped = int(np.sum(np.diff(idx) - 1))
        assert skipped == on_board.get(s, 0), f"{s}: index jumps not flagged by the board"
        assert skipped <= 0.002 * len(t), f"{s}: {skipped} sample slots missed"
        dt = np.diff(t)
        assert np.all(dt > 0), f"{s}: timestamps not increasing"
        span = t[-1] - t[0]
        # a stream on its own grid starts up to a period after the window opens and ends
        # up to a period before it closes
        assert span > window - 2.0 / rate, (
            f"{s}: {span:.3f} s of samples in a {window:.3f} s window"
        )
        mean_rate = (len(t) - 1) / span
        assert mean_rate == pytest.approx(rate, rel=5e-3), s
        # each sample against the ideal grid t0 + k / rate (least squares over the run):
        # a late sample is followed by an early one (deadlines are anchored), so the grid
        # error stays bounded; a missed slot would show as a whole period
        k = idx - idx[0]
        slope, icpt = np.polyfit(k, t, 1)
        grid_err = t - (icpt + slope * k)
        period = 1.0 / rate
        assert slope == pytest.approx(period, rel=5e-3)
        p99 = float(np.percentile(np.abs(grid_err), 99))
        # board-paced streams are stamped on their own deadline; self-paced ones (HX711,
        # interrogator) when the loop picks the reading up, up to one poll cycle late
        bound = SELF_PACED_P99 if s in ("load", "fbg") else BOARD_PACED_P99
        assert p99 < bound * period, f"{s}: p99 grid error {p99 * 1e3:.2f} ms"
        slipped = int(np.sum(np.abs(grid_err) >= period))
        assert slipped <= 0.002 * len(t), f"{s}: {slipped} samples slipped a whole period"
        figure(f"{s}_rate_hz", mean_rate, "Hz", configured=rate,
               grid_err_p99_ms=p99 * 1e3, slipped=slipped, missed=skipped)  # fmt: skip
        # the record's own t_us and the unwrapped time agree
        assert np.all((rec["t_us"].astype(np.int64) - np.round(t * 1e6).astype(np.int64))
                      % (1 << 32) == 0)  # fmt: skip
    # all streams share one clock: their time ranges overlap within one slow period
    starts = [col.records(s)[1][0] for s in applied]
    assert max(starts) - min(starts) < 1.0


# ---- waveform edges ------------------------------------------------------------------------------
def test_waveform_edge_timing(bench, rig, figure):
    """EV_EDGE device times vs the commanded schedule of a pulse train.

    Edges are anchored to the waveform start, so the error is the loop's latency in switching
    (it must not accumulate). Tolerance: 2 ms of device time p99 per unit of emulator speed
    (a 2 ms loop sleep bound + scheduling of a shared machine: the emulator's wall latency is
    multiplied by the speed), and no trend over the train.
    """
    t_on, t_off, count = 0.1, 0.15, 40
    imax = rig.hello.limits["max_current_a"]
    rig.configure_stream("elec", rate_hz=200.0)
    m = rig.event_mark()
    with Collector(rig, ["elec"]) as col:
        rig.set_streaming(True)
        rig.pulse_train(amplitude_a=0.3 * imax, t_on_s=t_on, t_off_s=t_off, count=count)
        end = rig.wait_event(
            (defs.EV_WAVEFORM_END,), after=m, timeout_s=bench.timeout_s(count * 0.25)
        )
        bench.sleep_device(0.3)
        rig.set_streaming(False)
    assert end is not None and end.cause_name == "completed"
    start = events_after(rig, m, defs.EV_WAVEFORM_START)[0]
    edges = events_after(rig, m, defs.EV_EDGE)
    assert len(edges) == 2 * count
    t_edges = np.array([e.t_s for e in edges])
    expected = pulse_edge_schedule(start.t_s, t_on, t_off, len(edges))
    err = t_edges - expected
    assert np.all(err >= -1e-6), "an edge came before its commanded time"
    p99_ms = float(np.percentile(np.abs(err), 99) * 1e3)
    figure("edge_error_p99_ms", p99_ms, "ms dev", speed=bench.speed, edges=len(edges),
           max_ms=float(np.max(np.abs(err)) * 1e3))  # fmt: skip
    assert p99_ms < 2.0 * bench.speed
    # no drift: the last edges are no later than the first ones (anchored boundaries)
    assert abs(np.mean(err[-10:]) - np.mean(err[:10])) < 2e-3 * bench.speed
    # the completed end comes at start + count * period
    assert end.t_s - start.t_s == pytest.approx(count * (t_on + t_off), abs=2e-3 * bench.speed)
    # edge values: amps applied, 0 when off
    assert all(e.value == 0.0 for e in edges[1::2]) and all(e.value > 0 for e in edges[::2])
    # the elec stream's PULSE_ON bit agrees with the edges (away from them by one period)
    rec, t, _ = col.records("elec")
    on_bit = (rec["state"] & defs.ELEC_PULSE_ON) != 0
    k = np.searchsorted(t_edges, t, side="right")  # edges at or before each sample
    expect_on = (k % 2) == 1
    near = np.min(np.abs(t[:, None] - t_edges[None, :]), axis=1) < 2.0 / 200.0
    inside = (t > t_edges[0]) & (t < t_edges[-1]) & ~near
    assert np.all(on_bit[inside] == expect_on[inside])
    # and the current readback follows: on ≈ amplitude, off ≈ 0 (within 2 % of full scale)
    f = rig.streams["elec"].field("current")
    amps = rec["current"].astype(float) * f.scale + f.offset
    amp = edges[0].value
    assert np.all(np.abs(amps[inside & expect_on] - amp) < 0.02 * imax)
    assert np.all(np.abs(amps[inside & ~expect_on]) < 0.02 * imax)
