"""FBG interrogator in analog-output mode: one voltage per grating, read by an ADC.

The interrogator maps each grating's wavelength linearly onto its output range; the board
calibration gives, per channel, the wavelength at 0 counts (`offset_fm`) and the slope
(`fm_per_count`, read_u16 counts). peaks_fm[g] = offset_fm[g] + raw * fm_per_count[g],
computed in machine integers (slope kept as a fraction over 256). A reading pinned at the
rail (raw <= rail or >= 65535 - rail) means the peak left the interrogator's window: bit g
of `status` is set ("lost") and 0 fm is reported.
"""

from array import array

from firmware.fastops import linear_fm

_DEN = 256


class FbgAnalog:
    def __init__(self, adcs, offset_fm, fm_per_count, rail=16):
        self.adcs = adcs
        self.self_paced = False
        n = len(adcs)
        self.n_gratings = n
        self.offset = array("i", offset_fm)
        self.slope = array("i", [int(round(s * _DEN)) for s in fm_per_count])
        self.raws = array("i", [0] * n)
        self.peaks_fm = array("i", [0] * n)
        self.status = 0
        self.t_us = 0
        self.rail = rail

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
        linear_fm(raws, self.peaks_fm, self.offset, self.slope, _DEN, self.n_gratings)
        for g in range(self.n_gratings):
            if st & (1 << g):
                self.peaks_fm[g] = 0
        self.status = st
        self.t_us = t_us
        return True
