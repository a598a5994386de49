"""An HX711 load-cell ADC on the emulated board, seen through its two pins or a PIO program.

The chip converts on its own device-time grid (10 or 80 SPS) whether or not anybody reads;
the counts come from the plant's stack force (hw.Hardware.load_counts). The bit-bang side
answers DOUT/PD_SCK as the datasheet says; the PIO side is an rp2.StateMachine look-alike
whose RX FIFO the PIO program fills with every conversion.
"""

from array import array

try:
    from hw import _relock, _unlock
except ImportError:  # imported as a package from CPython
    from boards.emulated.hw import _relock, _unlock

try:
    from plant import XorShift
except ImportError:  # imported as a package from CPython
    from boards.emulated.plant import XorShift

try:
    from parts import Pin
except ImportError:  # imported as a package from CPython
    from boards.emulated.parts import Pin


class HX711Chip:
    """An HX711 conversion timeline on device time (10 or 80 SPS), bit-bang or PIO side.

    A timer on the virtual clock: conversion k finishes at device time k / rate and is
    measured then (`fire`), whenever the firmware reads it."""

    def __init__(self, hw, rate_sps=10):
        self.hw = hw
        self.rate_sps = rate_sps
        self.period_us = 1000000 // rate_sps
        self.next_us = self.period_us
        self.ready_word = -1  # latched conversion not yet read (bit-bang side)
        self.word = 0
        self.bit = 0  # bits clocked out so far in the current read
        self.gain_pulses = 1
        self.rng = XorShift(hw.plant.rng_seed * 13 + 9)
        self.conversions = 0
        self.sm = None  # the PIO state machine reading every conversion, when fitted
        hw.clock.add_timer(self)

    def fire(self):
        t_conv = self.next_us
        self.next_us = t_conv + self.period_us
        faults = self.hw.faults
        if faults:  # a sensor fault is set (control channel): rare
            w = self._faulted(t_conv, faults)
            if w < 0:
                return
        else:  # (load_counts lifts the firmware's heap lock itself)
            w = self.hw.load_counts(t_conv // self.period_us, t_conv)
        self.conversions += 1
        if self.sm is not None:
            self.sm.push(w)
        else:
            self.ready_word = w  # a newer conversion overwrites one nobody read

    def _faulted(self, t_conv, faults):
        """The conversion's word under the control channel's faults; -1: none (not ready).
        Apart from fire(): its frame would not fit MicroPython's C stack, and fire() runs at
        every conversion."""
        if faults.get("loadcell") == "not_ready":
            return -1
        w = self.hw.load_counts(t_conv // self.period_us, t_conv)
        n = _unlock()  # the chip is not the board: its glitch draw allocates a float
        try:
            g = faults.get("loadcell_glitch_rate")
            if faults.get("loadcell") == "glitch" or (g and self.rng.uniform() < float(g)):
                w = 0xFFFFFF
        finally:
            _relock(n)
        return w

    # bit-bang side: DOUT and PD_SCK
    def dout(self):
        if self.bit == 0:
            return 0 if self.ready_word >= 0 else 1
        if self.bit > 24:
            return 1
        return (self.word >> (24 - self.bit)) & 1

    def sck(self, v):
        if not v:
            return
        if self.bit == 0:
            if self.ready_word < 0:
                return
            self.word = self.ready_word
            self.ready_word = -1
        self.bit += 1
        if self.bit >= 24 + self.gain_pulses:
            self.bit = 0

    def pins(self, num_dout=0, num_sck=1):
        return Pin(num_dout, reader=self.dout), Pin(num_sck, on_change=self.sck)


class StateMachine:
    """rp2.StateMachine look-alike running the HX711 PIO program: RX FIFO of 24-bit words.

    The PIO program reads every conversion as it completes, whether or not the CPU looks,
    and pushes it without blocking: a full FIFO drops the new word."""

    def __init__(self, chip, depth=4):
        self.chip = chip
        self.depth = depth
        self.active_ = False
        self.fifo = array("l", [0] * depth)  # ring buffer: no allocation per word
        self.head = 0
        self.count = 0
        self.overflows = 0
        chip.sm = self

    def active(self, v=None):
        if v is None:
            return self.active_
        self.active_ = bool(v)
        return None

    def put(self, v):
        self.chip.gain_pulses = (v & 3) + 1

    def push(self, word):
        if self.count >= self.depth:
            self.overflows += 1
            return
        self.fifo[(self.head + self.count) % self.depth] = word
        self.count += 1

    def rx_fifo(self):
        return self.count

    def get(self, buf=None, shift=0):
        clock = self.chip.hw.clock
        while not self.count:  # the PIO get blocks until a word comes
            clock.sleep_us(1000)
        cost = self.chip.hw.cost
        us = cost.fifo_read_us if self.count > 1 else cost.load_word_us  # (the newest: a record)
        if us:
            clock.charge(us)
        w = self.fifo[self.head]
        self.head = (self.head + 1) % self.depth
        self.count -= 1
        return w >> shift
