# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""What a real board does that the 64-bit unix port hides (../shared/REAL_BOARDS.md), on both
VMs: the ACK's applied current is the PWM level the hardware makes (defect 5), counters wrap
at 2**30 without big ints (9), every way out of the loop leaves the output off (7), the
configuration refuses stream rates beyond the CPU budget (11), Ctrl-C is off before anything
else runs at boot (13)."""

import ast
import importlib.util
import os

import pytest

from protocol import defs
from tests.firmware.scripts import FAKE_UART

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _board_definition(board):
    path = os.path.join(ROOT, "boards", board, "board.py")
    spec = importlib.util.spec_from_file_location("board_" + board, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # machine/rp2 are imported in make_hal() only
    return mod.DEFINITION


def _rp2_level(duty, levels):
    """rp2 port, machine_pwm.c: cc = duty_u16 * (top + 1) / 65535 (integer division)."""
    return duty * levels // 65535


def _ledc_level(duty, levels):
    """ESP32 LEDC with 2**bits levels: the u16 duty truncated to its top bits."""
    bits = levels.bit_length() - 1
    return duty >> (16 - bits)


AMPS = [0.0123456, -0.05, 0.0999, -0.0999, 0.0001, -0.0001, 0.0]


@pytest.mark.parametrize(
    ("board", "level_of"), [("rp2040_pico", _rp2_level), ("esp32s3", _ledc_level)]
)
def test_ack_is_the_pwm_level_the_hardware_applies(mp, board, level_of):
    """Defect 5: rp2 at 100 kHz has 1250 levels, the ESP32-S3 LEDC at 20 kHz 11 bits
    (truncating): the firmware quantises to those levels and ACKs what they make."""
    d = _board_definition(board)
    src = d["parts"]["source"]
    levels, zero = src["pwm_levels"], src["zero_code"]
    lsb = d["calibration"]["source_amps_per_lsb"]
    code_max = levels if board == "rp2040_pico" else levels - 1
    (r,) = mp(
        """
from rig import Rig
from protocol import defs
r = Rig()
s = r.hal.source
s.pwm_levels = %d
s.zero_code = %d
s.code_max = %d
s.amps_per_lsb = %r
out = []
for amps in %r:
    a = r.cmd(defs.CMD_CONSTANT, (0, amps, 0.0, 0.0, 0.0, 0))
    r.run_s(0.01)
    out.append([amps, a[0], a[1][1], s.out.duty, s.code, s.on])
    r.cmd(defs.CMD_STOP)
emit(out)
"""
        % (levels, zero, code_max, lsb, AMPS)
    )
    for amps, kind, applied, duty, code, on in r:
        assert kind == "ack" and on is True
        level = level_of(duty, levels)
        assert level == code  # the duty written gives exactly the level asked for
        assert level == round(duty * levels / 65535)  # rounding ports agree
        hw_amps = (level - zero) * lsb
        assert applied == pytest.approx(hw_amps, rel=1e-6, abs=1e-9)  # f32 on the wire
        assert abs(hw_amps - amps) <= lsb / 2 + 1e-12


def test_counters_wrap_at_2_30_without_big_ints(mp):
    """Defect 9: every growing counter set just below 2**30, then the loop runs under
    heap_lock (on the 32-bit VM a counter reaching 2**30 would be a heap-allocated int)."""
    (r,) = mp("""
import gc, micropython
import fakehal
from firmware.app import App
from protocol import defs
NEAR = 0x3FFFFFFF - 3       # 2**30 - 4, written without 2**30 (a big int there)
hal = fakehal.FakeHal(link=fakehal.NullLink())
d = dict(fakehal.DEFINITION)
d["streams"] = {"load": {"rate_hz": 80.0, "enabled": True},
                "fbg": {"rate_hz": 1000.0, "enabled": True},
                "elec": {"rate_hz": 1000.0, "enabled": True},
                "temp": {"rate_hz": 10.0, "enabled": True}}
app = App(d, hal)
app.safety.watchdog_ms = 600000
app.set_streaming(1)
hal.freeze_adcs()
for i in range(200):
    app.step()
smp = app.sampler
smp.records = NEAR
smp.dropped = NEAR
smp.missed = NEAR
for s in range(4):
    smp.index[s] = NEAR
app.link.frames_sent = NEAR
app.link.bytes_queued = NEAR
app.link.reader.frames = NEAR
app.gc_collections = NEAR
app.dc.t30 = NEAR            # the device clock's 30-bit part wraps into epoch 1
app.dc.ms30 = NEAR
err = None
i = 0
gc.collect()
micropython.heap_lock()
try:
    while i < 3000:
        app.step()
        i += 1
except MemoryError:
    err = "MemoryError"
