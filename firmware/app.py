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

import gc

from firmware.commands import Commands
from firmware.cpu_budget import cpu_overload
from firmware.devclock import DevClock
from firmware.edge_timing import EdgeTiming
from firmware.hello import hello_payload
from firmware.link import Link
from firmware.safety import Safety
from firmware.sampler import Sampler
from firmware.vguard import MIN_US as GUARD_MIN_US
from firmware.vguard import VoltageGuard
from firmware.waveform import Waveform
from protocol import defs

try:
    import micropython
except ImportError:  # pragma: no cover
    micropython = None

STATUS_PERIOD_US = 1000000
MAX_SLEEP_US = 1000000  # the loop sleeps until its next deadline, at most this long
_LINK_RETRY_US = 1000  # while the link's outbox holds bytes, look again after this
_M30 = 0x3FFFFFFF
# Garbage collection. The steady state (sampling, waveforms, heartbeats, STATUS) allocates
# nothing, so the heap stays still and no collection interrupts sampling. Commands with
# arguments, events with new floats and the HELLO leave a little garbage: it is collected
# when the loop has at least `gc_slack_us` to spare before its next deadline (a collection
# took 16 ms on a Pico), when nothing is streamed, no waveform runs and the host's commands
# paused for GC_QUIET_US, when streaming starts, or at once when less than 1/4 of the heap
# was left at the last STATUS.
# gc.mem_free() and gc.mem_alloc() each scan the whole allocation table (about 9 ms apiece on
# the rp2 VM with its 240 KiB heap), longer than a 100 Hz sample period: the loop never
# calls them per pass. STATUS measures heap_free only while not streaming (at 1 Hz it made
# the default streams skip a sample or two every second); while streaming it repeats the
# last measurement (the steady state allocates nothing), and the low-heap check reuses it.
GC_SLACK_US = 20000
GC_MAX_DEFER_US = 30000000  # collect anyway this long after garbage was made
GC_QUIET_US = 50000  # idle: collect once no garbage-making command came for this long


def _kbd_intr(c):
    if micropython is not None and hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(c)


