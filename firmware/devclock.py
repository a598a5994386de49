"""The device clock as the wire sees it: a u32 of microseconds that wraps at 2**32.

A u32 does not fit a small int on 32-bit ports (31 bits) and the HAL's ticks_us wraps at a
port-specific period (2**30 on boards, 2**62 on the unix port). So the firmware keeps the
time as `t30` (0 .. 2**30 - 1, always a small int) plus a 2-bit `epoch`, advanced from
ticks_diff of successive readings (any ticks period works). A u32 field is packed as t30
and then `epoch << 6` is OR-ed into its top byte: no big int is ever built (not even
t30 + d at the wrap: the sum is compared before it is formed). The uptime in ms (STATUS)
is kept the same way: `ms30` and `ms_ep6`.
The loop must read the clock at least every 2**29 us (9 minutes).
"""

from micropython import const

_M30 = const(0x3FFFFFFF)  # 2**30 itself is a big int on 32-bit ports: never written here


class DevClock:
    def __init__(self, clock):
        self.clock = clock
        self.raw = clock.ticks_us()
        self.t30 = 0
        self.epoch = 0
        self.ep6 = 0  # epoch << 6, OR into the top byte of a packed u32
        self.ms30 = 0  # uptime in ms, low 30 bits
        self.ms_ep6 = 0  # its top 2 bits << 6
        self._us_frac = 0

    def update(self):
        """Read the HAL clock once; returns the raw ticks (for deadlines)."""
        clock = self.clock
        now = clock.ticks_us()
        d = clock.ticks_diff(now, self.raw)
        if d < 0:
            d = 0
        self.raw = now
        # t30 + d wraps when d > room (not _M30 - t30 + 1: that is 2**30, a big int, at t30 0)
        room = _M30 - self.t30
        if d > room:
            self.t30 = d - room - 1
            self.epoch = (self.epoch + 1) & 3
            self.ep6 = self.epoch << 6
        else:
            self.t30 += d
        f = self._us_frac + d
        if f >= 1000:
            k = f // 1000
            f -= k * 1000
            room = _M30 - self.ms30
            if k > room:
                self.ms30 = k - room - 1
                self.ms_ep6 = (self.ms_ep6 + 64) & 0xC0
            else:
                self.ms30 += k
        self._us_frac = f
        return now

    @property
    def ms(self):
        """Uptime in ms (low 30 bits; allocates nothing)."""
        return self.ms30

    def wire_us(self):
        """Current time as a Python int u32 (allocates on 32-bit ports: not for hot paths)."""
        return (self.epoch << 30) | self.t30
