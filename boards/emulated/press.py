"""The motorised press of the emulated rig: a stepper-driven screw in series with the stack.

The stack force is the plant's open-loop force plus what the actuator adds:

    F = P_open(t, q) * A_stack + k * x(t)

k (N/um) is the stiffness of everything in the load path (frame, load cell, stack), x the
actuator's advance towards the stack in um (steps * um_per_step, positive compresses).
With the press fixed (x = 0) the force is exactly the plant's open-loop force, so every
scenario behaves as before when nobody moves the actuator. The plant's open-loop pressure
rise with charge, dP(q) (seed 001's phases), is then the cell's thickness growth pushing
against a fixed press: a thickness change

    dh(q) = dP(q) * A_stack / k   (um)

which is what the press must back off (x = -dh) to hold the pressure: `thickness_um(q)`.

The actuator is driven through `StepperSM`, an rp2.StateMachine look-alike that takes the
words of firmware/drivers/stepper.py's PIO program (step count - 1, half-period delay) and
moves the press on device time, exactly as the program would time its pulses: the position
at any device time is known without simulating pulses. Its arithmetic is on small ints (the
firmware may hold a heap lock when it calls put()).
"""

_FIXED_CYCLES = 7  # the PIO program's cycles per step besides 2 x the delay


class Press:
    def __init__(self, cfg, stack_area_m2):
        act = cfg.get("actuator") or {}
        self.k_n_per_um = float(cfg.get("stiffness_n_per_um", 1.0))
        self.area = stack_area_m2
        self.um_per_step = float(act.get("um_per_step", 0.0))
        self.fitted = bool(act) and self.um_per_step > 0
        self.base = 0  # steps at the end of the last finished move
        self.n = 0  # steps of the move under way (0: none)
        self.dirn = 1
        self.t0 = 0
        self.per = 1

    # -- the truth --
    def steps_at(self, t_us):
        if not self.n:
            return self.base
        d = (t_us - self.t0) // self.per
        if d < 0:
            d = 0
        if d > self.n:
            d = self.n
        return self.base + self.dirn * d

    def position_um(self, t_us):
        return self.steps_at(t_us) * self.um_per_step

    def force_n(self, t_us):
        """What the actuator adds to the open-loop stack force at device time t_us."""
        if not self.n and not self.base:
            return 0.0
        return self.k_n_per_um * self.position_um(t_us)

    def pressure_pa_per_um(self):
        return self.k_n_per_um / self.area

    def thickness_um(self, rise_pa):
        """The cell's thickness growth behind an open-loop pressure rise (Pa)."""
        return rise_pa * self.area / self.k_n_per_um

    # -- the actuator's moves --
    def start(self, t_us, steps, dirn, per_us):
        self.stop(t_us)
        self.n = steps
        self.dirn = dirn
        self.t0 = t_us
        self.per = per_us if per_us > 0 else 1

    def stop(self, t_us):
        self.base = self.steps_at(t_us)
        self.n = 0


class StepperSM:
    """The stepper's PIO state machine on the emulated board (see firmware/drivers/stepper.py):
    every two words put (count - 1, delay) start a move of count steps with a period of
    2 delay + 7 cycles at `freq`, in the direction the dir pin says."""

    def __init__(self, hw, press, dir_pin, freq=1000000):
        self.hw = hw
        self.press = press
        self.dir_pin = dir_pin
        self.us_per_cycle = 1000000 // freq if freq <= 1000000 else 1
        self.first = -1  # the count word, until the delay word comes
        self.on = 0
        self.moves = 0

    def put(self, w):
        if self.first < 0:
            self.first = w
            return
        n = self.first + 1
        self.first = -1
        per = (2 * w + _FIXED_CYCLES) * self.us_per_cycle
        d = 1 if self.dir_pin.value() else -1
        self.press.start(self.hw.clock.t, n, d, per)
        self.moves += 1

    def active(self, v=None):
        if v is not None:
            self.on = 1 if v else 0
        return self.on

    def restart(self):
        """The program starts over: the move under way ends where it got to."""
        self.press.stop(self.hw.clock.t)
        self.first = -1

    def exec(self, instr):
        pass
