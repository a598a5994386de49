"""The host link over the USB-CDC REPL stream (sys.stdin/sys.stdout), without allocation.

- `readinto(buf)` returns at once with the bytes already waiting (select.poll, 1 byte per
  readinto so it never blocks).
- `write(buf, n, off=0)` writes what fits of buf[off:off + n] without waiting for the host:
  nothing unless the port is writable (POLLOUT: the CDC transmit buffer has room), and at
  most `CHUNK` bytes (one USB packet) per call; returns the count taken. A rp2 CDC write
  blocks while the host holds the port open without reading (up to 500 ms a call) and its
  transmit buffer is 256 B, smaller than a sample frame: firmware/link.py keeps the rest.
  A write can still wait for the host only when it stops reading in the middle of a chunk.
- `wait(us)`: sleep up to `us`, returning early when host input arrives (the loop's idle).
Ctrl-C handling is switched off by the application (micropython.kbd_intr(-1)), not here.
"""

import select
import sys
import time

CHUNK = 64


class StdioLink:
    def __init__(self):
        self.rx = sys.stdin.buffer
        self.tx = sys.stdout.buffer
        self.poll = select.poll()
        self.poll.register(self.rx, select.POLLIN)
        self.wpoll = select.poll()
        self.wpoll.register(sys.stdout, select.POLLOUT)
        self._one = bytearray(1)

    def readinto(self, buf):
        n = 0
        size = len(buf)
        one = self._one
        while n < size and self._avail():
            if not self.rx.readinto(one, 1):
                break
            buf[n] = one[0]
            n += 1
        return n

    def _avail(self):
        for _ in self.poll.ipoll(0):  # ipoll reuses its result tuple: no allocation
            return True
        return False

    def _writable(self):
        for _ in self.wpoll.ipoll(0):
            return True
        return False

    def write(self, buf, n, off=0):
        if n <= 0 or not self._writable():
            return 0
        k = self.tx.write(buf, off, n if n < CHUNK else CHUNK)
        return k if k else 0

    def wait(self, us):
        """Idle up to `us` microseconds; returns early when host input is waiting."""
        ms = us // 1000
        if ms:
            for _ in self.poll.ipoll(ms):
                return
        r = us - ms * 1000
        if r > 0:
            time.sleep_us(r)
