# ruff: noqa: F821  (PIO assembler names are injected by rp2.asm_pio)
"""HX711 24-bit bridge ADC (load cell).

Two ways to talk to the chip, chosen by the constructor:
- `sm`: an rp2.StateMachine-like object running `hx711_pio_program()` (RP2040). Its RX FIFO
  holds one 24-bit word per conversion; the gain pulse count (25/26/27 clocks in total) is
  written to its TX FIFO as "extra pulses - 1" and picked up at the next conversion.
- otherwise `pin_dout`/`pin_sck` machine.Pin objects, bit-banged (ESP32-S3, emulation).

Gain: channel A 128 (25 clocks) or 64 (27 clocks), channel B 32 (26 clocks).
Rate: 10 or 80 SPS on the RATE pin (optional `pin_rate`, else strapped on the board).

After every `read()`, `status` holds protocol LOAD_* bits:
- LOAD_NOT_READY: no conversion ready; when the chip stays silent for `timeout_us`
  (three conversion periods by default) it is considered missing; counts repeat the last.
- LOAD_GLITCH: the raw word is one of the 2**n - 1 patterns with 16 <= n <= 22 that a
  disturbed read produces; counts are reported as read, the host decides. 0xFFFFFF is -1
  count, a legitimate reading near zero, not a glitch.
- LOAD_SATURATED: the raw word is the ADC's full scale, 0x7FFFFF or 0x800000. The force is
  at or beyond what the chip can measure: the safety check treats it as over-force.

PIO: the RX FIFO holds 4 words. A chip running slightly faster than the stream fills it,
and the oldest word is then several conversions old. `read()` drains the FIFO and keeps
the newest word; `discarded` counts the older words it dropped (a small int: it wraps at
2**30). The program pushes with `block`: when the FIFO is full the state machine waits
instead of dropping the newest conversion (`noblock` kept the stale words and threw the
fresh one away).
"""

from micropython import const

from protocol.defs import LOAD_GLITCH, LOAD_NOT_READY, LOAD_SATURATED

_PULSES = {128: 1, 32: 2, 64: 3}  # extra clocks after the 24 data clocks
_MIN_GLITCH_BITS = const(16)


def hx711_pio_program():
    """The PIO program (import rp2 lazily so this file compiles for any target).

    Side-set drives SCK, `in` pin 0 is DOUT. Y holds the extra-pulse count - 1; a new count
    can be put in the TX FIFO at any time (pull noblock keeps the old one when it is empty).
    """
    import rp2

    @rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW, in_shiftdir=rp2.PIO.SHIFT_LEFT)
    def prog():
        wrap_target()
        mov(x, y).side(0)
        pull(noblock).side(0)
        mov(y, osr).side(0)
        wait(0, pin, 0).side(0)
        set(x, 23).side(0)
        label("bit")
        nop().side(1)[3]
        in_(pins, 1).side(0)[2]
        jmp(x_dec, "bit").side(0)
        push(block).side(0)
        mov(x, y).side(0)
        label("gain")
        nop().side(1)[3]
        jmp(x_dec, "gain").side(0)[3]
        wrap()

    return prog


def is_glitch(raw24):
    """True for 2**n - 1 with 16 <= n <= 22 (0xFFFF ... 0x3FFFFF). Not 0xFFFFFF (-1 count,
    legitimate) nor 0x7FFFFF (positive full scale: saturated, see is_saturated)."""
    if raw24 & (raw24 + 1):  # not of the form 2**n - 1
        return False
    return (1 << _MIN_GLITCH_BITS) - 1 <= raw24 <= 0x3FFFFF


def is_saturated(raw24):
    """True at the 24-bit full scale: 0x7FFFFF (positive) or 0x800000 (negative)."""
    return raw24 == 0x7FFFFF or raw24 == 0x800000


def load_status(raw24):
    """Protocol LOAD_* bits of a raw 24-bit word that was read."""
    if raw24 == 0x7FFFFF or raw24 == 0x800000:
        return LOAD_SATURATED
    return LOAD_GLITCH if is_glitch(raw24) else 0


class HX711:
    def __init__(
        self,
        pin_dout=None,
        pin_sck=None,
        gain=128,
        rate_sps=10,
        pin_rate=None,
        sm=None,
        clock=None,
        timeout_us=None,
    ):
        if gain not in _PULSES:
            raise ValueError("gain must be 128, 64 or 32")
        if rate_sps not in (10, 80):
            raise ValueError("rate_sps must be 10 or 80")
        self.dout = pin_dout
        self.sck = pin_sck
        self.sm = sm
        self.clock = clock
        self.rate_sps = rate_sps
        self.timeout_us = timeout_us if timeout_us else 3 * 1000000 // rate_sps
        self.counts = 0
        self.status = LOAD_NOT_READY
        self.missing = False
        self.discarded = 0  # PIO: older FIFO words dropped for a newer one
        # the first conversion may take a while after power-up: count from construction
        self._last_ok = clock.ticks_us() if clock is not None else None
        if pin_rate is not None:
            pin_rate.value(1 if rate_sps == 80 else 0)
        if self.sck is not None:
            self.sck.value(0)
        self.set_gain(gain)

    def set_gain(self, gain):
        if gain not in _PULSES:
            raise ValueError("gain must be 128, 64 or 32")
        self.gain = gain
        self._pulses = _PULSES[gain]
        if self.sm is not None:
            self.sm.put(self._pulses - 1)

    def ready(self):
        if self.sm is not None:
            return self.sm.rx_fifo() > 0
        return self.dout.value() == 0

    def _shift_in(self):
        sck = self.sck
        dout = self.dout
        v = 0
        for _ in range(24):
            sck.value(1)
            sck.value(0)
            v = (v << 1) | dout.value()
        for _ in range(self._pulses):
            sck.value(1)
            sck.value(0)
        return v

    def read(self):
        """Signed counts of the latest conversion; sets `status`. Never waits."""
        now = self.clock.ticks_us() if self.clock is not None else None
        if not self.ready():
            st = LOAD_NOT_READY
            if now is not None and self._last_ok is not None:
                self.missing = self.clock.ticks_diff(now, self._last_ok) > self.timeout_us
            elif self._last_ok is None:
                self.missing = True
            self.status = st
            return self.counts
        sm = self.sm
        if sm is not None:
            # keep the newest conversion: the older words in the FIFO are stale
            n = sm.rx_fifo()
            while n > 1:
                sm.get()
                n -= 1
                self.discarded = self.discarded + 1 if self.discarded < 0x3FFFFFFF else 0
            raw = sm.get() & 0xFFFFFF
        else:
            raw = self._shift_in()
        self._last_ok = now
        self.missing = False
        self.status = load_status(raw)
        self.counts = raw - 0x1000000 if raw & 0x800000 else raw
        return self.counts

    def power_down(self):
        if self.sck is not None:
            self.sck.value(1)
