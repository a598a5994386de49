"""A fake HAL with a VIRTUAL clock for the firmware tests (runs on the MicroPython unix port).

The clock only moves when the firmware sleeps (or a test advances it), so timing tests
are exact and fast. The link is a pair of bytearrays; `accept` limits what a write takes
(None: everything; 0: refuse all; k: at most k bytes per write) to simulate a slow host.
Uses the real drivers where it can: CurrentSource, Thermistor, FbgAnalog; the load cell is
the real HX711 driver on fake pins. The cell model: V = ocv + R * I.
"""

from firmware.drivers.current_source import CurrentSource
from firmware.drivers.fbg_analog import FbgAnalog
from firmware.drivers.hx711 import HX711
from firmware.drivers.thermistor import Thermistor
from protocol import messages
from protocol.crc import crc32_check, crc32_low8
from protocol.frame import FrameWriter

# Ticks wrap at 2**30 like a real port, to exercise the device-clock epoch logic. 32-bit
# clean: 2**30 is a big int on a 32-bit VM (the WebAssembly port, a board), so no value
# here ever reaches it, not even in an intermediate sum (that would allocate).
_MASK = 0x3FFFFFFF  # 2**30 - 1
_HALF = 0x20000000  # 2**29


def _add30(a, d):
    """(a + d) mod 2**30 for 0 <= a < 2**30, -2**30 < d < 2**30, all small ints."""
    if d >= 0:
        room = _MASK - a  # a + d wraps when d > room (_MASK - a + 1 is 2**30 for a == 0)
        return d - room - 1 if d > room else a + d
    a += d
    return a if a >= 0 else a + _MASK + 1


class VClock:
    def __init__(self, start=0):
        self.t = start

    def ticks_us(self):
        return self.t

    def ticks_diff(self, a, b):
        # ((a - b + 2**29) & _MASK) - 2**29 as time.ticks_diff, without the intermediate
        # a - b + 2**29, which reaches 2**30 (a big int on a 32-bit VM)
        d = a - b
        if d >= _HALF:
            return d - _MASK - 1
        if d < -_HALF:
            return d + _MASK + 1
        return d

    def ticks_add(self, a, d):
        return _add30(a, d)

    def sleep_us(self, n):
        while n > _HALF:
            self.t = _add30(self.t, _HALF)
            n -= _HALF
        self.t = _add30(self.t, n)


class Cell:
    """Open-circuit voltage + series resistance; voltage/current in ADC counts."""

    def __init__(self, hal):
        self.hal = hal
        self.ocv = 3.0
        self.r_ohm = 10.0
        self.force_n = 100.0
        self.temp_raw = 32768  # 25 degC with equal divider
        self.v_override = None

    def amps(self):
        s = self.hal.source
        return s.code_to_amps(s.code) if s.on else 0.0


class FakeADC:
    """read_u16() from a function of the fake cell, or a fixed `value` when one is set
    (the allocation test: the model's float arithmetic would allocate)."""

    def __init__(self, fn):
        self.fn = fn
        self.value = None

    def read_u16(self):
        if self.value is not None:
            return self.value
        return self.fn()


class FakePin:
    def __init__(self, v=0):
        self.v = v

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class FakePWM:
    def __init__(self):
        self.duty = 0

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d


class FakeHX711Pins:
    """DOUT/SCK pair emulating a HX711 (or ADS1232) that always has `value_counts` ready
    when `present`. 24 rising SCK edges shift the word out MSB first; the extra pulses
    after it (gain select / ADS1232 25th clock) are counted in `extra`."""

    def __init__(self, value=1000):
        self.value_counts = value
        self.present = True
        self.dout = _Dout(self)
        self.sck = _Sck(self)
        self.word = 0
        self.bit = 0
        self.extra = 0
        self.last_extra = 0


class _Dout(FakePin):
    def __init__(self, chip):
        FakePin.__init__(self, 0)
        self.chip = chip

    def value(self, v=None):
        c = self.chip
        if 0 < c.bit <= 24 and c.extra == 0:
            return (c.word >> (24 - c.bit)) & 1
        if c.extra:
            c.last_extra = c.extra
        c.bit = 0
        c.extra = 0
        return 0 if c.present else 1


class _Sck(FakePin):
    def __init__(self, chip):
        FakePin.__init__(self, 0)
        self.chip = chip

    def value(self, v=None):
        if v is None:
            return self.v
        c = self.chip
        if v == 1 and self.v == 0:
            if c.bit == 0:
                c.word = c.value_counts & 0xFFFFFF
            if c.bit < 24:
                c.bit += 1
            else:
                c.extra += 1
        self.v = v


