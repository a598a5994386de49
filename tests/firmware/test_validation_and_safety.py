# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Every out-of-range command refused with the right reason (never clipped); retries not
re-applied; watchdog, compliance, over-temp and over-force latches; STOP; CLEAR_FAULT."""

import pytest

from protocol import defs

OOR = defs.NACK_OUT_OF_RANGE
NOCUT = (0.0, 0.0, 0.0, 0.0)

# (cmd_id, args, reason, words the NACK text must contain)
REFUSED = [
    (defs.CMD_CONFIG_STREAM, (7, 1, 10.0), OOR, ["stream", "[0, 3]"]),
    (defs.CMD_CONFIG_STREAM, (0, 1, 500.0), OOR, ["rate_hz", "80"]),
    (defs.CMD_CONFIG_STREAM, (2, 1, 0.01), OOR, ["rate_hz", "0.1"]),
    (defs.CMD_CONFIG_STREAM, (2, 2, 10.0), OOR, ["enabled"]),
    (defs.CMD_SET_STREAMING, (3,), OOR, ["on"]),
    (defs.CMD_SET_CELL, (0.0,), OOR, ["area_m2"]),
    (defs.CMD_SET_CELL, (1.0,), OOR, ["area_m2", "0.01"]),
    (defs.CMD_SET_CELL, (float("nan"),), OOR, ["area_m2"]),
    (defs.CMD_SET_WATCHDOG, (10,), OOR, ["timeout_ms", "100"]),
    (defs.CMD_SET_WATCHDOG, (10000000,), OOR, ["timeout_ms", "600000"]),
    (defs.CMD_SET_VOLTAGE_WINDOW, (-2.0, 4.0), OOR, ["v_min_v", "-1"]),
    (defs.CMD_SET_VOLTAGE_WINDOW, (0.0, 6.0), OOR, ["v_max_v", "5"]),
    (defs.CMD_SET_VOLTAGE_WINDOW, (3.0, 2.0), OOR, ["v_min_v", "below"]),
    (defs.CMD_REST, (500,), OOR, ["duration_us", "[1000, "]),
    (defs.CMD_REST, (2 * 10**12,), OOR, ["duration_us", "1000000000000"]),
    (defs.CMD_CONSTANT, (0, 0.2) + NOCUT, OOR, ["current", "0.1"]),
    (defs.CMD_CONSTANT, (0, -0.11) + NOCUT, OOR, ["current", "-0.1"]),
    (defs.CMD_CONSTANT, (0, float("inf")) + NOCUT, OOR, ["current"]),
    (defs.CMD_CONSTANT, (2, 0.01) + NOCUT, OOR, ["unit"]),
    (defs.CMD_CONSTANT, (1, 10.0) + NOCUT, defs.NACK_NOT_CONFIGURED, ["set_cell"]),
    (defs.CMD_CONSTANT, (0, 0.01, 2.0, 9.0, 0, 0), OOR, ["v_max_v", "5"]),
    (defs.CMD_CONSTANT, (0, 0.01, -3.0, 4.0, 0, 0), OOR, ["v_min_v"]),
    (defs.CMD_CONSTANT, (0, 0.01, 3.0, 2.0, 0, 0), OOR, ["v_min_v", "below"]),
    (defs.CMD_CONSTANT, (0, 0.01, 0, 0, -1.0, 0), OOR, ["max_charge_c"]),
    (defs.CMD_CONSTANT, (0, 0.01, 0, 0, 0, 5), OOR, ["max_duration_us"]),
    (defs.CMD_CONSTANT, (0, 0.01, 0, 0, 0, 10**13), OOR, ["max_duration_us"]),
    (defs.CMD_PULSE_TRAIN, (0, 0.5, 1.0, 1.0, 3) + NOCUT, OOR, ["amplitude"]),
    (defs.CMD_PULSE_TRAIN, (0, 0.05, 0.0, 1.0, 3) + NOCUT, OOR, ["t_on_us", "1000"]),
    (defs.CMD_PULSE_TRAIN, (0, 0.05, 1.0, 0.0005, 3) + NOCUT, OOR, ["t_off_us", "500"]),
    (defs.CMD_PULSE_TRAIN, (0, 0.05, 1.0, 1.0, 0) + NOCUT, OOR, ["count=0", "[1, 65535]"]),
    (defs.CMD_GITT, (0, 0.05, 1.0, 1.0, 0) + NOCUT, OOR, ["count=0", "[1, 65535]"]),
    (defs.CMD_PULSE_TRAIN, (0, 0.05, 1.0, 1.0, 70000) + NOCUT, OOR, ["count", "65535"]),
    (defs.CMD_GITT, (0, 0.05, 0.0001, 60.0, 3) + NOCUT, OOR, ["t_pulse_us"]),
    (defs.CMD_GITT, (0, 0.05, 10.0, 2e6, 3) + NOCUT, OOR, ["t_rest_us"]),
    (defs.CMD_GITT, (0, -0.3, 10.0, 60.0, 3) + NOCUT, OOR, ["amplitude"]),
    (defs.CMD_STAIRCASE, (0, 0.01, 0.01, 0.2, 40.0, 5.0) + NOCUT, OOR, ["stop", "0.1"]),
    (defs.CMD_STAIRCASE, (0, 0.2, 0.01, 0.05, 40.0, 5.0) + NOCUT, OOR, ["start"]),
    (defs.CMD_STAIRCASE, (0, 0.01, 0.0, 0.05, 40.0, 5.0) + NOCUT, OOR, ["step"]),
    (defs.CMD_STAIRCASE, (0, 0.01, -0.01, 0.05, 40.0, 5.0) + NOCUT, OOR, ["step"]),
    (defs.CMD_STAIRCASE, (0, 0.01, 0.01, 0.05, 40.0, 50.0) + NOCUT, OOR, ["on_us", "dwell_us"]),
    (defs.CMD_STAIRCASE, (0, 0.01, 0.01, 0.05, 0.0, 0.0) + NOCUT, OOR, ["dwell_us"]),
    (defs.CMD_STAIRCASE, (0, 0.0, 1e-7, 0.05, 1.0, 0.0) + NOCUT, OOR, ["number of steps"]),
]


def _py(obj):
    """repr that MicroPython can read back (nan/inf as float(...))."""
    return repr(obj).replace("nan", "float('nan')").replace("inf", "float('inf')")


def test_every_out_of_range_command_is_refused(mp):
    code = """