class App(EdgeTiming):
    def __init__(self, definition, hal, max_sleep_us=MAX_SLEEP_US):
        hal.source.off()  # first thing: no current until a command asks for it
        _kbd_intr(-1)  # a 0x03 in binary traffic must not raise KeyboardInterrupt
        self.wdt = getattr(hal, "wdt", None)  # hardware watchdog: fed every pass
        self._wait = getattr(hal.link, "wait", None) or hal.clock.sleep_us
        self.definition = definition
        self.hal = hal
        self.limits = definition["limits"]
        self.calib = definition["calibration"]
        self.source = hal.source
        self.clock = hal.clock
        self.max_sleep_us = max_sleep_us
        self.dc = DevClock(hal.clock)
        self.link = Link(hal.link, hal.clock)
        self.rx_tick = hal.clock.ticks_us()  # raw ticks the link was last read at
        cfg = definition["streams"]
        rates = [cfg[n]["rate_hz"] for n in defs.STREAM_NAMES]
        enabled = [cfg[n]["enabled"] for n in defs.STREAM_NAMES]
        self.sampler = Sampler(
            hal,
            self.link,
            self.dc,
            rates,
            enabled,
            max_latency_us=int(definition.get("max_latency_us", defs.SAMPLE_FLUSH_US)),
        )
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
        self.vguard = VoltageGuard(cal)
        self.commands = Commands(self)
        self.interlock = None  # stack-pressure window: made by the first SET_INTERLOCK
        self.derate = None  # current derating by pressure rate: made by the first SET_DERATE
        self.press_hold = None  # stack-pressure hold: made by the first SET_PRESS_HOLD
        self.gc_slack_us = int(definition.get("gc_slack_us", GC_SLACK_US))
        self.gc_due = False
        self.gc_since = 0
        self.gc_last = 0  # when the newest garbage was made (a command's arrival)
        self.gc_collections = 0
        self.gc_forced = 0
        self.heap_free = 0  # at the last STATUS (a heap scan: see GC_SLACK_US)
        self.heap_low = 0  # below this many bytes free, collect without waiting for slack
        self.foreign_seen = 0
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
        why = cpu_overload(self.limits, self.sampler)
        if why:
            self.link.log(defs.LOG_WARNING, "default stream rates: " + why)
        self.collect()  # boot garbage out of the way before sampling starts
        self.heap_free = gc.mem_free()
        self.heap_low = (self.heap_free + gc.mem_alloc()) // 4  # once: the heap's size / 4

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
        if not s.streaming:
            self.heap_free = self.hal.heap_free()
        self.link.status(
            self.dc.ms30,
            self.dc.ms_ep6,
            self.link.frames_sent,
            s.dropped,  # samples only: a control frame the board drops takes a seq
            self.link.reader.bad_frames,
            self.heap_free,
            self.state(),
            self.safety.cause,
            self.waveform.setpoint_a,
        )

    def set_streaming(self, on):
        on = bool(on)
        if on != self.sampler.streaming:
            if on and self.gc_due:
                # the commands that set the stream up left garbage, and the default
                # streams leave no 20 ms of slack while streaming: a collection deferred
                # until then would stall the loop past a sample slot (rp2 VM: 16-20 ms)
                self.collect()
                self.dc.update()
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

    # ---- memory --------------------------------------------------------------------
    def note_garbage(self):
        """Something allocated (a command, a HELLO): collect at the next slack."""
        self.gc_last = self.dc.raw
        if not self.gc_due:
            self.gc_due = True
            self.gc_since = self.gc_last

    def collect(self):
        gc.collect()
        self.gc_due = False
        self.gc_collections = self.gc_collections + 1 if self.gc_collections < _M30 else 0

    def _gc_check(self, now, wait):
        """Collect the garbage a command left when the loop has slack for it: `wait` to
        spare, or nothing a pause could spoil (no stream sent, no waveform, no guard).
        True when it collected: the pass then ends without sleeping, as `wait` is stale."""
        if not self.gc_due:
            return False
        if wait >= self.gc_slack_us or self._gc_idle(now):
            self.collect()
            return True
        if self.clock.ticks_diff(now, self.gc_since) >= GC_MAX_DEFER_US:
            self.collect()
            return True
        if self.heap_free < self.heap_low:  # under 1/4 of the heap left at the last STATUS
            self.heap_free = self.heap_low  # until the next STATUS measures it again
            self.gc_forced = self.gc_forced + 1 if self.gc_forced < _M30 else 0
            self.collect()
            return True
        return False

    def _gc_idle(self, now):
        # nothing a pause could spoil, and the host's commands have paused: the next one
        # of a burst (set up, then start a waveform) would wait out the collection, and a
        # watchdog fed by it would latch that much later than the host counts
        if self.sampler.streaming or self.waveform.running or self.vguard.active:
            return False
        return self.clock.ticks_diff(now, self.gc_last) >= GC_QUIET_US

    # ---- the loop ------------------------------------------------------------------
    # One pass is split into methods of a few locals each: MicroPython gives a function
    # whose locals and value stack exceed 11 words its frame from the heap at every call (a
    # search of the allocation table, and garbage that brings the next collection closer),
    # on a Pico as on the unix port. tests/firmware/test_hot_frames.py keeps them small.
    def step(self):
        """One loop iteration; False once the application should leave."""
        if self.wdt is not None:
            self.wdt.feed()
        now = self.dc.update()
        if self.waveform.running:
            now = self._edge_before_link(now)
        if self._link_in():
            # a pass that handled commands (a waveform's decoding, the collection as
            # streaming starts: 10-20 ms on a Pico) goes on, and sleeps, from the time now:
            # from its start it overslept by that much (rp2 VM: the first elec and load
            # slots of each streaming run skipped). Other passes keep their start's reading:
            # read again at the sleep, a due part's re-poll (1/16 period) passed during a
            # pass and the loop polled back to back (rp2 VM: CPU 0.40 -> 0.50)
            now = self.dc.update()
        if not self.running:
            return self._leave()
        if self.waveform.running:
            now = self._edges_first(now)
        due = self.sampler.poll(now)
        # the output as this pass's readings saw it: a cutoff, the interlock or the derating
        # may switch it off below, and the safety checks must still judge a reading taken
        # with current flowing as such (a voltage past the window latches even when the
        # same reading also ended the step on its cutoff)
        output_on = self.source.on
        if self.vguard.active:
            self._guard_reading(now, output_on)
        if self.waveform.running:
            now = self._edge_if_due(now)
        self._judge(now, output_on)
        if self.clock.ticks_diff(now, self.next_status) >= 0:
            self._status_due(now)
        self._sleep(now, due)
        return True

    def _link_in(self):
        """Commands in (the outbox pumped first); the number of command frames handled."""
        link = self.link
        link.pump()
        # what is read below was there by now, however long the pump's writes took (a
        # command that came during them was counted from the pass's start, before it
        # existed: the rp2 VM's 0.2 s watchdog latched 3-23 ms early)
        self.rx_tick = self.clock.ticks_us()
        handled = link.poll_commands(self._handle)
        if link.reader.foreign_version and not self.foreign_seen:
            self.foreign_seen = link.reader.foreign_version
            link.log(
                defs.LOG_ERROR,
                "the host speaks protocol version %d; this board speaks protocol version %d"
                % (self.foreign_seen, defs.PROTOCOL_VERSION),
            )
        return handled

    def _guard_reading(self, now, output_on):
        """The voltage guard's reading between elec samples, when it is due."""
        smp = self.sampler
        vg = self.vguard
        if not smp.fresh & 4 and vg.due(self.clock, now):
            vg.taken()
            if self.waveform.running and output_on:
                smp.read_elec(now)

    def _judge(self, now, output_on):
        """The closed loops, the waveform's cutoffs and the safety checks on this pass's
        fresh readings."""
        smp = self.sampler
        wfm = self.waveform
        fresh = smp.fresh
        if self.interlock is not None:
            self.interlock.step(wfm, now, smp)
        if self.derate is not None:
            self.derate.step(wfm, smp)
        if self.press_hold is not None:
            self.press_hold.step(self, now, smp)
        if fresh & 2 and wfm.running:
            wfm.fbg_tick(now)  # an adaptive rest's strain criterion (issue 14)
        if wfm.running and fresh & 4:
            wfm.tick(now, 4)  # charge and voltage limits on the fresh elec reading
        self._safety(now, output_on)
        if fresh & 4:
            if not (wfm.running and self.source.on):
                self.vguard.idle()
            elif smp.period_us[2] > GUARD_MIN_US:  # a faster stream needs no guard readings
                self._plan_guard(now, smp)
        smp.fresh = 0

    def _safety(self, now, output_on):
        cause = self.safety.check(self.clock, now, self.sampler, output_on, self.waveform.running)
        if self.safety.new_sensor_fault >= 0:
            self._sensor_event()
        if cause and not self.safety.latched:
            self.latch(cause)
        elif cause and self.source.on:
            self.source.off()

    def _sensor_event(self):
        safety = self.safety
        s = safety.new_sensor_fault
        safety.new_sensor_fault = -1
        raw = self.sampler.load_counts if s == 0 else self.sampler.temp_raw
        self.event(defs.EV_SENSOR_FAULT, defs.CAUSE_SENSOR_FAULT, s, raw)

    def _status_due(self, now):
        clock = self.clock
        self.next_status = clock.ticks_add(self.next_status, STATUS_PERIOD_US)
        if clock.ticks_diff(now, self.next_status) >= 0:
            self.next_status = clock.ticks_add(now, STATUS_PERIOD_US)
        self.send_status()

    def _sleep(self, now, due):
        """Sleep until the next deadline (the link wakes the loop early when a command
        arrives, where the HAL can): no periodic wake-ups when nothing is due."""
        clock = self.clock
        wait = clock.ticks_diff(due, now)
        if self.waveform.running:
            wait = self._waveform_wait(now, wait)
        vg = self.vguard
        if vg.active:
            d = clock.ticks_diff(vg.due_at, now)
            if d < wait:
                wait = d
        d = clock.ticks_diff(self.next_status, now)
        if d < wait:
            wait = d
        if self.link.busy() and wait > _LINK_RETRY_US:
            wait = _LINK_RETRY_US
        if wait > self.max_sleep_us:
            wait = self.max_sleep_us
        if self._gc_check(now, wait):
            return
        if wait > 0:
            self._wait(wait)

    def _plan_guard(self, now, smp):
        """The voltage guard's next reading: towards the nearer of the waveform's cutoff
        and the safety window (and the source's compliance)."""
        safety = self.safety
        plan = self.waveform.plan
        lo = safety.win_lo
        hi = safety.win_hi
        c = safety.compliance_raw[1]
        if c < hi:
            hi = c
        if plan.v_lo_raw is not None and plan.v_lo_raw > lo:
            lo = plan.v_lo_raw
        if plan.v_hi_raw is not None and plan.v_hi_raw < hi:
            hi = plan.v_hi_raw
        self.vguard.plan(
            self.clock, now, smp.v_raw, smp.elec_dt_us, lo, hi, self.sampler.period_us[2]
        )

    def _leave(self):
        self.source.off()
        if self.exit_action == "repl":
            self.hal.enter_repl()
        elif self.exit_action == "reset":
            self.hal.reset()
        return False

    def run(self):
        """The loop until ENTER_REPL/RESET; every way out (exceptions included) switches
        the output off first."""
        try:
            while self.step():
                pass
        finally:
            self.source.off()


def run(board, hal=None, max_sleep_us=MAX_SLEEP_US):
    """Start the firmware for a board module (DEFINITION + make_hal()); returns the App
    after it left its loop (ENTER_REPL). An exception anywhere (boot included) switches the
    output off before it propagates; on a board with a hardware watchdog the board then
    resets."""
    if hal is None:
        hal = board.make_hal()
    try:
        app = App(board.DEFINITION, hal, max_sleep_us)
        app.run()
    finally:
        hal.source.off()
    return app
