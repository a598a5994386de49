"""FBG interrogator in analog-output mode: one voltage per grating, read by an ADC.

The interrogator maps each grating's wavelength linearly onto its output range; the board
calibration gives, per channel, the wavelength at 0 counts (`offset_fm`) and the slope
(`fm_per_count`, read_u16 counts). peak[g] = offset_fm[g] + raw * fm_per_count[g], in
machine integers: the slope is split into whole fm per count plus a fraction over 256, so
no product exceeds 30 bits (raw * slope * 256 in one product wraps a 32-bit word on a board).
Peaks are kept as 16-bit halves in `peaks` (array "H", the little-endian bytes of one i32
per grating; `peak_fm(g)` reads one). A reading pinned at the rail (raw <= rail or
>= 65535 - rail) means the peak left the interrogator's window: bit g of `status` is set
("lost") and 0 fm is reported.
"""

from array import array

from firmware.fastops import halves, linear_fm, value_at

_DEN = 256


class FbgAnalog:
    def __init__(self, adcs, offset_fm, fm_per_count, rail=16):
        self.adcs = adcs
        self.self_paced = False
        n = len(adcs)
        self.n_gratings = n
        self.offset = halves(offset_fm)
        slope = [int(round(s * _DEN)) for s in fm_per_count]
        for s in slope:
            if s < 0 or s >= (1 << 14) * _DEN:
                raise ValueError("fm_per_count must be in [0, 16384)")
        self.whole = array("i", [s // _DEN for s in slope])
        self.frac = array("i", [s % _DEN for s in slope])
        self.raws = array("i", [0] * n)
        self.peaks = array("H", [0] * (2 * n))
        self.status = 0
        self.t_us = 0
        self.rail = rail

    def peak_fm(self, g):
        return value_at(self.peaks, g)

    def poll(self, t_us):
        """Sample every channel now; always True (the sampler paces this stream)."""
        st = 0
        raws = self.raws
        hi = 65535 - self.rail
        for g in range(self.n_gratings):
            r = self.adcs[g].read_u16()
            raws[g] = r
            if r <= self.rail or r >= hi:
                st |= 1 << g
        linear_fm(raws, self.peaks, self.offset, self.whole, self.frac, _DEN, self.n_gratings)
        if st:
            for g in range(self.n_gratings):
                if st & (1 << g):
                    self.peaks[2 * g] = 0
                    self.peaks[2 * g + 1] = 0
        self.status = st
        self.t_us = t_us
        return True
