"""Pulsed current source: analog setpoint (DAC or filtered PWM), enable switch, readback.

The setpoint is a code 0..code_max: a DAC-like object (`write(code)`, mode "dac"), or a PWM
(mode "pwm"). A PWM has `pwm_levels` real duty levels, whatever `duty_u16` suggests:
- rp2: the counter top is 125 MHz / f_pwm, so 1250 levels at 100 kHz (not 65 536);
- ESP32-S3 LEDC at 20 kHz: 11 bits, 2048 levels, the u16 duty is truncated.
With `pwm_levels` set, the code IS the hardware level (0..pwm_levels) and the driver writes
the duty_u16 that both rounding and truncating ports map to exactly that level:
ceil(code * 65535 / pwm_levels). `pwm_levels` None: the code is the duty_u16 itself
(a PWM or DAC whose 16 bits are all real, e.g. the emulated board's).
amps = (code - zero_code) * amps_per_lsb, `amps_per_lsb` being the amps of one real level,
so what `quantise`/`code_to_amps` report (and the firmware ACKs) is what the hardware
applies. `set_current` quantises, never clips: a request the code range cannot express
raises ValueError (the firmware validates before).
Readback: cell voltage and current-sense ADCs (`read_u16`), raw counts; the board
calibration converts them (on the host, and to thresholds in the firmware).
The enable pin switches the output stage; `enable(False)` also zeroes the setpoint.
"""


def duty_for_level(level, levels):
    """duty_u16 that gives exactly `level` of `levels` on rp2 (cc = d * levels / 65535,
    truncated or rounded) and on the ESP32 LEDC (d >> (16 - bits), levels = 2**bits)."""
    return (level * 65535 + levels - 1) // levels


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
        pwm_levels=None,
    ):
        if mode not in ("pwm", "dac"):
            raise ValueError("mode must be 'pwm' or 'dac'")
        if pwm_levels is not None and (mode != "pwm" or code_max > pwm_levels):
            raise ValueError("pwm_levels: PWM only, code_max <= pwm_levels")
        self.out = out
        self.mode = mode
        self.pwm_levels = pwm_levels
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
            lv = self.pwm_levels
            self.out.duty_u16(code if lv is None else (code * 65535 + lv - 1) // lv)
        else:
            self.out.write(code)

    def quantise(self, amps):
        """Setpoint code for `amps` (nearest real level); ValueError when out of range."""
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
