"""The emulated board's USB CDC: the host link over the process's stdin/stdout.

Same interface as firmware/drivers/stdio_link.StdioLink (`readinto(buf)` returns at once with
what is waiting, `write(buf, n, off=0)` takes what fits), plus what the virtual clock needs
to know about the host:
- every byte received renews the host lease (`clock.host_input()`), and is priced by the
  cost model;
- `write` models a rp2 USB CDC as the firmware sees it: a 256-byte transmit buffer that the
  host drains at USB full speed (TX_DRAIN_B_PER_MS, in device time). A write takes what
  fits in that buffer and returns the count (0 when full) without waiting, so a 526-byte
  sample frame always goes out in parts, as on a Pico. The fill level is a function of
  device time and of the bytes written only: deterministic. While device time stands at a
  barrier (a hold, the host lease) the host still reads: the buffer is then empty;
- the bytes taken are written to the launcher at once. That pipe write blocks while the
  launcher is not taking output (the host is not reading): that is the emulator's flow
  control, invisible to the board: device time does not move meanwhile and nothing is lost;
- `HostWaiter.wait_us` lets the clock wait in wall time for host input or for a message on
  the emulator's control channel (sensor faults, hold/release), whichever comes first.
"""

import os
import select
import sys
import time


TX_BUFFER = 256  # bytes: the rp2 port's CDC transmit buffer
TX_DRAIN_B_PER_MS = 1000  # host drain in device time (USB full speed, about 1 MB/s)


class UsbCdc:
    def __init__(self, clock, cost):
        self.rx = sys.stdin.buffer
        self.tx = sys.stdout.buffer
        self.clock = clock
        self.cost = cost
        self.poll = select.poll()
        self.poll.register(self.rx, select.POLLIN)
        self._one = bytearray(1)
        # the launcher's pipe does not block (board_process.py): read what is there in one
        # call. On a blocking stdin (a terminal) readinto would wait for a full buffer, so
        # it is polled and read a byte at a time
        self.nonblocking = os.getenv("STRESSRIG_EMU_STDIN_NONBLOCKING") == "1"
        self.bytes_in = 0
        self.bytes_out = 0
        self.tx_fill = 0  # bytes in the modelled transmit buffer
        self.tx_t = clock.now_us()  # device time of the last drain update
        self.tx_full = 0  # writes that found the buffer full (diagnostics)

    def readinto(self, buf):
        if self.nonblocking:
            n = self.rx.readinto(buf) or 0  # None: nothing waiting; 0: the end
        else:
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

    def write(self, buf, n, off=0):
        t = self.clock.now_us()
        drained = (t - self.tx_t) * TX_DRAIN_B_PER_MS // 1000
        self.tx_t = t
        fill = self.tx_fill - drained
        clock = self.clock
        if fill < 0 or t >= clock.limit:
            # (at a barrier, a hold or the host lease, device time stands still while the
            # host goes on reading in wall time: the buffer has drained)
            fill = 0
        k = TX_BUFFER - fill
        if k > n:
            k = n
        if k <= 0:
            self.tx_fill = fill
            self.tx_full += 1
            return 0
        w = 0
        while w < k:  # blocks while the launcher holds back: flow control, not device time
            r = self.tx.write(buf, off + w, k - w)
            if r:
                w += r
        self.tx_fill = fill + k
        self.bytes_out += k
        c = self.cost
        if c.tx_call_us:
            self.clock.charge(c.tx_us(k))
        return k


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
