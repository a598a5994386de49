"""The simulated cell behind the emulated board ("the plant").

Runs on MicroPython (inside the emulated board) and on CPython (tests, tuning) with the
same results: only `math`, `array` and integer arithmetic, and its own PRNG.

State advances lazily: every sensor read calls `advance(t_us)` with the device time, and
the plant moves to it with the current that was applied since the last call (piecewise
constant, edges at `set_current`). Time is kept as an integer count of device
microseconds that never wraps. Scenario keys of the former time stepper (dt0_s,
dt_levels, be_steps, dt_growth_ratio) are accepted and ignored.

Physics (SI units throughout; parameters from the scenario dict, the "hidden truth"):

- Anode film (`film.py`): 1D diffusion across its thickness L on a finite-volume grid,
  fine at the interface (x = 0), no flux at the back wall. Only a fraction f of the film
  area A is in real contact with the electrolyte (seed 004): the column under the contact
  spots carries the local flux J = I / (f A z F) and exchanges with the rest of the film (a
  well-mixed reservoir) at a rate k (1/s), which is what lets a rest relax the contact spots
  faster than diffusion across L alone would. Positive current removes the species from
  the film (stripping / discharge). Solved exactly between current edges (modal solution),
  so the result does not depend on when or how often the sensors read.
- Cell voltage: V = OCV(theta_s) + polarity * (I R_ohm + I R_ct), theta_s the interface
  concentration over C_max (or C0 when the scenario gives no C_max; the OCV follows the
  surface, so GITT analysis works), and
  R_ct = R_ct0 * C0 / (C_s - C_crit) for removal (R_ct ~ 1/C, seed 004; only the part of
  the species above the liquidus / critical level is available), with the analogous
  vacancy term (C_max - C_s) for insertion. The voltage is clamped to the source's
  compliance.
- Stack pressure: P = P0 - creep * ln(1 + t / tau_creep) + dP(q), with q = Q / Q_end the
  normalized capacity passed in the pressure-raising direction and dP(q) piecewise linear
  with per-phase rates (seed 001); plus k x / A_stack when the scenario's motorised press
  (press.py) has moved its actuator by x (dP(q) is then the cell's thickness growth
  dP A_stack / k pushing against the press). Force = P * A_stack, plus known masses placed on the
  load cell (m * g; the press opened takes P * A_stack off), for calibrating it.
- FBG: sensing grating d(lambda)/lambda0 = (1 - p_e) eps + k_T dT (+ quadratic), reference
  grating the temperature term only. eps = eps_per_c * Q + eps_grad * (C_mean - C_s) / C0.
- Temperature: ambient (drift + daily swing) plus a first-order joule-heating lag.
"""

import math

try:
    from film import Film
    from press import Press
except ImportError:  # imported as a package from CPython
    from boards.emulated.film import Film
    from boards.emulated.press import Press

FARADAY = 96485.33212
_M32 = 0xFFFFFFFF


class XorShift:
    """xorshift32: the same sequence on every interpreter (ints stay small on both)."""

    def __init__(self, seed):
        s = (seed * 2654435761 + 0x9E3779B9) & _M32
        self.s = s if s else 0x12345678
        self._spare = 0.0
        self._has_spare = False

    def next(self):
        x = self.s
        x ^= (x << 13) & _M32
        x ^= x >> 17
        x ^= (x << 5) & _M32
        self.s = x
        return x

    def uniform(self):
        return (self.next() + 0.5) / 4294967296.0

    def gauss(self):
        if self._has_spare:
            self._has_spare = False
            return self._spare
        u1 = self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2.0 * math.log(u1))
        self._spare = r * math.sin(6.283185307179586 * u2)
        self._has_spare = True
        return r * math.cos(6.283185307179586 * u2)


def _get(d, key, default):
    v = d.get(key) if d else None
    return default if v is None else v


def interp(table, x):
    """Piecewise-linear y(x) from [[x0, y0], [x1, y1], ...] (sorted), flat beyond the ends."""
    if x <= table[0][0]:
        return table[0][1]
    for i in range(1, len(table)):
        if x <= table[i][0]:
            return _lerp(table[i - 1], table[i], x)
    return table[-1][1]


def _lerp(a, b, x):
    return a[1] + (b[1] - a[1]) * (x - a[0]) / (b[0] - a[0])


def gauss_at(seed, salt, key):
    """A standard normal value that depends only on (seed, salt, key): sensor noise keyed by
    a conversion index or a device time, so a seed reproduces it whatever the read order.
    Multipliers stay below 2**30 so no product leaves MicroPython's small ints."""
    x = _hash_x(seed, salt, key)
    return _box_muller(x, _hash_y(x))


def _hash_x(seed, salt, key):
    x = (key * 0x2C1B3C6D + seed * 0x297A2D39 + salt * 0x3243F6A9 + 0x1B873593) & _M32
    x ^= x >> 16
    x = (x * 0x38ECAC5B) & _M32
    x ^= x >> 15
    x = (x * 0x2545F491) & _M32
    return x ^ (x >> 16)


