"""Virtual device time: the emulated board's clock follows the board's progress, not the wall.

Device time is an integer count of microseconds that advances only by
- `sleep_us(n)`: exactly n (the firmware's loop sleeping until its next deadline), and
- `charge(us)`: the work the board did, priced by the cost model (`costs.py`; nothing on the
  ideal board).

So a busy host machine slows the emulated world down but never makes the board skip a
sample slot, and the same inputs at the same device times give the same samples.

Parts that work on their own schedule (the HX711 converting, the interrogator sweeping) are
timers on this clock: `fire()` runs at exactly their `next_us` as device time passes it, so
what they measure depends only on device time, never on when the firmware looks.

Three things tie device time to the wall clock, and each can only hold device time back:
- Pacing: with `speed` S the clock runs at most S times faster than wall time (S = 0 means
  `max`: no pacing). A board that falls behind (busy machine, blocked link) re-bases instead
  of catching up in a burst: the achieved speed drops, nothing is skipped.
- Flow control: a write to the host blocks while the host is not reading (the launcher stops
  reading the board's output), and device time does not advance while it blocks.
- Barriers, where device time stops until something happens on the wall side:
  - the host lease: device time runs at most 7/8 of the firmware's watchdog timeout past the
    last byte received from a host, so a host that heartbeats is never latched however slow
    its heartbeat is in wall time (the last 1/8 covers work priced by the cost model, which
    may overrun a barrier). The SDK beats each time it sees a quarter of the watchdog go
    by: the board runs on without waiting as long as a heartbeat's round trip through the
    host takes less than 5/8 of the watchdog in device time (a lease of half the watchdog
    left only 1/4, and a board at a few thousand device seconds per wall second stopped at
    the lease every few milliseconds). A host silent for HOST_GONE_MS of wall time is gone (as
    if its cable were pulled): the lease is lifted until it speaks again, and the watchdog
    then fires on device time exactly as on a real board.
  - a hold (`hold_at_us`, lifted by the control channel's "release"): the world stops at a
    chosen device time, for instance to start a waveform at the same device time in two runs.
  While stopped at a barrier the board still answers the link, at the frozen device time.

`ticks_us()` wraps at 2**30 like the ports of real boards, so the firmware's wrap handling is
exercised; `now_us()` is the unwrapped device time that the plant and the fake parts use.
Nothing here allocates on the 64-bit unix port (all values are small ints).
"""

import time

from micropython import const

_T30_MASK = const(0x3FFFFFFF)
_T29 = const(0x20000000)
NO_LIMIT = const(1 << 60)
HOST_GONE_MS = const(6000)
LEASE_PER_MILLE = const(875)  # the host lease, in thousandths of the watchdog timeout
_CATCH_UP_US = const(100000)  # behind the pace by more than this (wall): re-base
_MIN_WAIT_US = const(1000)  # pacing waits shorter than this are deferred, not slept


class _Wall:
    """Unwrapped wall-clock microseconds from ticks_us (time_ns allocates on the unix port).
    Read at least every 2**29 us (9 min) to stay exact; a longer gap only upsets pacing."""

    def __init__(self):
        self.last = time.ticks_us()
        self.us = 0

    def now(self):
        w = time.ticks_us()
        d = time.ticks_diff(w, self.last)
        self.last = w
        if d > 0:
            self.us += d
        return self.us


_wall = _Wall()
wall_us = _wall.now


