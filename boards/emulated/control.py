"""The emulator's control channel: JSON messages on a UDP port on 127.0.0.1.

The launcher sends sensor faults (`{"loadcell": "glitch"}`, `{"clear": true}`, ...), and the
world's clock commands (`{"hold_at_us": N}`, `{"release": true}`). The board looks at the
channel every 20 ms of device time, and at once while its clock waits at a barrier.
"""

import json

_EVERY_US = 20000


class Control:
    def __init__(self, port, apply):
        """`apply(msg)` handles one decoded message (a dict)."""
        self.sock = None
        self.apply = apply
        self.next_us = 0
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