micropython.heap_unlock()
emit({"err": err, "steps": i, "records": smp.records, "index": list(smp.index),
      "index_ep": list(smp.index_ep), "frames_sent": app.link.frames_sent,
      "bytes_queued": app.link.bytes_queued, "epoch": app.dc.epoch, "t30": app.dc.t30,
      "ms_ep6": app.dc.ms_ep6})
""")
    assert r["err"] is None and r["steps"] == 3000
    assert 0 <= r["records"] < 10000
    assert all(0 <= i < 10000 for i in r["index"]) and r["index_ep"] == [1, 1, 1, 1]
    assert 0 <= r["frames_sent"] < 1000 and 0 <= r["bytes_queued"] < 2**30
    assert r["epoch"] == 1 and r["t30"] < 10**7 and r["ms_ep6"] == 64


def test_an_exception_in_the_loop_leaves_the_output_off(mp):
    """Defect 7: an OSError from the link while a waveform drives the source propagates out
    of App.run() and firmware.app.run() with the output off (enable and setpoint)."""
    (r,) = mp("""
from rig import Rig
import fakehal
from protocol import defs
from firmware import app as fwapp
out = []
r = Rig()
r.cmd(defs.CMD_CONSTANT, (0, 0.02, 0, 0, 0, 0))
r.run_s(0.2)
on_before = r.hal.source.on
def broken(buf, n, off=0):
    raise OSError(5)
r.link.write = broken
try:
    r.app.run()
    out.append("returned")
except OSError:
    out.append("raised")
s = r.hal.source
out.append([on_before, s.on, s.code == s.zero_code, s.out.duty, s.pin_enable.v])

# firmware.app.run(board): the same, and an exception at boot too
class Board:
    DEFINITION = fakehal.DEFINITION
hal = fakehal.FakeHal()
hal.source.enable(True)          # whatever the pins were before
hal.source.set_current(0.05)
def boom():
    raise ValueError("boot")
hal.unique_id = boom             # the HELLO at boot fails
try:
    fwapp.run(Board, hal)
    out.append("returned")
except ValueError:
    out.append("raised")
out.append([hal.source.on, hal.source.code == hal.source.zero_code, hal.source.pin_enable.v])
emit(out)
""")
    assert r[0] == "raised"
    on_before, on, at_zero, duty, enable = r[1]
    assert on_before is True and on is False and at_zero is True and enable == 0
    assert r[2] == "raised" and r[3] == [False, True, 0]


def test_config_stream_refuses_rates_beyond_the_cpu_budget(mp):
    """Defect 11: with the board's CPU budget (record and wake-up costs), a rate the CPU
    cannot sustain is refused with the percentage it would need; the old rate stays."""
    d = _board_definition("rp2040_pico")
    lim = d["limits"]
    (r,) = mp(
        """
import fakehal
from rig import Rig
from protocol import defs
d = dict(fakehal.DEFINITION)
d["limits"] = dict(d["limits"])
d["limits"]["record_cost_us"] = %r
d["limits"]["wake_cost_us"] = %r
d["limits"]["max_cpu_fraction"] = %r
r = Rig(definition=d)
a = r.cmd(defs.CMD_CONFIG_STREAM, (2, 1, 1000.0))
b = r.cmd(defs.CMD_CONFIG_STREAM, (2, 1, 50.0))
emit({"a": a, "b": b, "period": r.app.sampler.period_us[2]})
"""
        % (lim["record_cost_us"], lim["wake_cost_us"], lim["max_cpu_fraction"])
    )
    kind, reason, text = r["a"]
    assert kind == "nack" and reason == defs.NACK_OUT_OF_RANGE
    # load 80 + fbg 100 + elec 1000 + temp 1 Hz, at (record + wake-up) us each
    need = (80 + 100 + 1000 + 1) * (lim["record_cost_us"] + lim["wake_cost_us"]) / 1e4
    budget = "%.0f %%" % (lim["max_cpu_fraction"] * 100)
    assert "%.0f %%" % need in text and "CPU" in text and budget in text
    assert r["b"][0] == "ack" and r["period"] == 20000


def test_ctrl_c_is_off_before_anything_else_runs_at_boot():
    """Defect 13: main.py switches the keyboard interrupt off first (only the import of
    micropython before it), and the escapes back to the REPL are documented."""
    src = open(os.path.join(ROOT, "firmware", "main.py")).read()
    body = ast.parse(src).body
    first, second = body[0], body[1]
    assert isinstance(first, ast.Import) and [a.name for a in first.names] == ["micropython"]
    assert isinstance(second, ast.Expr) and ast.unparse(second) == "micropython.kbd_intr(-1)"
    readme = open(os.path.join(ROOT, "firmware", "README.md")).read()
    for word in ("kbd_intr(-1)", "boot_escape_ms", "/repl_once", "/no_app", "repl"):
        assert word in readme


def test_emulated_usb_cdc_takes_what_fits_and_never_waits(mp_unix):
    """Defect 6, the emulated board's link: a 256-byte transmit buffer drained by the host
    at 1 byte/us of device time; a write takes what fits and returns at once (0 when full),
    so a 526-byte sample frame goes out in parts, as on a Pico."""
    out = mp_unix(
        """
