# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Waveform engine timing against the virtual clock; cutoffs honoured."""

import pytest

from protocol import defs

RIG = """
from rig import Rig
from protocol import defs
def rel(evs, t0):
    return [((e[0] - t0) & 0xFFFFFFFF, e[1], e[2], e[3], e[4]) for e in evs]
"""


def edges(r):
    """[(t_rel_us, code, cause, index, value)] from WAVEFORM_START on."""
    return [tuple(e) for e in r["ev"]]


def test_pulse_train_edges_at_commanded_times(mp):
    (r,) = mp(
        RIG
        + """
r = Rig(max_sleep_us=50000)
a = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 1.0, 2.0, 3, 0, 0, 0, 0))
r.run_s(12)
ev = r.events()
start = [e for e in ev if e[1] == defs.EV_WAVEFORM_START][0]
emit({"ack": a, "ev": rel([e for e in ev if e[1] in (3, 4)], start[0]), "on": r.hal.source.on})
"""
    )
    assert r["ack"][0] == "ack"
    applied = r["ack"][1]
    assert abs(applied[1] - 0.02) <= 0.25 / 65536 / 2 + 1e-9  # quantised, not clipped
    ev = edges(r)
    got = [(t, code, idx, round(v, 4)) for t, code, cause, idx, v in ev]
    a = round(applied[1], 4)
    assert got == [
        (0, 3, 0, a),
        (1000000, 3, 0, 0.0),
        (3000000, 3, 1, a),
        (4000000, 3, 1, 0.0),
        (6000000, 3, 2, a),
        (7000000, 3, 2, 0.0),
        (9000000, 4, 6, round(r["ev"][-1][4], 4)),
    ]
    assert ev[-1][2] == defs.CAUSE_COMPLETED
    assert r["on"] is False


def test_staircase_current_density_5s_on_35s_measure(mp):
    # 0.05 -> 0.10 mA/cm2 in 0.01 steps (0.5 -> 1.0 A/m2 by 0.1), 40 s dwell, 5 s on
    (r,) = mp(
        RIG
        + """
r = Rig(rates=(1, 1, 1, 1), max_sleep_us=1000000)
print(r.cmd(defs.CMD_SET_CELL, (0.385e-4,)))
a = r.cmd(defs.CMD_STAIRCASE, (1, 0.5, 0.1, 1.0, 40.0, 5.0, 0, 0, 0, 0))
r.run_s(260)
ev = r.events()
start = [e for e in ev if e[1] == defs.EV_WAVEFORM_START][0]
emit({"ack": a, "ev": rel([e for e in ev if e[1] in (3, 4)], start[0])})
"""
    )
    assert r["ack"][0] == "ack"
    ev = edges(r)
    ons = [e for e in ev if e[1] == 3 and e[4] != 0]
    offs = [e for e in ev if e[1] == 3 and e[4] == 0]
    assert [e[0] for e in ons] == [40000000 * k for k in range(6)]
    assert [e[0] for e in offs] == [40000000 * k + 5000000 for k in range(6)]
    area = 0.385e-4
    for k, e in enumerate(ons):
        assert e[3] == k
        assert abs(e[4] - (0.5 + 0.1 * k) * area) <= 0.25 / 65536
    assert ev[-1][1] == defs.EV_WAVEFORM_END and ev[-1][0] == 240000000
    assert ev[-1][2] == defs.CAUSE_COMPLETED


def test_gitt_long_rest_and_duration_cutoff(mp):
    # rests longer than 2**29 us (ticks_diff range) and a duration cutoff mid-rest
    (r,) = mp(
        RIG
        + """
r = Rig(rates=(1, 1, 1, 1), max_sleep_us=1000000)
r.cmd(defs.CMD_SET_WATCHDOG, (600000,))
a = r.cmd(defs.CMD_GITT, (0, -0.01, 600.0, 3600.0, 5, 0, 0, 0, 5000.0))
t = 0
while t < 5200:
    r.run_s(100)
    r.cmd(defs.CMD_HEARTBEAT)
    t += 100
ev = r.events()
start = [e for e in ev if e[1] == defs.EV_WAVEFORM_START][0]
emit({"ack": a, "ev": rel([e for e in ev if e[1] in (3, 4)], start[0])})
""",
        heapsize="16M",
    )
    ev = edges(r)
    assert [e[0] for e in ev[:3]] == [0, 600000000, 4200000000 & 0xFFFFFFFF]
    assert ev[-1][1] == defs.EV_WAVEFORM_END and ev[-1][2] == defs.CAUSE_DURATION
    assert ev[-1][0] == 5000000000 & 0xFFFFFFFF


