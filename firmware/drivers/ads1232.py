"""ADS1232 24-bit bridge ADC (load cell), bit-banged.

DOUT/DRDY goes low when a conversion is ready; 24 SCLK pulses shift it out MSB first and a
25th pulse forces DOUT high until the next conversion. GAIN0/GAIN1 select 1/2/64/128,
SPEED selects 10/80 SPS; all optional (strapped on the board when None).
`status` after `read()` holds protocol LOAD_* bits as for the HX711: LOAD_SATURATED at the
full scale 0x7FFFFF/0x800000 (over-force for the safety check), LOAD_GLITCH for the 2**n - 1
patterns a disturbed read produces (0xFFFFFF is -1 count: legitimate).
"""

from firmware.drivers.hx711 import load_status
from protocol.defs import LOAD_NOT_READY

_GAINS = {1: (0, 0), 2: (1, 0), 64: (0, 1), 128: (1, 1)}


class ADS1232:
    def __init__(
        self,
        pin_dout,
        pin_sclk,
        gain=128,
        rate_sps=10,
        pin_pdwn=None,
        pin_speed=None,
        pin_gain0=None,
        pin_gain1=None,
        clock=None,
        timeout_us=None,
    ):
        if gain not in _GAINS:
            raise ValueError("gain must be 1, 2, 64 or 128")
        if rate_sps not in (10, 80):
            raise ValueError("rate_sps must be 10 or 80")
        self.dout = pin_dout
        self.sclk = pin_sclk
        self.clock = clock
        self.gain = gain
        self.rate_sps = rate_sps
        self.timeout_us = timeout_us if timeout_us else 3 * 1000000 // rate_sps
        self.counts = 0
        self.status = LOAD_NOT_READY
        self.missing = False
        # the first conversion may take a while after power-up: count from construction
        self._last_ok = clock.ticks_us() if clock is not None else None
        g0, g1 = _GAINS[gain]
        if pin_gain0 is not None:
            pin_gain0.value(g0)
        if pin_gain1 is not None:
            pin_gain1.value(g1)
        if pin_speed is not None:
            pin_speed.value(1 if rate_sps == 80 else 0)
        self.sclk.value(0)
        if pin_pdwn is not None:
            pin_pdwn.value(1)

    def ready(self):
        return self.dout.value() == 0

    def read(self):
        now = self.clock.ticks_us() if self.clock is not None else None
        if not self.ready():
            if now is not None and self._last_ok is not None:
                self.missing = self.clock.ticks_diff(now, self._last_ok) > self.timeout_us
            elif self._last_ok is None:
                self.missing = True
            self.status = LOAD_NOT_READY
            return self.counts
        sclk = self.sclk
        dout = self.dout
        v = 0
        for _ in range(24):
            sclk.value(1)
            sclk.value(0)
            v = (v << 1) | dout.value()
        sclk.value(1)  # 25th pulse: DOUT high until the next conversion
        sclk.value(0)
        self._last_ok = now
        self.missing = False
        self.status = load_status(v)
        self.counts = v - 0x1000000 if v & 0x800000 else v
        return self.counts
