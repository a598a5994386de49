"""FBG interrogator streaming peak wavelengths over a UART.

Line format (ASCII, one line per spectrum sweep):

    #P <seq> <nm> <nm> ...\\n        e.g.  "#P 1042 1529.98312 1550.10455\\n"

`seq` is the interrogator's sweep counter (decimal, ignored except for being skipped), the
peaks are wavelengths in nm with up to 6 decimals (1 fm resolution), in any order, any
number (up to `max_peaks`). Any other line (banners, "#E ..." errors) is ignored; a line
longer than the buffer is dropped.

Peaks are mapped to gratings by wavelength window: grating g is the first peak inside
windows_fm[g] = (lo_fm, hi_fm). A grating with no peak in its window is reported as 0 fm
with bit g set in `status` ("lost"). The set is timestamped with the `t_us` given to the
`poll` call in which its newline arrived. Peaks are kept as 16-bit halves in `peaks`
(array "H": the little-endian bytes of one i32 per grating); `peak_fm(g)` reads one.

Parsing is bulk, in place, allocation-free: the UART is read in chunks, each chunk is
copied into the line buffer with one kernel call, newlines are found with bytearray.find
(C), and each complete line is parsed by one kernel call (viper on boards). A Python call
per byte cost 45 us a byte on a Pico: 11 queued lines took 18 ms.
"""

from array import array

from micropython import const

from firmware.fastops import copy_bytes, halves, map_windows, parse_peaks, value_at

_LINE_MAX = const(160)
_CHUNK = const(64)
_NL = b"\n"


class FbgUart:
    def __init__(self, uart, windows_fm, max_peaks=16):
        self.uart = uart
        self.self_paced = True  # lines arrive at the interrogator's pace: poll every loop
        self.n_gratings = len(windows_fm)
        self.lo = halves([w[0] for w in windows_fm])
        self.hi = halves([w[1] for w in windows_fm])
        self.peaks = array("H", [0] * (2 * self.n_gratings))
        self.status = (1 << self.n_gratings) - 1
        self.t_us = 0
        self.lines = 0
        self.bad_lines = 0
        self._found = array("H", [0] * (2 * max_peaks))
        self._max_peaks = max_peaks
        self._line = bytearray(_LINE_MAX + _CHUNK)
        self._n = 0  # bytes of the current (incomplete) line held in _line
        self._overflow = False
        self._chunk = bytearray(_CHUNK)

    def peak_fm(self, g):
        return value_at(self.peaks, g)

    def poll(self, t_us):
        """Read what the UART holds; True when a new peak set is in `peaks`."""
        got = False
        uart = self.uart
        chunk = self._chunk
        line = self._line
        # Bounded work per call: only what the UART held on entry. Draining `while
        # uart.any()` never ends when lines arrive faster than this loop parses them, and
        # the sampler must get back to the other streams and to the commands.
        left = uart.any()
        while left > 0:
            k = uart.readinto(chunk, left if left < _CHUNK else _CHUNK)
            if not k:
                break
            left -= k
            i = 0
            while i < k:
                j = chunk.find(_NL, i, k)
                end = k if j < 0 else j
                m = end - i
                if self._n + m > _LINE_MAX:
                    self._overflow = True
                elif m:
                    copy_bytes(line, self._n, chunk, i, m)
                    self._n += m
                if j < 0:
                    break
                n = self._n
                self._n = 0
                if self._overflow:
                    self._overflow = False
                    self.bad_lines += 1
                elif self._line_done(n):
                    self.t_us = t_us
                    got = True
                i = j + 1
        return got

    def _line_done(self, n):
        line = self._line
        if n < 3 or line[0] != 35 or line[1] != 80 or line[2] != 32:  # "#P "
            return False
        i = 3
        while i < n and line[i] == 32:
            i += 1
        while i < n and 48 <= line[i] <= 57:  # skip seq
            i += 1
        npk = parse_peaks(line, i, n, self._found, self._max_peaks)
        if npk < 0:
            self.bad_lines += 1
            return False
        self.status = map_windows(self._found, npk, self.lo, self.hi, self.peaks, self.n_gratings)
        self.lines += 1
        return True