from rig import Rig
from protocol import defs
out = []
for cmd_id, args in %s:
    r = Rig()
    rep = r.cmd(cmd_id, args)
    ev = r.events()
    out.append([rep[0], rep[1] if rep[0] == "nack" else 0, rep[2] if rep[0] == "nack" else "",
                r.hal.source.on, r.app.waveform.running, r.app.area_m2,
                r.app.safety.watchdog_ms, len([e for e in ev if e[1] == 2])])
emit(out)
""" % (_py([(c, a) for c, a, _, _ in REFUSED]),)
    (out,) = mp(code)
    for (cmd_id, args, reason, words), got in zip(REFUSED, out, strict=False):
        kind, why, text, on, running, area, wd, starts = got
        assert kind == "nack", (cmd_id, args, got)
        assert why == reason, (cmd_id, args, got)
        for w in words:
            assert w in text, (cmd_id, args, text)
        assert not on and not running and starts == 0 and area == 0.0 and wd == 600000


def test_bad_length_unknown_latched_busy(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs, messages
from protocol.frame import FrameWriter
import struct
r = Rig()
out = {}
# wrong argument length, unknown id: build frames by hand
for name, payload in (("short", struct.pack("<HB", 7, defs.CMD_SET_CELL) + b"\\x00"),
                      ("unknown", struct.pack("<HB", 8, 0x7E))):
    w = FrameWriter(64)
    w.buf[13:13 + len(payload)] = payload
    n = w.finish(defs.MSG_COMMAND, 0, 0, len(payload))
    r.link.rx.extend(w.buf[:n])
    r.step()
out["short"] = r.reply(7)
out["unknown"] = r.reply(8)
out["start"] = r.cmd(defs.CMD_CONSTANT, (0, 0.01, 0, 0, 0, 0))
out["busy"] = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.01, 1.0, 1.0, 1, 0, 0, 0, 0))
out["cell_busy"] = r.cmd(defs.CMD_SET_CELL, (1e-4,))
emit(out)
""")
    assert r["short"][0] == "nack" and r["short"][1] == defs.NACK_BAD_LENGTH
    assert r["unknown"][0] == "nack" and r["unknown"][1] == defs.NACK_UNKNOWN_COMMAND
    assert r["start"][0] == "ack"
    assert r["busy"][1] == defs.NACK_BUSY and r["cell_busy"][1] == defs.NACK_BUSY