import sys
sys.path.insert(0, %r)
import usb_cdc
class Clock:
    t = 0
    limit = 10 ** 12
    def now_us(self):
        return self.t
    def charge(self, us):
        pass
    def host_input(self):
        pass
class Cost:
    tx_call_us = 0
    rx_byte_us = 0
c = Clock()
u = usb_cdc.UsbCdc(c, Cost())
u.tx = open("/dev/null", "wb")
frame = bytearray(526)
got = [u.write(frame, 526), u.write(frame, 270, 256)]
c.t += 100                    # 100 us: the host drained 100 bytes
got.append(u.write(frame, 270, 256))
c.t += 10000
got += [u.write(frame, 170, 356), u.write(frame, 526)]
c.limit = c.t                 # device time held at a barrier: the host still reads
got += [u.write(frame, 200), u.write(frame, 200)]
emit(got)
"""
        % os.path.join(ROOT, "boards", "emulated")
    )
    assert out == [[256, 0, 100, 170, 86, 200, 200]]


def test_a_host_that_does_not_read_never_stalls_the_loop(mp):
    """Defect 6, the firmware: with the host not reading (every write takes 0 bytes) or
    taking 64 bytes a call, the loop goes on sampling at its rates, and each pass calls the
    link's write a bounded number of times (each new frame offered once, the outbox once):
    nothing is retried in a loop, so a HAL write that returns at once keeps the pass short."""
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 100, 1000, 1))
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.run_s(0.5)
out = []
for accept in (0, 64, None):
    r.link.accept = accept
    w0 = r.link.writes
    rec0 = r.app.sampler.records
    t0 = r.app.dc.t30
    most = steps = 0
    while r.app.dc.t30 - t0 < 1000000:
        w = r.link.writes
        r.app.step()
        steps += 1
        if r.link.writes - w > most:
            most = r.link.writes - w
    out.append([accept, most, r.app.sampler.records - rec0, steps])
emit(out)
""")
    for accept, most, records, _steps in r:
        assert most <= 8, (accept, most)  # 4 sample frames, STATUS, an event, the outbox
        # 1 s of device time: every sample taken (80 + 100 + 1000 + 1 a second)
        assert records >= 1180, (accept, records)


def test_cpu_budget_charges_an_interrogator_at_its_line_rate(mp):
    """A UART interrogator sends its 100 lines a second whatever the FBG stream's rate, and
    the board reads and parses each one. Charged at the stream's rate (0.1 Hz here), the
    budget let elec run at 200 Hz beside it, about 0.6 of a Pico's CPU (the measured limit
    case, elec 131 Hz with the default streams, took 0.445). An analog FBG is read only at
    its stream's rate, so the same rates stay allowed with one."""
    lim = _board_definition("rp2040_pico")["limits"]
    out = mp(
        FAKE_UART
        + """
import fakehal
from rig import Rig
from protocol import defs
from firmware.drivers.fbg_uart import FbgUart
d = dict(fakehal.DEFINITION)
d["limits"] = dict(d["limits"])
for k, v in %r.items():
    d["limits"][k] = v


def fit_uart(hal):
    hal.fbg = FbgUart(u, ((1527000000, 1533000000), (1547000000, 1553000000)))


for setup in (fit_uart, None):
    r = Rig(definition=d, rates=(80.0, 100.0, 100.0, 1.0), hal_setup=setup)
    slow = r.cmd(defs.CMD_CONFIG_STREAM, (1, 1, 0.1))
    fast = r.cmd(defs.CMD_CONFIG_STREAM, (2, 1, 200.0))
    emit({"paced": r.app.sampler.fbg_self_paced, "slow": slow[0], "fast": fast})
"""
        % {
            k: lim[k]
            for k in ("record_cost_us", "wake_cost_us", "max_cpu_fraction", "max_rate_fbg_hz")
        }
    )
    uart, analog = out
    assert uart["paced"] is True and analog["paced"] is False
    assert uart["slow"] == "ack" and analog["slow"] == "ack"
    kind, reason, text = uart["fast"]
    assert kind == "nack" and reason == defs.NACK_OUT_OF_RANGE and "CPU" in text
    # load 80 + lines 100 + elec 200 + temp 1 a second
    need = (80 + 100 + 200 + 1) * (lim["record_cost_us"] + lim["wake_cost_us"]) / 1e4
    assert "%.0f %%" % need in text, text
    assert analog["fast"][0] == "ack"
