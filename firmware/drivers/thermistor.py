"""NTC thermistor in a divider, beta equation, read through an ADC (read_u16).

Divider: Vref - R_series - ADC node - NTC - GND when `ntc_low=True` (default), else the NTC
is on the high side. 1/T = 1/T0 + ln(R/R0)/beta. The conversion is a 257-point table built
at construction and interpolated in integers, so `to_mdegc` never allocates. Raw readings
within `rail` counts of 0 or 65535 mean open or shorted: `to_mdegc` returns None.
"""

import math
from array import array

_N = 256


class Thermistor:
    def __init__(
        self,
        adc,
        beta=3950.0,
        r0_ohm=10000.0,
        t0_c=25.0,
        r_series_ohm=10000.0,
        ntc_low=True,
        rail=64,
    ):
        self.adc = adc
        self.rail = rail
        self.beta = beta
        self.r0 = r0_ohm
        self.t0_c = t0_c
        self.rs = r_series_ohm
        self.ntc_low = ntc_low
        tab = array("i", [0] * (_N + 1))
        for k in range(_N + 1):
            raw = min(max(k * 256, 1), 65534)
            tab[k] = int(round(self.mdegc_exact(raw)))
        self._tab = tab

    def mdegc_exact(self, raw):
        """Float reference conversion (allocates; used to build the table and in tests)."""
        x = raw / 65535.0
        if self.ntc_low:
            r = self.rs * x / (1.0 - x)
        else:
            r = self.rs * (1.0 - x) / x
        inv_t = 1.0 / (self.t0_c + 273.15) + math.log(r / self.r0) / self.beta
        return (1.0 / inv_t - 273.15) * 1000.0

    def read_raw(self):
        return self.adc.read_u16()

    def to_mdegc(self, raw):
        if raw <= self.rail or raw >= 65535 - self.rail:
            return None
        k = raw >> 8
        f = raw & 0xFF
        t = self._tab
        return t[k] + (((t[k + 1] - t[k]) * f) >> 8)