class VirtualClock:
    def __init__(self, speed=0.0, cost=None, hold_at_us=-1):
        self.t = 0
        self.cost = cost
        self.pass_us = cost.pass_us if cost is not None else 0
        self.num = int(round(speed * 1000)) if speed > 0 else 0  # 0: unpaced (max)
        self.den = 1000
        self.base_t = 0
        self.base_wall = wall_us()
        self.io = None  # waits for host input or control messages: see usb_cdc.HostWaiter
        self.safety = None  # the firmware's Safety: its watchdog sets the host lease
        self.hold_at = hold_at_us if hold_at_us >= 0 else NO_LIMIT
        self.lease_end = NO_LIMIT
        self.limit = self.hold_at
        self.barrier_waits = 0  # times device time stopped at a barrier (diagnostics)
        self.timers = []
        self.next_event = NO_LIMIT

    def add_timer(self, timer):
        """`timer.next_us` is when `timer.fire()` runs next; fire() moves next_us on."""
        self.timers.append(timer)
        self._next_event()

    def _next_event(self):
        nxt = NO_LIMIT
        tl = self.timers
        i = 0
        while i < len(tl):  # no iterator object: this runs under the firmware's heap lock
            t = tl[i].next_us
            if t < nxt:
                nxt = t
            i += 1
        self.next_event = nxt

    def _move(self, target):
        """Device time to `target`, firing every timer due on the way, in time order."""
        while self.next_event <= target:
            if self.next_event > self.t:
                self.t = self.next_event
            tl = self.timers
            i = 0
            while i < len(tl):
                tm = tl[i]
                if tm.next_us <= self.t:
                    tm.fire()
                i += 1
            self._next_event()
        self.t = target

    # ---- reading ---------------------------------------------------------------------
    def now_us(self):
        return self.t

    def ticks_us(self):
        return self.t & _T30_MASK

    def ticks_ms(self):
        return (self.t // 1000) & _T30_MASK

    def ticks_diff(self, a, b):
        return ((a - b + _T29) & _T30_MASK) - _T29

    def ticks_add(self, a, d):
        return (a + d) & _T30_MASK

    # ---- advancing -------------------------------------------------------------------
    def pass_begins(self):
        """A pass of the firmware's loop begins: the cost model's price of one (main.py)."""
        self._move(self.t + self.pass_us)

    def charge(self, us):
        """Work the board did: device time moves on by `us` (no barrier check: a few
        microseconds of work may overrun a barrier; the next sleep stops at it)."""
        self._move(self.t + us)

    def sleep_ms(self, n):
        self.sleep_us(n * 1000)

    def sleep_us(self, n):
        """Sleep n device us, or less when host input arrives while paced or at a barrier."""
        if n <= 0:
            return
        target = self.t + n
        while target > self.limit:
            if self.t < self.limit:
                if self._pace_to(self.limit, True):
                    return
            self.barrier_waits += 1
            if self._wait_at_barrier():
                return  # input at the barrier: the firmware handles it at this device time
        self._pace_to(target, True)

    def _pace_to(self, target, wake_on_input):
        """Move device time to `target` no faster than the pace; True when host input cut
        the wait short (device time is then where the input arrived). (Split in three so
        that each frame fits MicroPython's C stack: a bigger one is taken from the heap at
        every pass of the firmware's loop.)"""
        if self.num:
            ahead = self._ahead_us(target)
            if ahead >= _MIN_WAIT_US:
                io = self.io
                if wake_on_input and io is not None:
                    if io.wait_us(ahead):
                        self._move_to_input(target)
                        return True
                else:
                    time.sleep_us(ahead)
        self._move(target)
        return False

    def _ahead_us(self, target):
        """Wall microseconds until device time `target` is due at the pace."""
        num = self.num
        den = self.den
        w = wall_us()
        due = self.base_wall + (target - self.base_t) * den // num
        if w - due > _CATCH_UP_US + (target - self.t) * den // num:
            # far behind the pace: start a new one from here, do not burst to catch up
            self.base_t = self.t
            self.base_wall = w
            due = w + (target - self.t) * den // num
        return due - w

    def _move_to_input(self, target):
        """Host input arrived while waiting for `target`: device time to where it came."""
        t_in = self.base_t + (wall_us() - self.base_wall) * self.num // self.den
        if t_in < self.t:
            t_in = self.t
        self._move(t_in if t_in < target else target)

    # ---- barriers --------------------------------------------------------------------
    def _set_limit(self):
        self.limit = self.hold_at if self.hold_at < self.lease_end else self.lease_end

    def host_input(self):
        """Bytes from the host arrived (now): renew the host lease."""
        s = self.safety
        if s is not None:
            self.lease_end = self.t + s.watchdog_ms * LEASE_PER_MILLE
            self._set_limit()

    def hold(self, at_us):
        self.hold_at = at_us if at_us >= 0 else NO_LIMIT
        self._set_limit()

    def release(self):
        self.hold(-1)

    def _wait_at_barrier(self):
        """Wait in wall time at the barrier; True when host input is there to handle."""
        io = self.io
        if io is None:  # nobody can lift the barrier: do not deadlock
            self.lease_end = self.hold_at = NO_LIMIT
            self._set_limit()
            return False
        if self.hold_at <= self.lease_end:
            # held: wait for input or a release (the control channel), as long as it takes
            got = io.wait_us(100000)
        else:
            got = io.wait_us(HOST_GONE_MS * 1000)
            if not got:
                # the host has been silent for HOST_GONE_MS of wall time: it is gone
                self.lease_end = NO_LIMIT
                self._set_limit()
        # the time spent waiting is not the board being slow: start a new pace
        self.rebase()
        return got

    def rebase(self):
        """Forget the pace so far (after waiting at a barrier or on a blocked link)."""
        self.base_t = self.t
        self.base_wall = wall_us()
