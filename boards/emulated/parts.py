"""Machine-level parts of the emulated board: GPIO, ADC, the setpoint PWM, the enable pin.

They look like MicroPython's `machine.Pin`, `machine.ADC` and `machine.PWM` to the firmware's
drivers, and hand every access to `Hardware` (hw.py), which asks the plant.
"""


class Pin:
    """A GPIO; `on_change(v)` lets a fake chip see writes, `reader()` supplies reads."""

    OUT = 1
    IN = 0

    def __init__(self, num=0, mode=0, value=0, reader=None, on_change=None):
        self.num = num
        self._v = value
        self.reader = reader
        self.on_change = on_change

    def value(self, v=None):
        if v is None:
            if self.reader is not None:
                return self.reader()
            return self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            if self.on_change is not None:
                self.on_change(v)
        return None

    def __call__(self, v=None):
        return self.value(v)


class ADC:
    """An ADC channel; each conversion costs the board `cost.adc_read_us` of device time."""

    def __init__(self, hw, read):
        self._read = read
        self._clock = hw.clock
        self._us = hw.cost.adc_read_us

    def read_u16(self):
        if self._us:
            self._clock.charge(self._us)
        return self._read()


class PWM:
    """The current source's setpoint PWM (bipolar around mid-scale)."""

    def __init__(self, hw):
        self.hw = hw
        self.code = 32768

    def duty_u16(self, code=None):
        if code is None:
            return self.code
        self.code = code
        self.hw.dac_code = code
        self.hw.source_changed()
        return None

    def freq(self, f=None):
        return 100000 if f is None else None


class DAC(PWM):
    def write(self, code):
        self.duty_u16(code)


class EnablePin(Pin):
    def __init__(self, hw, num=0):
        Pin.__init__(self, num)
        self.hw = hw

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
        self.hw.enabled = bool(self._v)
        self.hw.source_changed()
        return None
