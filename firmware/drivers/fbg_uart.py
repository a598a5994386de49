"""FBG interrogator streaming peak wavelengths over a UART.

Line format (ASCII, one line per spectrum sweep):

    #P <seq> <nm> <nm> ...\\n        e.g.  "#P 1042 1529.98312 1550.10455\\n"

`seq` is the interrogator's sweep counter (decimal, ignored except for being skipped), the
peaks are wavelengths in nm with up to 6 decimals (1 fm resolution), in any order, any
number (up to `max_peaks`). Any other line (banners, "#E ..." errors) is ignored; a line
longer than the buffer is dropped.

Peaks are mapped to gratings by wavelength window: grating g is the first peak inside
windows_fm[g] = (lo_fm, hi_fm). A grating with no peak in its window is reported as 0 fm
with bit g set in `status` ("lost"). Peaks are kept as 16-bit halves in `peaks` (array "H":
the little-endian bytes of one i32 per grating); `peak_fm(g)` reads one.

Every line is delivered, one per `poll` call, oldest first. A poll that finds its queue
empty parses what the UART holds into it (up to `_QUEUE` lines: a loop that looked again
only after a stall of several line periods gets each of the lines that came meanwhile, not
just the newest); each further poll hands over the next queued line, without reading the
UART. `backlog` says how many newer lines are still queued behind the one in `peaks` (the
sampler uses it: such a line came at least one interrogator period before the newest).
When more lines than `_QUEUE` came between two polls the oldest are overwritten and counted
in `overrun`. The set is timestamped with the `t_us` given to the `poll` that delivered it.

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
_QUEUE = const(8)  # lines kept between two polls: 80 ms of a 100 Hz interrogator
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
        # parsed lines not yet delivered: a ring of peak sets. Delivering one swaps its
        # array with `peaks` (no copy, no allocation); the old `peaks` array becomes the slot
        self._q = [array("H", [0] * (2 * self.n_gratings)) for _ in range(_QUEUE)]
        self._qst = array("H", [0] * _QUEUE)
        self._qi = 0  # the oldest queued line
        # lines queued; after a poll that delivered one: the lines behind it (newer than it)
        self.backlog = 0
        self.overrun = 0  # lines overwritten in the queue before delivery (wraps at 2**30)
        self._found = array("H", [0] * (2 * max_peaks))
        self._max_peaks = max_peaks
        self._line = bytearray(_LINE_MAX + _CHUNK)
        self._n = 0  # bytes of the current (incomplete) line held in _line
        self._overflow = False
        self._chunk = bytearray(_CHUNK)

    def peak_fm(self, g):
        return value_at(self.peaks, g)

    def poll(self, t_us):
        """Deliver the oldest line not yet delivered into `peaks` and `status` (reading the
        UART first when none is queued); True when there was one."""
        if not self.backlog:
            self._read()
            if not self.backlog:
                return False
        i = self._qi
        q = self._q
        p = q[i]
        q[i] = self.peaks
        self.peaks = p
        self.status = self._qst[i]
        self._qi = i + 1 if i + 1 < _QUEUE else 0
        self.backlog -= 1
        self.t_us = t_us
        return True

    def _read(self):
        """Parse what the UART held on entry into the queue."""
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
                else:
                    self._line_done(n)
                i = j + 1

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
        qn = self.backlog
        if qn == _QUEUE:  # full: the oldest line gives way
            i = self._qi
            self._qi = i + 1 if i + 1 < _QUEUE else 0
            qn -= 1
            self.overrun = self.overrun + 1 if self.overrun < 0x3FFFFFFF else 0
        k = self._qi + qn
        if k >= _QUEUE:
            k -= _QUEUE
        self._qst[k] = map_windows(self._found, npk, self.lo, self.hi, self._q[k], self.n_gratings)
        self.backlog = qn + 1
        self.lines = self.lines + 1 if self.lines < 0x3FFFFFFF else 0
        return True
