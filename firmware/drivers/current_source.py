"""Pulsed current source: analog setpoint (DAC or filtered PWM), enable switch, readback.

The setpoint is a code 0..code_max on `out`: a PWM (`duty_u16(code)`) or a DAC-like object
(`write(code)`, e.g. an I2C/SPI DAC driver). Bipolar sources use a mid-scale `zero_code`:
amps = (code - zero_code) * amps_per_lsb. `set_current` quantises, never clips: a request
the code range cannot express raises ValueError (the firmware validates before).
Readback: cell voltage and current-sense ADCs (`read_u16`), raw counts; the board
calibration converts them (on the host, and to thresholds in the firmware).
The enable pin switches the output stage; `enable(False)` also zeroes the setpoint.
"""


class CurrentSource:
    def __init__(
        self,
        out,
        pin_enable,
        adc_voltage,
        adc_current,
        amps_per_lsb,
        zero_code=0,
        code_max=65535,
        mode="pwm",
        enable_active=1,
    ):
        if mode not in ("pwm", "dac"):
            raise ValueError("mode must be 'pwm' or 'dac'")
        self.out = out
        self.mode = mode
        self.pin_enable = pin_enable
        self.adc_v = adc_voltage
        self.adc_i = adc_current
        self.amps_per_lsb = amps_per_lsb
        self.zero_code = zero_code
        self.code_max = code_max
        self.enable_active = enable_active
        self.code = zero_code
        self.on = False
        self.enable(False)

    def _write(self, code):
        self.code = code
        if self.mode == "pwm":
            self.out.duty_u16(code)
        else:
            self.out.write(code)

    def quantise(self, amps):
        """Setpoint code for `amps` (nearest); ValueError when out of the code range."""
        code = self.zero_code + int(round(amps / self.amps_per_lsb))
        if code < 0 or code > self.code_max:
            raise ValueError("current outside the source range")
        return code

    def code_to_amps(self, code):
        return (code - self.zero_code) * self.amps_per_lsb

    def set_code(self, code):
        self._write(code)

    def set_current(self, amps):
        """Apply the setpoint; return the amps actually applied (quantised)."""
        code = self.quantise(amps)
        self._write(code)
        return self.code_to_amps(code)

    def enable(self, on):
        if not on:
            self._write(self.zero_code)
        self.pin_enable.value(self.enable_active if on else 1 - self.enable_active)
        self.on = bool(on)

    def off(self):
        self.enable(False)

    def read_voltage_raw(self):
        return self.adc_v.read_u16()

    def read_current_raw(self):
        return self.adc_i.read_u16()
