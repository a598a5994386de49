"""Waveform engine: rest, constant, pulse train, staircase, GITT, timed on the device clock.

A waveform is a sequence of phases; each phase has a setpoint code (or output off) and a
length. Phase boundaries are anchored to the previous boundary (not to when the loop got
round to it), so edges do not drift. Every phase change is an EV_EDGE event (index: pulse
or step number, value: amps applied, 0 when off), the start EV_WAVEFORM_START and the end
EV_WAVEFORM_END with its cause (completed, a cutoff, a host stop, a safety stop).

Shapes (times in integer us, held as split_us() pairs; codes from CurrentSource.quantise):
- REST: output off for `t_on` (0: until stopped), then completed.
- CONSTANT: output on at `code` until a cutoff or a stop.
- PULSE (pulse train and GITT): `count` times (1..65535) `t_on` at `code`, then `t_off`
  off (skipped when 0); completes after the last off phase.
- STAIRCASE: `count` steps; step j at start_a + j * step_a for `t_on` us, then off for
  `t_off` us (t_off 0: on for the whole dwell); completes after the last step.
Off phases open the output (enable off) so rests measure the open-circuit voltage.

Adaptive rests (firmware/loops/adaptive_rest.py): a plan with `settle` set ends a REST, or
a PULSE off phase, early when the cell has relaxed; its t_on (REST) or t_off (PULSE) is then
the maximum. Each adaptive rest ends with an EV_REST_END event (cause settled, strain_settled
or duration, index the pulse number, value the rest's length in ms) timed at the board's
decision; a strain criterion judges fresh FBG readings through `fbg_tick`.

Cutoffs are checked on every fresh cell-voltage/current reading, in raw ADC counts that
the command handler converted once: voltage window, charge passed (integrated |I| dt while
the output is on, in counts x 100 us, carried into a 2**20 high part so no int boxes), and
the duration.
"""

from micropython import const

from protocol import defs

REST = const(0)
CONSTANT = const(1)
PULSE = const(2)
STAIRCASE = const(3)

_CHUNK = const(0x10000000)  # 2**28 us: longest single ticks step (ticks_diff is +-2**29)
_CARRY_BITS = const(20)
_CARRY_MASK = const(0xFFFFF)
_M30 = const(0x3FFFFFFF)
_ZERO = (0, 0)
_FULL = const(1024)


def split_us(us):
    """Integer microseconds -> (chunks of 2**28 us, remainder): both small ints on any port
    (a duration of 10**12 us is a big int on a 32-bit board; split once, at the command)."""
    return (us >> 28, us & 0xFFFFFFF)


def pair_us(p):
    """(chunks, remainder) -> integer microseconds (allocates when large: not on hot paths)."""
    return (p[0] << 28) + p[1]


class Deadline:
    """A point a duration after `t`, for any length: the duration is (hi, lo) = hi chunks of
    2**28 us plus lo us, stepped through one chunk at a time (ticks_diff spans +-2**29 us
    on boards), every value a small int."""

    def __init__(self):
        self.t = 0
        self.hi = 0
        self.lo = 0
        self.active = False

    def start(self, clock, t, dur):
        self.t = t
        self.hi = dur[0]
        self.lo = dur[1]
        self.active = True

    def due(self, clock, now):
        if not self.active:
            return False
        while True:
            step = _CHUNK if self.hi else self.lo
            if clock.ticks_diff(now, self.t) < step:
                return False
            self.t = clock.ticks_add(self.t, step)
            if self.hi:
                self.hi -= 1
                if self.hi or self.lo:
                    continue
            self.lo = 0
            self.active = False
            return True

    def next_tick(self, clock):
        return clock.ticks_add(self.t, _CHUNK if self.hi else self.lo)


class Plan:
    """What a waveform command asks for, after validation and conversion."""

    def __init__(self):
        self.cmd_id = 0
        self.kind = REST
        self.code = 0
        self.amps = 0.0
        self.start_a = 0.0
        self.step_a = 0.0
        self.t_on = _ZERO  # phase lengths as split_us() pairs
        self.t_off = _ZERO
        self.count = 0
        self.v_lo_raw = None  # end when v_raw <= this
        self.v_hi_raw = None  # end when v_raw >= this
        self.charge_hi = -1  # -1: no charge cutoff
        self.charge_lo = 0
        self.duration = _ZERO  # split_us() pair; (0, 0): no duration cutoff
        self.settle = None  # adaptive_rest.Settle: rests end when the cell relaxed