def _hash_y(x):
    y = (x * 0x3243F6A9 + 0x1B873593) & _M32
    y ^= y >> 15
    y = (y * 0x2C1B3C6D) & _M32
    y ^= y >> 12
    y = (y * 0x297A2D39) & _M32
    return y ^ (y >> 15)


def _box_muller(x, y):
    u1 = (x + 0.5) / 4294967296.0
    u2 = (y + 0.5) / 4294967296.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


class Plant:
    """The whole simulated cell. All times are device microseconds (int, no wrap)."""

    def __init__(self, scenario, seed=0):
        self.sc = scenario
        cell = scenario["cell"]
        self.area = float(cell["area_m2"])
        self.film = Film(scenario["film"])
        el = scenario["electrical"]
        self.polarity = float(_get(el, "polarity", 1.0))
        self.ocv_table = el["ocv_vs_theta"]
        self.r_ohm = float(el["r_ohm"])
        self.r_ct0 = float(_get(el, "r_ct0_ohm", 0.0))
        fp = scenario["film"]
        self.c_crit = float(_get(fp, "c_crit_mol_m3", 0.0))
        self.c_max = float(_get(fp, "c_max_mol_m3", 0.0))
        # the OCV table is over theta = C_s / c_norm (C_max for insertion hosts, else C0)
        self.c_norm = self.c_max if self.c_max > 0 else self.film.c0
        self.compliance_v = float(_get(el, "compliance_v", 5.0))
        self.v_floor = float(_get(el, "v_floor_v", -5.0))
        pr = scenario.get("pressure") or {}
        self.p0 = float(_get(pr, "preload_mpa", 0.0)) * 1e6
        self.creep = float(_get(pr, "creep_mpa", 0.0)) * 1e6
        self.creep_tau = float(_get(pr, "creep_tau_s", 3600.0))
        self.stack_area = float(_get(pr, "stack_area_m2", self.area))
        self.q_end = float(_get(pr, "q_end_c", 1.0))
        self.q_sign = float(_get(pr, "charge_sign", 1.0))
        self.p_phases = []  # (q0, q1, p_at_q0_pa, rate_pa)
        acc = 0.0
        for ph in _get(pr, "phases", []):
            q0 = float(ph["q_start"])
            q1 = float(ph["q_end"])
            rate = float(ph["rate_mpa"]) * 1e6
            self.p_phases.append((q0, q1, acc, rate))
            acc += rate * (q1 - q0)
        self.t0_age_s = float(_get(pr, "age_at_start_s", 0.0))
        # the motorised press (press.py): its actuator adds k x to the stack force; with it
        # fixed at x = 0 (or no "press" in the scenario) the pressure is the open-loop one
        pc = scenario.get("press")
        self.press = Press(pc, self.stack_area) if pc else None
        # the press as a calibration fixture (control channel): known masses on the load
        # cell add m*g to what it reads; an opened press takes the stack's force off it
        self.applied_n = 0.0
        self.press_open = False
        # a force ramp of the press (control channel): ramp_n_per_s from device time
        # ramp_t0_s to ramp_t1_s, then held (a known pressure-rate step, for derating)
        self.ramp_n_per_s = 0.0
        self.ramp_t0_s = 0.0
        self.ramp_t1_s = 0.0
        th = scenario.get("thermal") or {}
        self.t_amb0 = float(_get(th, "ambient_c", 25.0))
        self.t_drift = float(_get(th, "drift_c_per_h", 0.0)) / 3600.0
        self.t_swing = float(_get(th, "swing_c", 0.0))
        self.t_swing_period = float(_get(th, "swing_period_s", 86400.0))
        self.r_th = float(_get(th, "r_th_k_per_w", 0.0))
        self.tau_th = float(_get(th, "tau_s", 60.0))
        fbg = scenario.get("fbg") or {}
        self.eps_per_c = float(_get(fbg, "strain_per_c", 0.0))
        self.eps_grad = float(_get(fbg, "strain_per_gradient", 0.0))
        self.eps_per_mpa = float(_get(fbg, "strain_per_mpa", 0.0))
        # state
        self.t_us = 0
        self.current = 0.0  # A actually flowing
        self.charge_edge = 0.0  # integral of I dt (positive = removal) up to t_edge
        self.t_edge = 0
        self.heat_dt = 0.0  # joule temperature rise (K)
        self.flux_per_amp = 1.0 / (self.film.f * self.area * self.film.z * FARADAY)
        self.surface_track = self.film.live
        self.rng_seed = seed

    # ---- time --------------------------------------------------------------------------
    def set_current(self, amps, t_us):
        """Apply a new current from device time t_us on (advances to t_us first)."""
        self.advance(t_us)
        if amps != self.current:
            self.charge_edge = self.charge_c
            self.t_edge = self.t_us
            self.current = amps
            self.film.set_flux(amps * self.flux_per_amp, self.t_us)

    def advance(self, t_us):
        d = t_us - self.t_us
        if d <= 0:
            return
        self.t_us = t_us
        self.surface_track.t_now = t_us  # the film is lazy: it catches up when it is read
        if self.r_th:
            self._heat(d * 1e-6)

    def _heat(self, dts):
        """Joule heating: first-order lag towards r_th * P."""
        i = self.current
        target = self.r_th * (i * i * self.r_ohm)
        a = dts / self.tau_th
        if a > 1.0:
            a = 1.0
        self.heat_dt += (target - self.heat_dt) * a

    # ---- observables at the current plant time -----------------------------------------
    @property
    def charge_c(self):
        """Integral of I dt since the start (C, positive = removal)."""
        return self.charge_edge + self.current * (self.t_us - self.t_edge) * 1e-6

    def time_s(self):
        return self.t_us * 1e-6

    def surface_conc(self):
        # straight to the film's hot path (every voltage read comes here)
        return self.surface_track.surface_at(self.t_us)

    def ocv(self, theta):
        return interp(self.ocv_table, theta)

    def r_ct(self):
        cs = self.surface_conc()
        c0 = self.film.c0
        if self.current >= 0.0:
            avail = cs - self.c_crit
        else:
            avail = (self.c_max - cs) if self.c_max > 0 else c0
        if avail < c0 * 1e-4:
            avail = c0 * 1e-4
        return self.r_ct0 * c0 / avail

    def voltage(self):
        i = self.current
        theta = self.surface_conc() / self.c_norm
        v = self.ocv(theta) + self.polarity * i * (self.r_ohm + self.r_ct())
        if v > self.compliance_v:
            v = self.compliance_v
        if v < self.v_floor:
            v = self.v_floor
        return v

    def temperature_c(self, t_s=None):
        """Cell temperature; `t_s` evaluates the ambient at another (nearby) device time."""
        t = self.time_s() if t_s is None else t_s
        amb = self.t_amb0 + self.t_drift * t
        if self.t_swing:
            amb += self.t_swing * math.sin(6.283185307179586 * t / self.t_swing_period)
        return amb + self.heat_dt

    def ambient_c(self):
        return self.t_amb0

    def normalized_capacity(self):
        return self.q_sign * self.charge_c / self.q_end

    def pressure_rise_pa(self, q):
        ph = self.p_phases  # (q0, q1, p_at_q0, rate)
        if not ph or q <= ph[0][0]:
            return 0.0
        # the phase holding q (past the last: its end); an index, not a for loop, keeps the
        # frame on the C stack (a for's iterator takes four slots of it)
        i = 0
        n = len(ph) - 1
        while i < n and q > ph[i][1]:
            i += 1
        p = ph[i]
        if q > p[1]:
            q = p[1]
        return p[2] + p[3] * (q - p[0])

    def pressure_pa(self, t_s=None):
        """Stack pressure; `t_s` evaluates the creep at another (nearby) device time."""
        t = self.time_s() if t_s is None else t_s
        p = self._preload_pa(t + self.t0_age_s) + self.pressure_rise_pa(self.normalized_capacity())
        if self.press is not None:  # a small frame: the press's part in its own function
            p += self.press_pa(t)
        return p

    def press_pa(self, t_s):
        """What the press's actuator adds to the stack pressure at device time t_s."""
        pr = self.press
        if not pr.n and not pr.base:
            return 0.0
        return pr.force_n(int(t_s * 1e6 + 0.5)) / self.stack_area

    def _preload_pa(self, t):
        return self.p0 - self.creep * math.log(1.0 + t / self.creep_tau)

    def force_n(self, t_s=None):
        """Force on the load cell: the stack's P * A_stack (none while the press is open)
        plus the known masses placed on it (`applied_n`, control channel)."""
        t = self.time_s() if t_s is None else t_s
        extra = self.applied_n + self.ramp_force_n(t)
        if self.press_open:
            return extra
        return self.pressure_pa(t) * self.stack_area + extra

    def ramp_force_n(self, t_s):
        """The press's force ramp at device time t_s (0 before it starts)."""
        if not self.ramp_n_per_s or t_s <= self.ramp_t0_s:
            return 0.0
        return self.ramp_n_per_s * (min(t_s, self.ramp_t1_s) - self.ramp_t0_s)

    def strain(self, t_s=None):
        """Electrode strain seen by the sensing grating (dimensionless)."""
        film = self.film
        grad = (film.column_mean() - self.surface_conc()) / film.c0
        return (
            self.eps_per_c * self.charge_c
            + self.eps_grad * grad
            + self.eps_per_mpa * (self.pressure_pa(t_s) - self.p0) * 1e-6
        )