def test_retried_command_is_not_reapplied(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig()
a = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 1.0, 1.0, 9, 0, 0, 0, 0), seq=500)
r.run_s(1.5)
b = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 1.0, 1.0, 9, 0, 0, 0, 0), seq=500)
n1 = r.cmd(defs.CMD_SET_CELL, (5.0,), seq=501)
n2 = r.cmd(defs.CMD_SET_CELL, (5.0,), seq=501)
ev = r.events()
emit({"a": a, "b": b, "n1": n1, "n2": n2, "starts": len([e for e in ev if e[1] == 2]),
      "edges": len([e for e in ev if e[1] == 3])})
""")
    assert r["a"] == r["b"] and r["a"][0] == "ack"
    assert r["n1"] == r["n2"] and r["n1"][0] == "nack"
    assert r["starts"] == 1 and r["edges"] == 2  # on at 0 s, off at 1 s; not restarted


def test_a_reused_seq_with_other_arguments_is_applied(mp):
    """Retries are matched on (cmd_seq, cmd_id, arguments): 4000 ms after 3000 ms with the
    same cmd_seq is a new command (it was ACKed 3000 again in the first v2 firmware)."""
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig()
a = r.cmd(defs.CMD_SET_WATCHDOG, (3000,), seq=700)
b = r.cmd(defs.CMD_SET_WATCHDOG, (4000,), seq=700)
wd = r.app.safety.watchdog_ms
c = r.cmd(defs.CMD_SET_WATCHDOG, (4000,), seq=700)   # a true retry: not applied again
# a restarted host reusing the last seq for get_info still gets a HELLO (read-only commands
# always run), and they do not replace the remembered command
r.link.take()
i1 = r.cmd(defs.CMD_GET_INFO, seq=700)
hellos = len(r.link.take(defs.MSG_HELLO))
i2 = r.cmd(defs.CMD_GET_INFO, seq=700)
hellos2 = len(r.link.take(defs.MSG_HELLO))
t1 = r.cmd(defs.CMD_TIMESYNC, (0,), seq=701)
r.run_s(0.25)
t2 = r.cmd(defs.CMD_TIMESYNC, (0,), seq=701)
emit({"a": a, "b": b, "c": c, "wd": wd, "i1": i1, "i2": i2, "h": [hellos, hellos2],
      "t": [t1, t2]})
""")
    assert r["a"] == ["ack", [3000]] and r["b"] == ["ack", [4000]] and r["wd"] == 4000
    assert r["c"] == r["b"]
    assert r["i1"][0] == r["i2"][0] == "ack" and r["h"] == [1, 1]
    (k1, (t1,)), (k2, (t2,)) = r["t"]
    assert k1 == k2 == "ack" and 240000 <= t2 - t1 <= 260000  # timesync runs every time


def test_commands_with_reserved_flags_stream_or_no_header_are_not_executed(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs
from protocol.frame import FrameWriter
r = Rig()
bad0 = r.app.link.reader.bad_frames
r.link.send_command(800, defs.CMD_SET_WATCHDOG, (7000,), flags=0x80)
r.step()
r.link.send_command(801, defs.CMD_SET_WATCHDOG, (8000,), stream=2)
r.step()
w = FrameWriter(16)
n = w.finish(defs.MSG_COMMAND, 0, 0, 2)   # a 2-byte payload: no cmd_id to answer
r.link.rx.extend(w.buf[:n])
r.step()
emit({"replies": [r.reply(800), r.reply(801)], "wd": r.app.safety.watchdog_ms,
      "bad": r.app.link.reader.bad_frames - bad0})
""")
    assert r["replies"] == [None, None] and r["wd"] != 7000 and r["wd"] != 8000
    assert r["bad"] == 3


def test_every_frame_carries_the_boot_id_and_a_good_header_check(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(keep_samples=True)
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.run_s(0.5)
emit({"boots": sorted(r.link.boot_ids), "bad_hcheck": r.link.bad_hcheck,
      "frames": len(r.link.seqs), "bad": r.link.bad_crc})
""")
    assert len(r["boots"]) == 1 and 0 < r["boots"][0] <= 0xFFFF
    assert r["frames"] > 5 and r["bad_hcheck"] == 0 and r["bad"] == 0


def test_watchdog_latches_and_clear_fault(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(watchdog_ms=0)
out = {"wd": r.cmd(defs.CMD_SET_WATCHDOG, (500,))}
out["start"] = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))
for k in range(10):            # heartbeats every 0.3 s keep it alive
    r.run_s(0.3)
    r.cmd(defs.CMD_HEARTBEAT)
