"""The emulator's control channel: JSON messages on a UDP port on 127.0.0.1.

The launcher sends sensor faults (`{"loadcell": "glitch"}`, `{"clear": true}`, ...), and the
world's clock commands (`{"hold_at_us": N}`, `{"release": true}`). The board looks at the
channel every 20 ms of device time but at most once a millisecond of wall time, and at once
while its clock waits at a barrier. (At speed max 20 ms of device time is about 10 us of
wall time: a look that finds nothing costs a system call and an exception; a sampling
profile put about a tenth of the board's time there on the seed001 streams. The messages
come from the wall-time side, so a millisecond of wall time is all the later they act.)
"""

import json

try:
    from clock import wall_us
except ImportError:  # imported as a package from CPython (the plant's tests)
    import time

    def wall_us():
        return time.monotonic_ns() // 1000

_EVERY_US = 20000
_WALL_EVERY_US = 1000


class Control:
    def __init__(self, port, apply):
        """`apply(msg)` handles one decoded message (a dict)."""
        self.sock = None
        self.apply = apply
        self.next_us = 0
        self.wall_at = 0
        if port:
            import socket

            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            s.setblocking(False)
            self.sock = s

    def poll(self, t_us):
        if self.sock is None or t_us < self.next_us:
            return
        self.next_us = t_us + _EVERY_US
        w = wall_us()
        if w - self.wall_at < _WALL_EVERY_US:
            return
        self.wall_at = w
        self.poll_now()

    def poll_now(self):
        while True:
            try:
                # recv: one datagram. MicroPython's stream readinto keeps reading until the
                # buffer is full, so two messages sent back to back came out joined
                # ('{..}{..}'), failed to parse, and both were dropped.
                data = self.sock.recv(512)
            except OSError:
                return
            if not data:
                return
            try:
                msg = json.loads(data)
            except ValueError:
                continue
            self.apply(msg)
