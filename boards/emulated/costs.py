"""What the board's work costs in device time: the emulated board's CPU model.

The virtual clock (`clock.py`) charges these prices as the firmware touches the hardware, so
a board that has more to do than its CPU allows falls behind its sample slots exactly as a
real one would: the firmware flags and counts the missed slots. The work the emulator itself
does (the plant, the fake parts, the MicroPython VM on a PC) is never charged.

`ideal`: every price is 0; device time moves only when the firmware sleeps. Sample times are
then exactly on their slots and a session is reproducible to the byte.

`rp2040`: a 125 MHz RP2040 running the official rp2 port, calibrated from what was measured
for this firmware on that port (../shared/rp2-firmware/README.md and REAL_BOARDS.md; one
Cortex-M0+ instruction taken as one cycle at 125 MHz):
- a pass of the firmware's loop: 60-70 k instructions, 520 us, charged as the pass begins
  (the emulated board's main.py tells the clock; clock reads are free, as `time.ticks_us()`
  nearly is on a Pico: pricing the pass at its clock read charged a second pass for every
  extra read, the HX711 driver's and the interrogator's);
- a record: 70-100 k instructions, 680 us, charged at the sensor reads that make it (an elec
  record reads two ADCs, a temp record one, a load record the newest PIO FIFO word: 680 us
  with the words it discards at 160 us each);
- the interrogator's lines are parsed with one Python call per byte: 11 queued lines took
  18.1 ms, about 45 us per byte;
- a command byte goes through the frame reader one Python call at a time: about 25 us;
- a link write: about 40 us per call plus 0.1 us per byte copied into the USB buffer.
"""


class CostModel:
    def __init__(self, name, pass_us, adc_read_us, fifo_read_us, uart_byte_us,
                 rx_byte_us, tx_call_us, tx_byte_us_x10):
        self.name = name
        self.pass_us = pass_us
        self.adc_read_us = adc_read_us
        self.fifo_read_us = fifo_read_us  # a PIO FIFO word the driver discards
        # the word a load record is made of: the record's price (680 us on rp2040, as a pass
        # and a FIFO word were when the driver's clock read was priced as a pass)
        self.load_word_us = pass_us + fifo_read_us if fifo_read_us else 0
        self.uart_byte_us = uart_byte_us
        self.rx_byte_us = rx_byte_us
        self.tx_call_us = tx_call_us
        self.tx_byte_us_x10 = tx_byte_us_x10  # tenths of a us per byte (integer arithmetic)

    def tx_us(self, n):
        return self.tx_call_us + n * self.tx_byte_us_x10 // 10


MODELS = {
    "ideal": CostModel("ideal", 0, 0, 0, 0, 0, 0, 0),
    "rp2040": CostModel("rp2040", 520, 340, 160, 45, 25, 40, 1),  # fifo: a discarded word
}


def cost_model(name):
    m = MODELS.get(name or "ideal")
    if m is None:
        raise ValueError("cpu must be one of " + ", ".join(sorted(MODELS)) + ": " + str(name))
    return m