@pytest.mark.parametrize(
    "name, setup, args, cause, t_lo, t_hi",
    [
        # 3.0 V OCV + 10 ohm: 0.05 A -> 3.5 V; v_max 4.0 reached when the OCV jumps at 2 s
        (
            "v_max",
            "r.hal.cell.ocv = 3.6",
            (0, 0.05, 0.0, 4.0, 0, 0),
            defs.CAUSE_V_MAX,
            2000000,
            2010000,
        ),
        (
            "v_min",
            "r.hal.cell.ocv = 0.5",
            (0, -0.05, 1.0, 4.0, 0, 0),
            defs.CAUSE_V_MIN,
            2000000,
            2010000,
        ),
        # 0.05 A for 0.1 C -> 2.0 s (elec at 100 Hz: within one sample)
        ("charge", "", (0, 0.05, 0, 0, 0.1, 0), defs.CAUSE_CHARGE, 1990000, 2020000),
        ("duration", "", (0, 0.05, 0, 0, 0, 1.5), defs.CAUSE_DURATION, 1500000, 1500000),
    ],
)
def test_constant_cutoffs(mp, name, setup, args, cause, t_lo, t_hi):
    (r,) = mp(
        RIG
        + """
r = Rig()
a = r.cmd(defs.CMD_CONSTANT, %r)
r.run_s(2.0)
%s
r.run_s(1.0)
ev = r.events()
start = [e for e in ev if e[1] == defs.EV_WAVEFORM_START][0]
emit({"ack": a, "ev": rel([e for e in ev if e[1] == 4], start[0]), "on": r.hal.source.on,
      "latched": r.app.safety.latched})
"""
        % (args, setup)
    )
    assert r["ack"][0] == "ack", r
    (end,) = r["ev"]
    assert end[2] == cause
    assert t_lo <= end[0] <= t_hi, end
    assert r["on"] is False and r["latched"] is False
    if name == "charge":
        assert abs(end[4] - 0.1) < 0.003


def test_charge_cutoff_exact_when_the_elec_period_is_not_a_multiple_of_100_us(mp):
    # elec at 800 Hz: 1250 us between readings; charge was integrated in whole 100 us units
    # per reading (12 of 12.5), so 0.1 C at 0.05 A ended 4 % late (2.083 s, 0.104 C passed)
    (r,) = mp(
        RIG
        + """
r = Rig()
c = r.cmd(defs.CMD_CONFIG_STREAM, (2, 1, 800.0))
a = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0.1, 0))
r.run_s(3.0)
ev = r.events()
start = [e for e in ev if e[1] == defs.EV_WAVEFORM_START][0]
emit({"c": c, "ack": a, "ev": rel([e for e in ev if e[1] == 4], start[0])})
"""
    )
    assert r["c"][0] == "ack" and r["ack"][0] == "ack", r
    (end,) = r["ev"]
    assert end[2] == defs.CAUSE_CHARGE
    assert 1990000 <= end[0] <= 2010000, end
    assert abs(end[4] - 0.1) < 0.001, end


def test_rest_then_completed_and_stop(mp):
    (r,) = mp(
        RIG
        + """
r = Rig(max_sleep_us=100000)
a = r.cmd(defs.CMD_REST, (2.5,))
r.run_s(3)
b = r.cmd(defs.CMD_CONSTANT, (0, 0.03, 0, 0, 0, 0))
r.run_s(1)
on = r.hal.source.on
c = r.cmd(defs.CMD_STOP)
ev = r.events()
emit({"a": a, "b": b, "c": c, "on_before": on, "on": r.hal.source.on,
      "ends": [e[2] for e in ev if e[1] == 4], "state": r.app.state()})
"""
    )
    assert r["a"][0] == r["b"][0] == r["c"][0] == "ack"
    assert r["ends"] == [defs.CAUSE_COMPLETED, defs.CAUSE_HOST_STOP]
    assert r["on_before"] is True and r["on"] is False and r["state"] == defs.STATE_IDLE
