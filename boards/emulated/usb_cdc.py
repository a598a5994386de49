"""The emulated board's USB CDC: the host link over the process's stdin/stdout.

Same interface as firmware/drivers/stdio_link.StdioLink (`readinto(buf)` returns at once with
what is waiting, `write(buf, n)`), plus what the virtual clock needs to know about the host:
- every byte received renews the host lease (`clock.host_input()`), and is priced by the
  cost model;
- `write` blocks while the launcher is not taking output (the host is not reading): that is
  flow control, and device time does not move meanwhile;
- `HostWaiter.wait_us` lets the clock wait in wall time for host input or for a message on
  the emulator's control channel (sensor faults, hold/release), whichever comes first.
"""

import select
import sys
import time


class UsbCdc:
    def __init__(self, clock, cost):
        self.rx = sys.stdin.buffer
        self.tx = sys.stdout.buffer
        self.clock = clock
        self.cost = cost
        self.poll = select.poll()
        self.poll.register(self.rx, select.POLLIN)
        self._one = bytearray(1)
        self.bytes_in = 0
        self.bytes_out = 0

    def readinto(self, buf):
        n = 0
        size = len(buf)
        one = self._one
        while n < size and self._avail():
            if not self.rx.readinto(one, 1):
                break
            buf[n] = one[0]
            n += 1
        if n:
            self.bytes_in += n
            clock = self.clock
            clock.host_input()
            if self.cost.rx_byte_us:
                clock.charge(n * self.cost.rx_byte_us)
        return n

    def _avail(self):
        for _ in self.poll.ipoll(0):  # ipoll reuses its result tuple: no allocation
            return True
        return False

    def write(self, buf, n):
        r = self.tx.write(buf, n)
        if r:
            self.bytes_out += r
        c = self.cost
        if c.tx_call_us:
            self.clock.charge(c.tx_us(n))
        return r


class HostWaiter:
    """Waits in wall time until host input is there or a control message was handled."""

    def __init__(self, control):
        self.control = control
        self.poll = select.poll()
        self.poll.register(sys.stdin.buffer, select.POLLIN)
        if control is not None and control.sock is not None:
            self.poll.register(control.sock, select.POLLIN)

    def wait_us(self, us):
        """True when host input is waiting; False on timeout or after a control message."""
        ctrl = self.control
        for obj, ev in self.poll.ipoll((us + 999) // 1000):
            if ctrl is not None and obj is ctrl.sock:
                ctrl.poll_now()
                return False
            if ev & select.POLLIN:
                return True
            # the launcher closed our stdin (it is going away): nothing will come
            time.sleep_ms(10)
            return False
        return False
