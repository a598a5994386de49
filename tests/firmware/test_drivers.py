"""Drivers on fake machine objects (MicroPython), and the mpy-cross build (CPython)."""

import os
import sys

import pytest

from protocol import defs
from tests.firmware.scripts import FAKE_UART

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_hx711_bitbang_gain_glitch_and_missing(mp):
    (r,) = mp("""
import fakehal
from firmware.drivers.hx711 import HX711, is_glitch
from protocol import defs
clk = fakehal.VClock()
chip = fakehal.FakeHX711Pins(-1234)
hx = HX711(chip.dout, chip.sck, gain=64, rate_sps=80, clock=clk)
out = {"v": hx.read(), "st": hx.status}
hx.ready()
out["pulses"] = chip.last_extra
chip.value_counts = 0xFFFF        # 2**16 - 1: glitch pattern
out["g"] = [hx.read(), hx.status]
chip.value_counts = 0x7FFFFF
out["g2"] = [hx.read(), hx.status]
chip.value_counts = 0xFFFFFF      # -1 count: legitimate
out["m1"] = [hx.read(), hx.status]
chip.value_counts = 0x7FFFFF
hx.read()
chip.value_counts = 123
chip.present = False
chip.dout.v = 1
out["nr"] = [hx.read(), hx.status, hx.missing]
clk.sleep_us(100000)
out["missing"] = [hx.read(), hx.status, hx.missing]
vals = (0xFFFFFF, 0x7FFFFF, 0xFFFF, 0x7FFF, 0x800000, 255, 0x123456)
out["glitch_table"] = [is_glitch(v) for v in vals]
# PIO mode: a state machine-like object
class SM:
    def __init__(self): self.rx = [0xFFFFF6]; self.tx = []
    def put(self, v): self.tx.append(v)
    def get(self): return self.rx.pop(0)
    def rx_fifo(self): return len(self.rx)
sm = SM()
hp = HX711(sm=sm, gain=32, clock=clk)
out["pio"] = [hp.ready(), hp.read(), hp.status, list(sm.tx), hp.ready()]
sm.rx = [100, 200, 300, 400]   # a chip slightly fast: the FIFO filled up; the newest wins
out["pio_newest"] = [hp.read(), hp.discarded, hp.ready()]
hp.set_gain(128)
out["pio_gain"] = sm.tx
emit(out)
""")
    assert r["v"] == -1234 and r["st"] == 0 and r["pulses"] == 3  # gain 64: 27 clocks
    assert r["g"] == [0xFFFF, 1] and r["g2"] == [0x7FFFFF, defs.LOAD_SATURATED]
    assert r["m1"] == [-1, 0]
    assert r["nr"] == [0x7FFFFF, 2, False]  # not ready: last counts repeated
    assert r["missing"] == [0x7FFFFF, 2, True]  # silent > 3 conversions: missing
    assert r["glitch_table"] == [False, False, True, False, False, False, False]
    assert r["pio"] == [True, -10, 0, [1], False]  # gain 32 -> 26 clocks -> put(1)
    assert r["pio_gain"] == [1, 0]
    assert r["pio_newest"] == [400, 3, False]


def test_ads1232_reads_signed_and_sets_pins(mp):
    (r,) = mp("""
import fakehal
from firmware.drivers.ads1232 import ADS1232
chip = fakehal.FakeHX711Pins(-5000)   # same shift-out protocol for the fake
g0, g1, sp, pd = fakehal.FakePin(), fakehal.FakePin(), fakehal.FakePin(), fakehal.FakePin()
a = ADS1232(chip.dout, chip.sck, gain=64, rate_sps=80, pin_gain0=g0, pin_gain1=g1, pin_speed=sp,
            pin_pdwn=pd)
emit([a.read(), a.status, g0.v, g1.v, sp.v, pd.v])
""")
    assert r == [-5000, 0, 0, 1, 1, 1]


