# ruff: noqa: F821  (the PIO assembler's names exist only inside @rp2.asm_pio)
"""A stepper motor on a step/dir driver (A4988, TMC2209 in step/dir mode, ...): the press
actuator of the stack-pressure hold (firmware/loops/press_hold.py).

Two ways to make the step pulses:

- `sm`: an rp2.StateMachine running `stepper_pio_program()` (RP2040). A move is two words
  put in its TX FIFO: the step count - 1 and the half-period delay d; the program then
  makes the pulses on its own (period 2 d + 7 state-machine cycles, at 1 MHz that many us),
  and the CPU is free. Built on the Pico as

      sm = rp2.StateMachine(1, stepper_pio_program(), freq=1000000, set_base=Pin(step))

  (MicroPython docs, rp2.StateMachine / rp2.asm_pio: `set(pins, v)` drives the set pins;
  `pull(block)` waits for a TX FIFO word; `jmp(x_dec, label)` loops X + 1 times.)
  A move is stopped by deactivating and restarting the machine; the position is then the
  steps the timing says were made (within one step of the truth).
- `step_pin` only (any other port, e.g. the ESP32-S3): plain GPIO. `move()` makes its
  pulses at once in a tight loop (`pulse_us` high, `pulse_us` low), so the caller keeps each
  move small (the hold loop moves at most a few tens of steps per load reading); the rate
  limit is then per reading, not per pulse.

The position is counted in steps from power-on (an int, positive towards the stack); no
floats, nothing allocated per move. `enable` (active low on most drivers: `en_active`)
stays on while holding, so the motor keeps its holding torque after a stop.
"""

from micropython import const

_FIXED_CYCLES = const(7)  # per step: set, mov, jmp (hi loop end), set, mov, jmp, jmp x_dec
_MAX_DELAY = const(0x3FFFFFF)


def stepper_pio_program(rp2=None):
    """PIO program: per move, pull N - 1 and d; N pulses of d + 3 cycles high, d + 4 low."""
    if rp2 is None:
        import rp2

    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def prog():
        wrap_target()
        pull(block)
        mov(x, osr)  # steps - 1
        pull(block)
        mov(isr, osr)  # half-period delay, kept in ISR (no shifts use it)
        label("step")
        set(pins, 1)
        mov(y, isr)
        label("hi")
        jmp(y_dec, "hi")
        set(pins, 0)
        mov(y, isr)
        label("lo")
        jmp(y_dec, "lo")
        jmp(x_dec, "step")
        wrap()

    return prog


class Stepper:
    def __init__(
        self,
        clock,
        dir_pin,
        sm=None,
        step_pin=None,
        en_pin=None,
        en_active=0,
        sm_freq=1000000,
        pulse_us=5,
    ):
        self.clock = clock
        self.sm = sm
        self.step_pin = step_pin
        self.dir_pin = dir_pin
        self.en_pin = en_pin
        self.en_active = en_active
        self.us_per_cycle_num = 1000000 // sm_freq if sm_freq <= 1000000 else 1
        self.pulse_us = pulse_us
        self.pos = 0  # steps from power-on at the start of the current move
        self.n = 0  # steps of the current move (0: none)
        self.dirn = 1
        self.t0 = 0
        self.period_us = 1
        self.enabled = False
        self.enable(False)

    def enable(self, on):
        self.enabled = bool(on)
        if self.en_pin is not None:
            self.en_pin.value(self.en_active if on else 1 - self.en_active)

    def position(self, now):
        """Steps from power-on at device time `now` (ticks_us)."""
        n = self.n
        if not n:
            return self.pos
        done = self.clock.ticks_diff(now, self.t0) // self.period_us
        if done >= n:
            self.pos += self.dirn * n
            self.n = 0
            return self.pos
        if done < 0:
            done = 0
        return self.pos + self.dirn * done

    def moving(self, now):
        self.position(now)
        return self.n != 0

    def stop(self, now):
        """Halt now (enable stays as it is: a held motor keeps its torque)."""
        if self.n:
            p = self.position(now)
            if self.sm is not None:
                self.sm.active(0)
                self.sm.restart()
                self.sm.exec("set(pins, 0)")
                self.sm.active(1)
            self.pos = p
            self.n = 0
        return self.pos

    def move(self, steps, rate_sps, now):
        """Start `steps` (signed) at `rate_sps` (int > 0) from device time `now`; a move
        still under way is stopped first. Returns the period actually used (us)."""
        self.stop(now)
        if steps == 0:
            return 0
        if not self.enabled:
            self.enable(True)
        d = 1
        if steps < 0:
            d = -1
            steps = -steps
        self.dir_pin.value(1 if d > 0 else 0)
        per = 1000000 // rate_sps if rate_sps > 0 else 1000000
        if self.sm is not None:
            # the program's period is 2 delay + 7 cycles
            c = per // self.us_per_cycle_num
            dl = (c - _FIXED_CYCLES) // 2
            if dl < 0:
                dl = 0
            if dl > _MAX_DELAY:
                dl = _MAX_DELAY
            per = (2 * dl + _FIXED_CYCLES) * self.us_per_cycle_num
            self.dirn = d
            self.period_us = per
            self.n = steps
            # the clock read again: a loop pass on a Pico reaches this 1-7 ms after `now`,
            # which would put the position's estimate several steps ahead during the move
            self.t0 = self.clock.ticks_us()
            self.sm.put(steps - 1)
            self.sm.put(dl)
            return per
        # plain GPIO: all pulses now (the caller keeps moves short)
        sp = self.step_pin
        sleep = self.clock.sleep_us
        pw = self.pulse_us
        for _ in range(steps):
            sp.value(1)
            sleep(pw)
            sp.value(0)
            sleep(pw)
        self.pos += d * steps
        return 2 * pw


def fit_press(definition, press):
    """Add an optional press actuator to a board definition (boards/*/board.py `PRESS`, None
    on a rig without one): its part, its pins and the hold loop's limits (`press_*`, which
    the HELLO carries and SET_PRESS_HOLD checks). Returns the definition."""
    if not press:
        return definition
    definition["parts"]["press"] = {
        "type": "stepper",
        "driver": press.get("driver", "gpio"),
        "sm_freq_hz": press.get("sm_freq_hz", 1000000),
        "en_active": press.get("en_active", 0),
    }
    definition["pins"].update(press["pins"])
    definition["limits"].update(press["limits"])
    return definition


def make_stepper(definition, clock, machine, rp2=None, sm_id=1):
    """The press's Stepper on a real board (None when the definition has no press): the
    PIO program on state machine `sm_id` when `rp2` is given and the part asks for it,
    plain GPIO otherwise. The enable pin starts off (motor free) until a hold starts."""
    part = definition["parts"].get("press")
    if not part:
        return None
    p = definition["pins"]
    ea = part.get("en_active", 0)
    step = machine.Pin(p["press_step"], machine.Pin.OUT, value=0)
    dirp = machine.Pin(p["press_dir"], machine.Pin.OUT, value=0)
    en = None
    if "press_enable" in p:
        en = machine.Pin(p["press_enable"], machine.Pin.OUT, value=1 - ea)
    if part.get("driver") == "pio" and rp2 is not None:
        freq = part.get("sm_freq_hz", 1000000)
        sm = rp2.StateMachine(sm_id, stepper_pio_program(rp2), freq=freq, set_base=step)
        sm.active(1)
        return Stepper(clock, dirp, sm=sm, en_pin=en, en_active=ea, sm_freq=freq)
    return Stepper(clock, dirp, step_pin=step, en_pin=en, en_active=ea)
