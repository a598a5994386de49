"""The host link over the USB-CDC REPL stream (sys.stdin/sys.stdout), without allocation.

`readinto(buf)` returns at once with the bytes already waiting (select.poll, 1 byte per
readinto so it never blocks); `write(buf, n)` writes the first n bytes. Ctrl-C handling is
switched off by the application (micropython.kbd_intr(-1)), not here.
"""

import select
import sys


class StdioLink:
    def __init__(self):
        self.rx = sys.stdin.buffer
        self.tx = sys.stdout.buffer
        self.poll = select.poll()
        self.poll.register(self.rx, select.POLLIN)
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

    def write(self, buf, n):
        return self.tx.write(buf, n)
