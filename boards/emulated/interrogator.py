"""The FBG interrogator behind the emulated board's UART.

It sweeps at its own rate on device time and prints one `#P seq nm nm ...\n` line per sweep
into the UART's receive buffer, as a real interrogator on a serial line would; the firmware's
`FbgUart` driver parses the lines. Reading bytes costs the board `cost.uart_byte_us` each.
"""

try:
    from hw import _relock, _unlock
except ImportError:  # imported as a package from CPython
    from boards.emulated.hw import _relock, _unlock


class InterrogatorUART:
    """UART fed by an emulated FBG interrogator sweeping at `rate_hz` of device time.

    Every sweep becomes a line in the UART's receive buffer (RX_BUF bytes, as the port's
    rxbuf); when the firmware falls behind and the buffer is full, further lines are lost
    as on a real port. Sweep n happens at device time n / rate.
    """

    RX_BUF = 1024

    def __init__(self, hw, rate_hz):
        self.hw = hw
        self.period_us = int(1000000 // rate_hz) if rate_hz > 0 else 0
        self.next_us = self.period_us if self.period_us else 1 << 60
        self.seq = 0
        self.buf = bytearray(self.RX_BUF)
        self.line = bytearray(200)
        self.n = 0
        self.pos = 0
        self.overflows = 0
        self.byte_us = hw.cost.uart_byte_us
        if self.period_us:
            hw.clock.add_timer(self)

    def fire(self):
        """Sweep number seq + 1 happens now: its line goes into the receive buffer."""
        t_sweep = self.next_us
        self.next_us = t_sweep + self.period_us
        self.seq += 1
        if self.hw.faults.get("fbg_silent"):
            return
        n = _unlock()  # the interrogator is not the board: its work may allocate
        try:
            self._receive(self.hw.fbg_line(self.seq, self.line, t_sweep))
        finally:
            _relock(n)

    def _receive(self, k):
        if self.pos:  # compact what the firmware has not read yet
            b = self.buf
            m = self.n - self.pos
            p = self.pos
            for i in range(m):
                b[i] = b[p + i]
            self.n = m
            self.pos = 0
        if self.n + k > self.RX_BUF:
            self.overflows += 1  # the UART's receive buffer is full: the line is lost
            return
        self.buf[self.n : self.n + k] = self.line[:k]
        self.n += k

    def any(self):
        return self.n - self.pos

    def readinto(self, buf, nbytes=-1):
        k = self.n - self.pos
        m = len(buf) if nbytes < 0 else nbytes
        if k > m:
            k = m
        b = self.buf
        p = self.pos
        for i in range(k):
            buf[i] = b[p + i]
        self.pos = p + k
        if k and self.byte_us:
            self.hw.clock.charge(k * self.byte_us)
        return k if k else None

    def read(self, n=-1):
        k = self.n - self.pos
        if 0 <= n < k:
            k = n
        out = bytes(self.buf[self.pos : self.pos + k])
        self.pos += k
        return out