class FakeLink:
    """Host side of the link. Writes are a byte stream (the firmware may write a frame in
    parts); complete frames are parsed into `frames`: (msg_type, flags, stream, seq, payload
    bytes); sample frames are kept only when `keep_samples`. `accept`: None takes
    everything, 0 refuses (returns 0), k takes at most k bytes per write (a slow host)."""

    def __init__(self, keep_samples=False):
        self.rx = bytearray()
        self.accept = None
        self.writes = 0
        self.partial = 0
        self.keep_samples = keep_samples
        self.frames = []
        self.samples = [0, 0, 0, 0]
        self.bad_crc = 0
        self.seqs = []
        self.boot = 0  # boot id of the last frame
        self.boot_ids = set()
        self.bad_hcheck = 0
        self.stream = bytearray()

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        for i in range(n):
            buf[i] = self.rx[i]
        self.rx = self.rx[n:]
        return n

    def write(self, buf, n, off=0):
        self.writes += 1
        k = n if self.accept is None else min(n, self.accept)
        if k <= 0:
            return 0
        if k < n:
            self.partial += 1
        self.stream.extend(buf[off : off + k])
        self._parse()
        return k

    def _parse(self):
        while len(self.stream) >= 4:
            st = self.stream
            if st[0] != 0xA5 or st[1] != 0x5A:
                raise AssertionError("stream out of sync: %r" % bytes(st[:16]))  # noqa: UP031
            total = 8 + (st[2] | (st[3] << 8))
            if len(st) < total:
                return
            frame = bytes(st[:total])
            self.stream = st[total:]
            self._frame(frame, total)

    def _frame(self, buf, n):
        if not crc32_check(bytearray(buf), 2, n - 4):
            self.bad_crc += 1
        t = buf[5]
        self.seqs.append(buf[8] | (buf[9] << 8))
        self.boot = buf[10] | (buf[11] << 8)
        self.boot_ids.add(self.boot)
        if crc32_low8(bytearray(buf), 2, 12) != buf[12]:
            self.bad_hcheck += 1
        h = 13  # defs.HEADER_SIZE
        if t == 0x10:
            self.samples[buf[7]] += buf[h + 8] | (buf[h + 9] << 8)
            if not self.keep_samples:
                return
        self.frames.append((t, buf[6], buf[7], buf[8] | (buf[9] << 8), bytes(buf[h : n - 4])))

    def send_command(self, cmd_seq, cmd_id, args, flags=0, stream=0):
        w = FrameWriter(128)
        p = messages.encode_command(cmd_seq, cmd_id, args)
        o = w.payload_offset
        w.buf[o : o + len(p)] = p
        n = w.finish(0x20, flags, stream, len(p))
        self.rx.extend(w.buf[:n])

    def take(self, msg_type=None):
        out = [f for f in self.frames if msg_type is None or f[0] == msg_type]
        self.frames = [f for f in self.frames if not (msg_type is None or f[0] == msg_type)]
        return out


class NullLink:
    """Accepts everything (or at most `accept` bytes a write, like a USB CDC transmit
    buffer), keeps nothing (allocation-free, for the hot-path test)."""

    def __init__(self, accept=None):
        self.bytes = 0
        self.accept = accept

    def readinto(self, buf):
        return 0

    def write(self, buf, n, off=0):
        a = self.accept
        k = n if a is None or n < a else a
        self.bytes += k
        return k