out["alive"] = r.hal.source.on
t_last = r.now_us()
r.run_s(2.0)                     # silence
ev = r.events()
out["on"] = r.hal.source.on
out["enable_pin"] = r.hal.source.pin_enable.v
out["latched"] = [((e[0] - t_last) & 0xFFFFFFFF, e[2]) for e in ev if e[1] == defs.EV_STOP_LATCHED]
out["end"] = [e[2] for e in ev if e[1] == defs.EV_WAVEFORM_END]
out["state"] = r.app.state()
out["refused"] = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))
r.cmd(defs.CMD_GET_STATUS)
st = r.statuses()[-1]
out["status"] = [st[5], st[6]]
out["flags"] = r.link.frames[-1][1]
out["clear"] = r.cmd(defs.CMD_CLEAR_FAULT)
out["cleared_ev"] = len(r.events(defs.EV_FAULT_CLEARED))
out["again"] = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))
emit(out)
""")
    assert r["wd"][0] == "ack" and r["start"][0] == "ack" and r["alive"] is True
    assert r["on"] is False and r["enable_pin"] == 0
    (lat,) = r["latched"]
    assert lat[1] == defs.CAUSE_WATCHDOG and 500000 <= lat[0] <= 503000
    assert r["end"] == [defs.CAUSE_WATCHDOG]
    assert r["state"] == defs.STATE_LATCHED
    assert r["refused"][0] == "nack" and r["refused"][1] == defs.NACK_LATCHED
    assert r["status"] == [defs.STATE_LATCHED, defs.CAUSE_WATCHDOG]
    assert r["flags"] & defs.FLAG_LATCHED
    assert r["clear"][0] == "ack" and r["cleared_ev"] == 1 and r["again"][0] == "ack"


def test_watchdog_longer_than_the_ticks_half_period_still_latches(mp):
    # Board ticks_us wraps at 2**30 us, so ticks_diff only spans +-2**29 us (537 s); the
    # board allows timeouts up to 600 s, which a single ticks_diff can never exceed.
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(rates=(1, 1, 1, 1), max_sleep_us=500000, watchdog_ms=590000)
start = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))
t0 = r.now_us()
ev = []
for k in range(70):              # silence for longer than the timeout
    r.run_s(10.0)
    ev += r.events()
    r.ev = []
    r.link.frames = []
    r.link.seqs = []
emit({"start": start, "on": r.hal.source.on,
      "lat": [((e[0] - t0) & 0xFFFFFFFF, e[2]) for e in ev if e[1] == defs.EV_STOP_LATCHED]})
""")
    assert r["start"][0] == "ack"
    assert r["on"] is False
    (lat,) = r["lat"]
    assert lat[1] == defs.CAUSE_WATCHDOG and 590000000 <= lat[0] <= 591100000


def test_watchdog_counts_from_when_the_command_was_read(mp):
    """The watchdog was fed with the pass's start reading, taken before the outbox was
    pumped: a command that arrived while a slow USB write went on was counted from before
    it existed, and the board latched that much early (rp2 VM: 0.1972 s, once 0.1766 s, on
    a 0.2 s watchdog). Here the last heartbeat arrives 1.5 ms into a 3 ms write before
    the pass reads the link: the latch must come a whole timeout after it."""
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 100, 1000, 10), watchdog_ms=0)
clock = r.hal.clock
r.cmd(defs.CMD_SET_WATCHDOG, (200,))
r.cmd(defs.CMD_SET_STREAMING, (1,))
start = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))
t0 = r.now_us()
arrived = []


class SlowLink:
    # the app's link, whose outbox writes take 3 ms when the pass begins; the last
    # heartbeat comes in the middle of them
    def __init__(self, link):
        self.link = link

    def __getattr__(self, name):
        return getattr(self.link, name)

    def pump(self):
        if not arrived and (r.now_us() - t0) & 0xFFFFFFFF > 50000:
            clock.sleep_us(1500)
            arrived.append(r.now_us() + clock.ticks_diff(clock.ticks_us(), r.app.dc.raw))
            r.link.send_command(900, defs.CMD_HEARTBEAT, ())
            clock.sleep_us(1500)
        return self.link.pump()


r.app.link = SlowLink(r.app.link)
r.run_s(0.5)
lat = [e for e in r.events() if e[1] == defs.EV_STOP_LATCHED]
emit({"start": start[0], "after": [(e[0] - arrived[0]) & 0xFFFFFFFF for e in lat],
      "cause": [e[2] for e in lat], "arrived": (arrived[0] - t0) & 0xFFFFFFFF})