def test_fbg_uart_lines_windows_and_lost_peaks(mp):
    (r,) = mp(
        FAKE_UART
        + """
import micropython
from firmware.drivers.fbg_uart import FbgUart
f = FbgUart(u, ((1527000000, 1533000000), (1547000000, 1553000000), (1560000000, 1565000000)))
u.data.extend(b"banner\\n#P 12 1550.104551 1529.98312 1562.5\\n#P 13 1529.9")
PK = lambda: [f.peak_fm(g) for g in range(3)]
got = [f.poll(1000), PK(), f.status, f.t_us]
u.data.extend(b"9 1580.0\\n#P x\\n")
got += [f.poll(2000), PK(), f.status, f.t_us, f.lines, f.bad_lines]
# no allocation while parsing a buffered line
line = b"#P 14 1550.1 1530.2 1561.0\\n"
u.data.extend(line)
ok = False
micropython.heap_lock()
ok = f.poll(3000)
micropython.heap_unlock()
got += [ok, PK()]
emit(got)
"""
    )
    assert r[0] is True and r[1] == [1529983120, 1550104551, 1562500000]
    assert r[2] == 0 and r[3] == 1000
    assert r[4] is True and r[5] == [1529990000, 0, 0] and r[6] == 0b110 and r[7] == 2000
    assert r[8] == 2 and r[9] == 1  # "#P x" is malformed
    assert r[10] is True and r[11] == [1530200000, 1550100000, 1561000000]


def test_fbg_analog_thermistor_current_source(mp):
    (r,) = mp("""
import fakehal
from firmware.drivers.fbg_analog import FbgAnalog
from firmware.drivers.thermistor import Thermistor
from firmware.drivers.current_source import CurrentSource
a = [fakehal.FakeADC(lambda: 0) for _ in range(2)]
a[0].value = 32768
a[1].value = 65535
f = FbgAnalog(a, (1520000000, 1540000000), (40e6 / 65535, 40e6 / 65535))
f.poll(5)
out = {"fbg": [[f.peak_fm(0), f.peak_fm(1)], f.status]}
a[0].value = 60000   # raw * slope * 256 = 2.4e9 wrapped a 32-bit viper word (ESP32-S3)
f.poll(6)
out["fbg_hi"] = f.peak_fm(0)
th = Thermistor(fakehal.FakeADC(lambda: 0))
errs = [abs(th.to_mdegc(raw) - th.mdegc_exact(raw)) for raw in range(2000, 63000, 997)]
out["th"] = [th.to_mdegc(32768), max(errs), th.to_mdegc(10), th.to_mdegc(65530)]
pwm, en = fakehal.FakePWM(), fakehal.FakePin()
cs = CurrentSource(pwm, en, a[0], a[1], 0.25 / 65536, zero_code=32768)
out["off"] = [pwm.duty, en.v, cs.on]
applied = cs.set_current(0.0123456)
cs.enable(True)
out["on"] = [applied, pwm.duty, en.v, cs.on]
try:
    cs.set_current(0.2)
    out["range"] = "clipped"
except ValueError:
    out["range"] = "refused"
cs.off()
out["off2"] = [pwm.duty, en.v]
emit(out)
""")
    peaks, st = r["fbg"]
    slope = round(40e6 / 65535 * 256)
    assert r["fbg_hi"] == 1520000000 + 60000 * (slope // 256) + 60000 * (slope % 256) // 256
    assert abs(peaks[0] - 1540000305) < 1000 and peaks[1] == 0 and st == 0b10
    t25, err, open_, short = r["th"]
    assert abs(t25 - 25000) < 50 and err < 200 and open_ is None and short is None
    assert r["off"] == [32768, 0, False]
    applied, duty, en, on = r["on"]
    assert abs(applied - 0.0123456) <= 0.25 / 65536 / 2 and duty == 32768 + 3236
    assert en == 1 and on is True
    assert r["range"] == "refused" and r["off2"] == [32768, 0]


@pytest.mark.parametrize("board", ["rp2040_pico", "esp32s3"])
def test_mpy_cross_build_for_board(board, tmp_path):
    sys.path.insert(0, ROOT)
    from firmware import build

    try:
        sizes = build.build(board, str(tmp_path))
    except OSError:
        pytest.skip("mpy-cross unavailable")
    assert "board.mpy" in sizes and "firmware/app.mpy" in sizes
    assert "protocol/frame.mpy" in sizes and "firmware/drivers/hx711.mpy" in sizes
    assert (tmp_path / "main.py").exists()
    assert 20_000 < sum(sizes.values()) < 120_000
