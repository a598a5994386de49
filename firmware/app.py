"""The application: boot, then one loop that services the link, samples, runs the
waveform and the safety checks, and sleeps until the next deadline.

Start it from a board module (see boards/README.md):

    import board
    from firmware.app import run
    run(board)                 # builds board.make_hal(); returns after ENTER_REPL

or, when the caller already built the HAL (the emulated board's launcher, the tests):

    app = App(board.DEFINITION, hal)   # current off, HELLO, EV_BOOT
    while app.step(): pass              # or app.run()
"""

from firmware.commands import Commands
from firmware.devclock import DevClock
from firmware.hello import hello_payload
from firmware.link import Link
from firmware.safety import Safety
from firmware.sampler import Sampler
from firmware.waveform import Waveform
from protocol import defs

try:
    import micropython
except ImportError:  # pragma: no cover
    micropython = None

STATUS_PERIOD_US = 1000000


def _kbd_intr(c):
    if micropython is not None and hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(c)


class App:
    def __init__(self, definition, hal, max_sleep_us=2000):
        hal.source.off()  # first thing: no current until a command asks for it
        _kbd_intr(-1)  # a 0x03 in binary traffic must not raise KeyboardInterrupt
        self.definition = definition
        self.hal = hal
        self.limits = definition["limits"]
        self.calib = definition["calibration"]
        self.source = hal.source
        self.clock = hal.clock
        self.max_sleep_us = max_sleep_us
        self.dc = DevClock(hal.clock)
        self.link = Link(hal.link, hal.clock)
        cfg = definition["streams"]
        rates = [cfg[n]["rate_hz"] for n in defs.STREAM_NAMES]
        enabled = [cfg[n]["enabled"] for n in defs.STREAM_NAMES]
        self.sampler = Sampler(hal, self.link, self.dc, rates, enabled)
        cal = self.calib
        i_zero = int(round(-cal.get("amps_offset_a", 0.0) / cal["amps_per_count"]))
        self.safety = Safety(
            self.limits, cal, i_zero, int(self.limits.get("default_watchdog_ms", 5000))
        )
        self.waveform = Waveform(
            hal.source,
            self.link,
            self.dc,
            hal.clock,
            self.sampler,
            i_zero,
            abs(cal["amps_per_count"]),
        )
        self.commands = Commands(self)
        self.area_m2 = 0.0
        self.running = True
        self.exit_action = None
        now = self.dc.update()
        self.safety.fed(now)
        self.next_status = self.clock.ticks_add(now, STATUS_PERIOD_US)
        self._handle = self.commands.handle  # bound once: no allocation per loop
        self.send_hello()
        self.event(defs.EV_BOOT, defs.CAUSE_BOOT, 0, 0.0)
        self.set_streaming(definition.get("stream_at_boot", False))

    # ---- outgoing ------------------------------------------------------------------
    def event(self, code, cause, index, value):
        self.link.event(self.dc.t30, self.dc.epoch, code, cause, index, value)

    def send_hello(self):
        uid = self.hal.unique_id()
        self.link.send_hello(
            hello_payload(self.definition, self.sampler, uid, self.source.amps_per_lsb)
        )

    def state(self):
        if self.safety.latched:
            return defs.STATE_LATCHED
        return defs.STATE_RUNNING if self.waveform.running else defs.STATE_IDLE

    def send_status(self):
        s = self.sampler
        self.link.status(
            self.dc.ms & 0x3FFFFFFF,
            self.link.frames_sent & 0x3FFFFFFF,
            (s.dropped + self.link.control_dropped) & 0x3FFFFFFF,
            self.link.reader.bad_frames & 0x3FFFFFFF,
            self.hal.heap_free(),
            self.state(),
            self.safety.cause,
            self.waveform.setpoint_a,
        )

    def set_streaming(self, on):
        on = bool(on)
        if on != self.sampler.streaming:
            self.sampler.set_streaming(on)
            self.event(defs.EV_STREAMING, 0, 1 if on else 0, 0.0)

    # ---- safety --------------------------------------------------------------------
    def latch(self, cause):
        self.source.off()
        self.waveform.stop(cause)
        self.source.off()
        self.safety.latched = True
        self.safety.cause = cause
        self.link.latched = True
        self.event(defs.EV_STOP_LATCHED, cause, 0, 0.0)

    def clear_fault(self):
        self.safety.latched = False
        self.safety.cause = defs.CAUSE_NONE
        self.link.latched = False
        self.event(defs.EV_FAULT_CLEARED, 0, 0, 0.0)

    # ---- leaving -------------------------------------------------------------------
    def enter_repl(self):
        self.waveform.stop(defs.CAUSE_HOST_STOP)
        self.source.off()
        self.sampler.set_streaming(False)
        self.running = False
        self.exit_action = "repl"

    def reset(self):
        self.waveform.stop(defs.CAUSE_HOST_STOP)
        self.source.off()
        self.running = False
        self.exit_action = "reset"

    # ---- the loop ------------------------------------------------------------------
    def step(self):
        """One loop iteration; False once the application should leave."""
        clock = self.clock
        now = self.dc.update()
        self.link.poll_commands(self._handle)
        if not self.running:
            return self._leave()
        smp = self.sampler
        due = smp.poll(now)
        wfm = self.waveform
        fresh = smp.fresh
        if wfm.running:
            wfm.tick(now, fresh & 4)
        safety = self.safety
        cause = safety.check(clock, now, smp, self.source.on, wfm.running)
        if safety.new_sensor_fault >= 0:
            s = safety.new_sensor_fault
            safety.new_sensor_fault = -1
            raw = smp.load_counts if s == 0 else smp.temp_raw
            self.event(defs.EV_SENSOR_FAULT, defs.CAUSE_SENSOR_FAULT, s, raw)
        if cause and not safety.latched:
            self.latch(cause)
        elif cause and self.source.on:
            self.source.off()
        smp.fresh = 0
        if clock.ticks_diff(now, self.next_status) >= 0:
            self.next_status = clock.ticks_add(self.next_status, STATUS_PERIOD_US)
            if clock.ticks_diff(now, self.next_status) >= 0:
                self.next_status = clock.ticks_add(now, STATUS_PERIOD_US)
            self.send_status()
        # sleep until the next deadline, at most max_sleep_us (to see commands promptly)
        wait = clock.ticks_diff(due, now)
        t = wfm.next_tick(now) if wfm.running else None
        if t is not None:
            d = clock.ticks_diff(t, now)
            if d < wait:
                wait = d
            # the watchdog is a deadline too: a silent host is latched on time, not at the
            # next sample
            d = safety.watchdog_wait_us(clock, now)
            if d < wait:
                wait = d
        d = clock.ticks_diff(self.next_status, now)
        if d < wait:
            wait = d
        if wait > self.max_sleep_us:
            wait = self.max_sleep_us
        if wait > 0:
            clock.sleep_us(wait)
        return True

    def _leave(self):
        if self.exit_action == "repl":
            self.hal.enter_repl()
        elif self.exit_action == "reset":
            self.hal.reset()
        return False

    def run(self):
        while self.step():
            pass


def run(board, hal=None, max_sleep_us=2000):
    """Start the firmware for a board module (DEFINITION + make_hal()); returns the App
    after it left its loop (ENTER_REPL)."""
    if hal is None:
        hal = board.make_hal()
    app = App(board.DEFINITION, hal, max_sleep_us)
    app.run()
    return app
