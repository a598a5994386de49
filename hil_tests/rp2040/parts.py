"""Simulated parts wired to the pins of boards/rp2040_pico/board.py, on rp2040py's RP2040.

Everything here runs on the emulator's engine-room thread (GPIO listeners, ADC hooks and
clock alarms are all called from inside the emulated instruction stream), so nothing needs a
lock; the runner reads the truth logs from the same thread.

- `Hx711`: the load-cell ADC with datasheet timing on DOUT (GP16) / PD_SCK (GP17), conversion
  rate from the RATE pin (GP18: high 80 SPS, low 10 SPS) with a crystal error (`drift`), 24 bits
  MSB first on PD_SCK rising edges, the 25th-27th pulse selecting the next gain, power-down
  when PD_SCK stays high for more than 60 µs. Conversion k gives `base + step * k` (wrapped
  inside `span`), so a reading names the conversion it came from.
- `Interrogator`: an FBG interrogator writing `#P <seq> <nm> <nm>\\n` lines into UART0's RX at
  the line's baud rate (one byte per 10 bit times), `rate_hz` lines per second. Line k carries
  `peaks_nm[g] + (k % 1000) * 1 pm`, so a peak set names the line it came from.
- `Cell`: the current source and the cell, with the Pico board's analog front end (fixed
  hardware: board.py's calibration must match it). Current = (PWM duty of GP15 - 1/2) x 0.25 A
  while the enable pin GP14 is high (the filtered bipolar PWM, no filter lag), cell voltage
  V = OCV(charge) + I * R, read on ADC0 through the /2 divider; current sense on ADC1
  (bipolar, mid-scale = 0 A); NTC thermistor (beta 3950, 10 kOhm, 10 kOhm series) on ADC2.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

HIGH = 1  # rp2040py GPIOPinState.HIGH
LOW = 0
FUNCTION_PWM = 4

NS = 1_000_000_000
# rp2040py 0.3.6 steps a PIO state machine at most once per CPU instruction or idle jump
# (peripherals/_pio.py, RPPIO.advance), and an idle jump (the core in WFE) goes straight to the
# next alarm: while the firmware sleeps, the HX711 program ran one instruction per jump, PD_SCK
# stayed high for the whole jump (often > 60 us: the chip powered down, 4 conversions lost) and
# a read took milliseconds. While a read is due or under way the model schedules an alarm
# every PIO clock (board.py runs the program at 1 MHz), so the jumps are one PIO clock long
# and the program runs at its real pace.
PIO_PACE_NS = 1000
PIO_PACE_MAX_NS = 2_000_000  # a read takes 25 x 8 us; stop pacing after this in any case


class Hx711:
    def __init__(
        self,
        mcu: Any,
        *,
        dout: int = 16,
        sck: int = 17,
        rate_pin: int = 18,
        drift: float = 0.005,
        base: int = 100_000,
        step: int = 16,
        span: int = 4_000_000,
    ) -> None:
        self.mcu = mcu
        self.clock = mcu.clock
        self.dout = mcu.gpio[dout]
        self.rate_gpio = mcu.gpio[rate_pin]
        self.drift = drift
        self.base = base
        self.step = step
        self.span = span
        self.k = -1  # index of the latest conversion
        self.ready = False  # DOUT low, a conversion waits to be shifted out
        self.latched_k = -1
        self.latched = 0
        self.bit = 0  # PD_SCK pulses since the read started (0: not reading)
        self.high_since = 0.0
        self.gain_pulses = 25
        self.reads = 0
        self.overwritten = 0  # conversions replaced before they were read
        self.during_read = 0  # conversions that completed while a read was shifting out
        self.power_downs = 0
        self.ready_ns: deque[tuple[int, float]] = deque(maxlen=4000)  # (k, t) per conversion
        self.read_ns: deque[tuple[int, float]] = deque(maxlen=4000)  # (k, t of first pulse)
        self._alarm = self.clock.create_alarm(self._convert)
        self._pacer = self.clock.create_alarm(self._pace)
        self._pace_until = 0.0
        self.sck_high = False
        self.dout.set_input_value(True)
        mcu.gpio[sck].add_listener(self._on_sck)
        self._alarm.schedule(self.period_ns())

    def rate_sps(self) -> int:
        return 80 if self.rate_gpio.value == HIGH else 10

    def period_ns(self) -> float:
        return NS / self.rate_sps() / (1.0 + self.drift)

    def value(self, k: int) -> int:
        return self.base + (self.step * k) % self.span

    def _convert(self) -> None:
        now = self.clock.nanos
        self._alarm.schedule(self.period_ns())
        self.k += 1
        self.ready_ns.append((self.k, now))
        if self.bit >= 25:  # the last read is over: its pulse count set this conversion's gain
            self.gain_pulses = self.bit
            self.bit = 0
        if self.bit:
            self.during_read += 1  # the output register is busy shifting: this one is lost
            return
        if self.ready:
            self.overwritten += 1
        self.latched_k = self.k
        self.latched = self.value(self.k) & 0xFFFFFF
        self.ready = True
        self.dout.set_input_value(False)
        if any(m.enabled for m in self.mcu.pio[0].machines):
            # only while a PIO program runs (board.py: PIO0), not during boot or at the REPL
            self._pace_until = now + PIO_PACE_MAX_NS
            self._pacer.schedule(PIO_PACE_NS)

    def _pace(self) -> None:
        """Nothing but an alarm one PIO clock later (see PIO_PACE_NS), until the read is over."""
        # until the last pulse's falling edge: stopping at its rising edge left PD_SCK high
        # for the next (long) idle jump, and the chip powered down (14 times in 10 s)
        if (self.bit < 25 or self.sck_high) and self.clock.nanos < self._pace_until:
            self._pacer.schedule(PIO_PACE_NS)

    def _on_sck(self, value: Any, _last: Any) -> None:
        now = self.clock.nanos
        self.sck_high = value == HIGH
        if value == HIGH:
            self.high_since = now
            if not self.bit:
                if not self.ready:
                    return  # a pulse while not ready: ignored by the chip
                self.read_ns.append((self.latched_k, now))
            self.bit += 1
            if self.bit <= 24:
                self.dout.set_input_value(bool((self.latched >> (24 - self.bit)) & 1))
            elif self.bit == 25:
                self.ready = False
                self.reads += 1
                self.dout.set_input_value(True)
            return
        if self.high_since and now - self.high_since > 60_000:
            # PD_SCK high for more than 60 us: power down; low again: reset, settle again
            self.power_downs += 1
            self.bit = 0
            self.ready = False
            self.dout.set_input_value(True)
            self._alarm.schedule(4 * self.period_ns())

    def state(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "rate_sps": self.rate_sps(),
            "period_ns": self.period_ns(),
            "base": self.base,
            "step": self.step,
            "span": self.span,
            "reads": self.reads,
            "overwritten": self.overwritten,
            "during_read": self.during_read,
            "power_downs": self.power_downs,
            "gain_pulses": self.gain_pulses,
            "bit": self.bit,  # PD_SCK pulses of the read under way (0: none)
            "ready": self.ready,
        }


class Interrogator:
    def __init__(
        self,
        mcu: Any,
        *,
        uart: int = 0,
        rate_hz: float = 100.0,
        peaks_nm: tuple[float, ...] = (1530.0, 1550.0),
    ) -> None:
        self.mcu = mcu
        self.clock = mcu.clock
        self.uart = mcu.uart[uart]
        self.rate_hz = rate_hz
        self.peaks_nm = peaks_nm
        self.k = -1
        self.sent_lines = 0
        self.dropped_bytes = 0  # the UART was off, or its RX FIFO full (overrun)
        self.pending = bytearray()
        self._in_flight: deque[int] = deque()  # line indices whose bytes are pending
        self.newline_ns: deque[tuple[int, float]] = deque(maxlen=4000)
        self._line_alarm = self.clock.create_alarm(self._line)
        self._byte_alarm = self.clock.create_alarm(self._byte)
        self._sending = False
        self._line_alarm.schedule(NS / rate_hz)

    def peaks(self, k: int) -> list[float]:
        return [p + (k % 1000) * 0.001 for p in self.peaks_nm]

    def byte_ns(self) -> float:
        baud = self.uart.baud_rate if self.uart.enabled and self.uart.baud_divider else 115200
        return 10 * NS / baud

    def _line(self) -> None:
        self._line_alarm.schedule(NS / self.rate_hz)
        self.k += 1
        text = "#P %d %s\n" % (self.k, " ".join("%.6f" % p for p in self.peaks(self.k)))  # noqa: UP031
        self.pending += text.encode()
        self._in_flight.append(self.k)
        if not self._sending:
            self._sending = True
            self._byte_alarm.schedule(self.byte_ns())

    def _byte(self) -> None:
        b = self.pending.pop(0)
        u = self.uart
        if u.enabled and u.rx_enabled and not u.rx_fifo.full:
            u.feed_byte(b)
        else:
            self.dropped_bytes += 1
        if b == 10:
            self.sent_lines += 1
            self.newline_ns.append((self._in_flight.popleft(), self.clock.nanos))
        if self.pending:
            self._byte_alarm.schedule(self.byte_ns())
        else:
            self._sending = False

    def state(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "rate_hz": self.rate_hz,
            "sent_lines": self.sent_lines,
            "dropped_bytes": self.dropped_bytes,
            "peaks_nm": list(self.peaks_nm),
        }


class Cell:
    """Current source + cell + sense ADCs + thermistor, read when the firmware samples.

    The analog front end is the Pico board's hardware, fixed here (the firmware's calibration
    in board.py must agree with it, and the tests check that it does): the filtered PWM
    source delivers (duty - 1/2) x 0.25 A while enabled (+-125 mA at 0/100 % duty), the cell
    voltage reaches ADC0 through a /2 divider (3.3 V reference), the current sense maps
    -125..+125 mA to 0..3.3 V on ADC1, the thermistor is a 10 kOhm NTC (beta 3950) below a
    10 kOhm resistor on ADC2."""

    def __init__(
        self,
        mcu: Any,
        *,
        pwm_pin: int = 15,
        enable_pin: int = 14,
        adc_voltage: int = 0,
        adc_current: int = 1,
        adc_thermistor: int = 2,
        source_full_scale_a: float = 0.25,
        vref_v: float = 3.3,
        divider: float = 2.0,
        sense_full_scale_a: float = 0.25,
        ocv_v: float = 3.3,
        ocv_slope_v_per_c: float = 0.05,
        r_ohm: float = 5.0,
        temp_c: float = 25.0,
    ) -> None:
        self.mcu = mcu
        self.clock = mcu.clock
        self.pwm_gpio = mcu.gpio[pwm_pin]
        self.enable_gpio = mcu.gpio[enable_pin]
        self.slice = mcu.pwm.channels[(pwm_pin >> 1) & 7]
        self.channel_b = bool(pwm_pin & 1)
        self.adc_ch = {"v": adc_voltage, "i": adc_current, "t": adc_thermistor}
        self.source_fs = source_full_scale_a
        self.vref = vref_v
        self.divider = divider
        self.sense_fs = sense_full_scale_a
        self.th = {"beta": 3950.0, "r0_ohm": 10000.0, "t0_c": 25.0, "r_series_ohm": 10000.0}
        self.ocv0 = ocv_v
        self.ocv_slope = ocv_slope_v_per_c
        self.r_ohm = r_ohm
        self.temp_c = temp_c
        self.open_thermistor = False
        self.charge_c = 0.0
        self.current_a = 0.0
        self._t_ns = 0.0
        self.adc_reads = 0
        # (t_ns, enable, compare level, top, amps) at each change of the delivered current
        self.changes: deque[tuple[float, bool, int, int, float]] = deque(maxlen=2000)
        adc = mcu.adc
        self._default_read = adc._default_on_adc_read
        adc.on_adc_read = self._on_adc_read
        orig_write = self.slice.write_register

        def write_register(offset: int, value: int) -> None:
            orig_write(offset, value)
            self._changed()

        self.slice.write_register = write_register
        self.enable_gpio.add_listener(lambda _v, _l: self._changed())

    def _level(self) -> int:
        s = self.slice
        return (s.cc >> 16) & 0xFFFF if self.channel_b else s.cc & 0xFFFF

    def duty(self) -> float:
        s = self.slice
        if not (s.csr & 1) or self.pwm_gpio.function_select != FUNCTION_PWM:
            return 0.0
        return min(self._level(), s.top + 1) / (s.top + 1)

    def source_current(self) -> float:
        if self.enable_gpio.value != HIGH:
            return 0.0
        return (self.duty() - 0.5) * self.source_fs

    def _integrate(self) -> None:
        now = self.clock.nanos
        self.charge_c += self.current_a * (now - self._t_ns) / NS
        self._t_ns = now

    def _changed(self) -> None:
        self._integrate()
        i = self.source_current()
        if i != self.current_a or not self.changes:
            enabled = self.enable_gpio.value == HIGH
            self.changes.append((self.clock.nanos, enabled, self._level(), self.slice.top, i))
        self.current_a = i

    def voltage(self) -> float:
        return self.ocv0 + self.ocv_slope * self.charge_c + self.current_a * self.r_ohm

    def _ntc_fraction(self) -> float:
        th = self.th
        t0_k = th["t0_c"] + 273.15
        r = th["r0_ohm"] * math.exp(th["beta"] * (1 / (self.temp_c + 273.15) - 1 / t0_k))
        return r / (r + th["r_series_ohm"])

    def _on_adc_read(self, channel: int) -> None:
        self._integrate()
        self.adc_reads += 1
        adc = self.mcu.adc
        frac: float | None = None  # of the ADC's 3.3 V range
        if channel == self.adc_ch["v"]:
            frac = self.voltage() / self.divider / self.vref
        elif channel == self.adc_ch["i"]:
            frac = self.current_a / self.sense_fs + 0.5
        elif channel == self.adc_ch["t"]:
            frac = 1.0 if self.open_thermistor else self._ntc_fraction()
        if frac is not None:  # the 12-bit code the chip converts
            adc.channel_values[channel] = max(0, min(4095, int(frac * 4096)))
        self._default_read(channel)

    def state(self) -> dict[str, Any]:
        self._integrate()
        return {
            "current_a": self.current_a,
            "voltage_v": self.voltage(),
            "charge_c": self.charge_c,
            "enable": self.enable_gpio.value == HIGH,
            "duty": self.duty(),
            "pwm_top": self.slice.top,
            "temp_c": self.temp_c,
            "open_thermistor": self.open_thermistor,
            "adc_reads": self.adc_reads,
        }