class FakeHal:
    def __init__(self, link=None, n_gratings=3):
        self.clock = VClock(_MASK + 1 - 5000000)  # wraps 5 s after boot
        self.link = link if link is not None else FakeLink()
        self.cell = Cell(self)
        cal = DEFINITION["calibration"]
        self.source = CurrentSource(
            FakePWM(),
            FakePin(),
            FakeADC(self._v_raw),
            FakeADC(self._i_raw),
            cal["source_amps_per_lsb"],
            zero_code=32768,
            mode="pwm",
        )
        self.hx = FakeHX711Pins(2000)
        self.loadcell = HX711(self.hx.dout, self.hx.sck, gain=128, rate_sps=80, clock=self.clock)
        self.fbg_raw = [30000 + 1000 * g for g in range(n_gratings)]
        self.fbg = FbgAnalog(
            [FakeADC(self._fbg_fn(g)) for g in range(n_gratings)],
            [1520000000 + 10000000 * g for g in range(n_gratings)],
            [300.0] * n_gratings,
        )
        self.thermistor = Thermistor(FakeADC(lambda: self.cell.temp_raw))
        self.exit = None

    def freeze_adcs(self):
        """Make every ADC return its current reading from now on (no model arithmetic)."""
        for adc in [self.source.adc_v, self.source.adc_i, self.thermistor.adc] + list(
            self.fbg.adcs
        ):
            adc.value = None
            adc.value = adc.read_u16()

    def _fbg_fn(self, g):
        return lambda: self.fbg_raw[g]

    def _v_raw(self):
        c = self.cell
        v = c.v_override if c.v_override is not None else c.ocv + c.r_ohm * c.amps()
        cal = DEFINITION["calibration"]
        r = int(v / cal["volts_per_count"])
        return max(0, min(65535, r))

    def _i_raw(self):
        cal = DEFINITION["calibration"]
        r = int(round((self.cell.amps() - cal["amps_offset_a"]) / cal["amps_per_count"]))
        return max(0, min(65535, r))

    def unique_id(self):
        return b"\x01\x02\x03\x04"

    def heap_free(self):
        import gc

        return gc.mem_free()

    def enter_repl(self):
        self.exit = "repl"

    def reset(self):
        self.exit = "reset"


DEFINITION = {
    "board_id": "fake",
    "firmware_target": "unix",
    "parts": {},
    "pins": {},
    "limits": {
        "max_current_a": 0.1,
        "compliance_v": 5.0,
        "min_voltage_v": -1.0,
        "max_temp_c": 60.0,
        "max_force_n": 5000.0,
        "min_watchdog_ms": 100,
        "max_watchdog_ms": 600000,
        "default_watchdog_ms": 5000,
        "min_area_m2": 1e-6,
        "max_area_m2": 0.01,
        "max_duration_s": 1e6,
        "min_pulse_s": 0.001,
        "max_charge_c": 1e5,
        "min_rate_hz": 0.1,
        "max_rate_load_hz": 80.0,
        "max_rate_fbg_hz": 1000.0,
        "max_rate_elec_hz": 1000.0,
        "max_rate_temp_hz": 10.0,
    },
    "calibration": {
        "load_n_per_count": 0.001,
        "load_offset_n": 0.0,
        "volts_per_count": 6.6 / 65535,
        "volts_offset_v": 0.0,
        "amps_per_count": 0.25 / 65535,
        "amps_offset_a": -0.125,
        "source_amps_per_lsb": 0.25 / 65536,
    },
    "streams": {
        "load": {"rate_hz": 80.0, "enabled": True},
        "fbg": {"rate_hz": 100.0, "enabled": True},
        "elec": {"rate_hz": 100.0, "enabled": True},
        "temp": {"rate_hz": 1.0, "enabled": True},
    },
}


class FakeStepperSM:
    """The stepper's PIO state machine (firmware/drivers/stepper.py) without pulses: it
    keeps the words it was given; the driver's own timing says where the press is."""

    def __init__(self):
        self.words = 0
        self.stops = 0
        self.on = 0

    def put(self, w):
        self.words += 1

    def active(self, v=None):
        if v is not None:
            self.on = v
        return self.on

    def restart(self):
        self.stops += 1

    def exec(self, s):
        pass


# a press actuator for the stack-pressure hold tests: 0.5 um a step, 4000 steps/s
PRESS_LIMITS = {
    "press_um_per_step": 0.5,
    "press_max_rate_sps": 4000.0,
    "press_min_steps": -20000,
    "press_max_steps": 20000,
    "press_max_setpoint_mpa": 50.0,
    "press_max_error_mpa": 2.0,
    "press_max_travel_um": 2000.0,
    "press_max_kp_um_per_mpa": 1000.0,
    "press_max_ki_um_per_mpa_s": 10000.0,
    "press_default_kp_um_per_mpa": 100.0,
    "press_default_ki_um_per_mpa_s": 4000.0,
    "press_runaway_s": 1.0,
    "press_max_runaway_s": 60.0,
}


def fit_press(hal):
    """Give a FakeHal a press actuator (the PIO path of the real driver)."""
    from firmware.drivers.stepper import Stepper

    hal.press_sm = FakeStepperSM()
    hal.press = Stepper(hal.clock, FakePin(), sm=hal.press_sm, en_pin=FakePin())
    return hal.press