class Waveform:
    def __init__(self, source, link, devclock, clock, sampler, i_zero_raw, amps_per_count):
        self.source = source
        self.link = link
        self.dc = devclock
        self.clock = clock
        self.sampler = sampler
        self.i_zero = i_zero_raw
        self.amps_per_count = amps_per_count
        self.running = False
        self.plan = None
        self.phase = Deadline()
        self.total = Deadline()
        self.on = False
        self.index = 0
        self.edges = 0
        self.setpoint_a = 0.0
        self.q_hi = 0
        self.q_lo = 0
        self.dt_rem = 0  # us of elec_dt_us not yet integrated (under one 100 us unit)
        self.suspended = False  # the pressure interlock paused it (firmware/loops/interlock.py)
        self.t_susp = 0
        self.code_on = 0  # the setpoint code of the current on phase (to resume it)
        self.scale_q = _FULL  # amplitude scale / 1024 (current derating by pressure rate)
        self.start_first = None  # EV_WAVEFORM_START's value until the first edge sends it

    # ---- control -----------------------------------------------------------------------
    def start(self, plan, now):
        self.plan = plan
        self.running = True
        self.index = 0
        self.edges = 0
        self.q_hi = 0
        self.q_lo = 0
        self.dt_rem = 0
        self.suspended = False
        first = plan.amps if plan.kind == CONSTANT or plan.kind == PULSE else 0.0
        if plan.kind == STAIRCASE:
            first = plan.start_a
        # EV_WAVEFORM_START goes out with the first phase's EV_EDGE, after the output has
        # switched: built before it, it made the pins switch 1-4 ms after its time on the
        # rp2 VM (both carry the time the clock was read just before the switch)
        self.start_first = first
        if plan.duration != _ZERO:
            self.total.start(self.clock, now, plan.duration)
        else:
            self.total.active = False
        self._enter(now, True)

    def stop(self, cause):
        """End the waveform now (output off); returns False when none was running."""
        if not self.running:
            self._output(False, 0)
            return False
        self._output(False, 0)
        self.running = False
        self.suspended = False
        self.phase.active = False
        self.total.active = False
        self._event(defs.EV_WAVEFORM_END, cause, self.edges & 0xFFFF, self.charge_c())
        return True

    def charge_c(self):
        # in floats: q_hi << 20 would be a big int on a 32-bit port past 2**10 carries
        unit = self.amps_per_count * 1e-4
        return self.q_hi * (unit * (1 << _CARRY_BITS)) + self.q_lo * unit

    def next_tick(self, now):
        """Raw ticks of the next deadline, or None."""
        if not self.running:
            return None
        t = None
        if self.phase.active and not self.suspended:  # a paused phase is not due
            t = self.phase.next_tick(self.clock)
        if self.total.active:
            u = self.total.next_tick(self.clock)
            if t is None or self.clock.ticks_diff(u, t) < 0:
                t = u
        return t

    # ---- the loop's entry point ----------------------------------------------------------
    def tick(self, now, elec_fresh):
        if not self.running:
            return
        if self.suspended:  # only the duration cutoff runs on (a bound on the whole step)
            if self.total.due(self.clock, now):
                self.stop(defs.CAUSE_DURATION)
            return
        if elec_fresh and self._on_elec(now):
            return
        if self.total.due(self.clock, now):
            self.stop(defs.CAUSE_DURATION)
            return
        while self.running and self.phase.due(self.clock, now):
            self._next_phase(now)

    def _on_elec(self, now):
        """A fresh elec reading: the charge and voltage cutoffs, an adaptive rest. True when
        it ended the step. (Apart from tick(): one frame of both would come from
        MicroPython's heap at every pass, see firmware/app.py.)"""
        smp = self.sampler
        plan = self.plan
        if self.on and self._charge(smp.i_raw, smp.elec_dt_us, plan):
            self.stop(defs.CAUSE_CHARGE)
            return True
        v = smp.v_raw
        if plan.v_lo_raw is not None and v <= plan.v_lo_raw:
            self.stop(defs.CAUSE_V_MIN)
            return True
        if plan.v_hi_raw is not None and v >= plan.v_hi_raw:
            self.stop(defs.CAUSE_V_MAX)
            return True
        st = plan.settle
        if st is not None and not self.on and st.update(v, now):
            st.settled(self, now)  # ends the rest: the next pulse, or the end
            return not self.running
        return False

    def _charge(self, i_raw, dt_us, plan):
        """The charge of one reading added; True once the charge cutoff is reached."""
        di = i_raw - self.i_zero
        if di < 0:
            di = -di
        # carry the sub-100 us remainder: truncating each period (1250 us -> 12 units) made
        # the charge cutoff late by up to 100 us per reading
        dt = dt_us + self.dt_rem
        self.dt_rem = dt % 100
        lo = self.q_lo + di * (dt // 100)
        self.q_hi += lo >> _CARRY_BITS
        self.q_lo = lo & _CARRY_MASK
        if plan.charge_hi < 0:
            return False
        return self.q_hi > plan.charge_hi or (
            self.q_hi == plan.charge_hi and self.q_lo >= plan.charge_lo
        )

    def fbg_tick(self, now):
        """A fresh FBG reading (the app loop): an adaptive rest's strain criterion judges it
        (firmware/loops/adaptive_rest.py); nothing else here looks at the FBG."""
        if not self.running or self.suspended or self.on:
            return
        st = self.plan.settle
        if st is not None and st.e is not None and st.update_strain(self.sampler.fbg, now):
            st.settled(self, now)

    # ---- phases ----------------------------------------------------------------------
    def _next_phase(self, now):
        plan = self.plan
        k = plan.kind
        if not self.on and plan.settle is not None:
            plan.settle.at_max(self)  # an adaptive rest reached its maximum
        if k == REST:
            self.stop(defs.CAUSE_COMPLETED)
            return
        if self.on and plan.t_off != _ZERO:
            self._enter(self.phase.t, False)
            return
        self.index += 1
        if plan.count and self.index >= plan.count:
            self.stop(defs.CAUSE_COMPLETED)
            return
        self._enter(self.phase.t, True)

    def _enter(self, t_start, on_phase):
        """Start a phase at raw ticks t_start (the previous boundary)."""
        plan = self.plan
        k = plan.kind
        if plan.settle is not None and (k == REST or not on_phase):
            plan.settle.start(t_start)
        if k == REST:
            self._output(False, 0)
            if plan.t_on != _ZERO:
                self.phase.start(self.clock, t_start, plan.t_on)
            else:
                self.phase.active = False
            self._edge(0.0)
            return
        if k == CONSTANT:
            self._output(True, plan.code)
            self.phase.active = False
            self._edge(self.setpoint_a)
            return
        if on_phase:
            code = plan.code
            if k == STAIRCASE:
                code = self.source.quantise(plan.start_a + self.index * plan.step_a)
            self._output(True, code)
            self.phase.start(self.clock, t_start, plan.t_on)
            self._edge(self.setpoint_a)
        else:
            self._output(False, 0)
            self.phase.start(self.clock, t_start, plan.t_off)
            self._edge(0.0)

    def _output(self, on, code):
        src = self.source
        if on:
            self.code_on = code
            q = self.scale_q
            if q != _FULL:  # derated (firmware/loops/derate.py): scale about the zero code
                z = src.zero_code
                src.set_code(z + (((code - z) * q) >> 10))
            else:
                src.set_code(code)
            src.enable(True)
            # Reuse the float made when the command was validated: on ports with boxed
            # floats a fresh one per pulse edge would allocate. Staircase steps change the
            # level, so they make one new float per step (every dwell, seconds apart).
            plan = self.plan
            self.setpoint_a = plan.amps if code == plan.code else src.code_to_amps(code)
            st = defs.ELEC_OUTPUT_ON
            if self.plan.kind == PULSE or self.plan.kind == STAIRCASE:
                st |= defs.ELEC_PULSE_ON
            if q != _FULL:
                st |= defs.ELEC_DERATED
            self.sampler.elec_state = st
        else:
            src.enable(False)
            self.setpoint_a = 0.0
            self.sampler.elec_state = 0
        self.on = on

    def set_scale(self, q):
        """Amplitude scale q / 1024 from now on (derating); a flowing current changes now."""
        self.scale_q = q
        if self.running and self.on and not self.suspended:
            self._output(True, self.code_on)

    def _edge(self, amps):
        if self.start_first is not None:
            self._event(defs.EV_WAVEFORM_START, 0, self.plan.cmd_id, self.start_first)
            self.start_first = None
        self._event(defs.EV_EDGE, 0, self.index & 0xFFFF, amps)
        self.edges = self.edges + 1 if self.edges < _M30 else 0

    def _event(self, code, cause, index, value):
        self.link.event(self.dc.t30, self.dc.epoch, code, cause, index, value)