""")
    assert r["start"] == "ack" and r["arrived"] < 150000
    (after,) = r["after"]
    assert r["cause"] == [defs.CAUSE_WATCHDOG]
    assert 200000 <= after <= 215000, "latched %d us after the last command arrived" % after


@pytest.mark.parametrize(
    "name, poke, cause",
    [
        ("compliance", "r.hal.cell.v_override = 5.2", defs.CAUSE_COMPLIANCE),
        ("window", "r.hal.cell.v_override = 4.6", defs.CAUSE_V_MAX),
        ("over_temp", "r.hal.cell.temp_raw = 6000", defs.CAUSE_OVER_TEMP),
        ("over_force", "r.hal.hx.value_counts = 8000000", defs.CAUSE_OVER_FORCE),
        # the ADC's full scale is over-force whatever the limit (it used to be a "glitch")
        ("saturated", "r.hal.hx.value_counts = 0x7FFFFF", defs.CAUSE_OVER_FORCE),
        ("saturated_neg", "r.hal.hx.value_counts = -0x800000", defs.CAUSE_OVER_FORCE),
        ("sensor", "r.hal.cell.temp_raw = 65535", defs.CAUSE_SENSOR_FAULT),
    ],
)
def test_safety_latches(mp, name, poke, cause):
    (r,) = mp(
        """
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 100, 100, 10))
r.cmd(defs.CMD_SET_VOLTAGE_WINDOW, (1.0, 4.5))
a = r.cmd(defs.CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))
r.run_s(1.0)
%s
r.run_s(1.0)
ev = r.events()
clear = r.cmd(defs.CMD_CLEAR_FAULT)
emit({"a": a, "on": r.hal.source.on, "lat": [e[2] for e in ev if e[1] == defs.EV_STOP_LATCHED],
      "sf": [e[3] for e in ev if e[1] == defs.EV_SENSOR_FAULT], "clear": clear})
"""
        % poke
    )
    assert r["a"][0] == "ack"
    assert r["on"] is False
    assert r["lat"] == [cause]
    if name in (
        "over_temp",
        "over_force",
        "saturated",
        "saturated_neg",
    ):  # condition still present: refuse to clear
        assert r["clear"][0] == "nack" and r["clear"][1] == defs.NACK_BAD_STATE
    else:
        assert r["clear"][0] == "ack"
    if name == "sensor":
        assert r["sf"] == [3]


def test_a_version_1_host_gets_a_log_naming_both_versions(mp):
    (r,) = mp("""
import struct
from rig import Rig
from protocol import defs
from protocol.crc import crc32_into
r = Rig()
# a version-1 COMMAND (10-byte header, no boot id, no header check): set_watchdog 7000 ms
p = struct.pack("<HBI", 900, defs.CMD_SET_WATCHDOG, 7000)
f = bytearray(struct.pack("<BBHBBBBH", 0xA5, 0x5A, 6 + len(p), 1, defs.MSG_COMMAND, 0, 0, 1))
f += p + bytes(4)
crc32_into(f, 2, len(f) - 4)
r.link.rx.extend(f)
r.step()
logs = [bytes(x[4][1:]).decode() for x in r.link.take(defs.MSG_LOG)]
emit({"logs": logs, "wd": r.app.safety.watchdog_ms, "reply": r.reply(900)})
""")
    assert r["reply"] is None and r["wd"] != 7000
    both = [t for t in r["logs"] if "protocol version 1" in t and "protocol version 2" in t]
    assert both, r["logs"]


def test_commands_survive_garbage_and_ctrl_c_bytes(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig()
r.link.rx.extend(b"\\x03\\x03\\xa5\\x5a\\x03\\x00garbage\\x03\\x04")
a = r.cmd(defs.CMD_HEARTBEAT)
emit({"a": a, "bad": r.app.link.reader.bad_frames})
""")
    assert r["a"][0] == "ack"


def test_enter_repl_and_reset_leave_the_loop_with_output_off(mp):
    (r,) = mp("""
from rig import Rig
from protocol import defs
out = []
for cmd_id in (defs.CMD_ENTER_REPL, defs.CMD_RESET):
    r = Rig()
    r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0, 0, 0, 0))
    r.run_s(0.5)
    on = r.hal.source.on
    rep = r.cmd(cmd_id)
    more = r.step()
    ends = [e[2] for e in r.events() if e[1] == defs.EV_WAVEFORM_END]
    out.append([on, rep[0], more, r.hal.exit, r.hal.source.on, ends])
emit(out)
""")
    assert r[0] == [True, "ack", False, "repl", False, [defs.CAUSE_HOST_STOP]]
    assert r[1] == [True, "ack", False, "reset", False, [defs.CAUSE_HOST_STOP]]
