"""The simulated cell behind the emulated board ("the plant").

Runs on MicroPython (inside the emulated board) and on CPython (tests, tuning) with the
same results: only `math`, `array` and integer arithmetic, and its own PRNG.

State advances lazily: every sensor read calls `advance(t_us)` with the device time, and
the plant integrates up to it with the current that was applied since the last call.
Time is kept as an integer count of device microseconds that never wraps.

Physics (SI units throughout; parameters from the scenario dict, the "hidden truth"):

- Anode film, 1D diffusion across its thickness L, cell-centred finite volume on a grid
  that is fine at the interface (x = 0) and coarse at the back wall (no flux). The film
  area A has only a fraction f of it in real contact with the electrolyte (seed 004): the
  1D column under the contact spots carries the local flux J = I / (f A z F) and exchanges
  with the rest of the film (a well-mixed reservoir) at a rate k (1/s), which is what
  lets a rest relax the contact spots faster than diffusion across L alone would.
  Positive current removes the species from the film (stripping / discharge).
  Time stepping: theta scheme on a ladder of step sizes dt0 * 2**k with the tridiagonal
  factors precomputed per step size (Thomas algorithm, nothing allocated per step);
  backward Euler for the first steps after every current edge (Rannacher start), then
  Crank-Nicolson with the step growing with the time since the edge.
- Cell voltage: V = OCV(theta_s) + polarity * (I R_ohm + I R_ct), theta_s the interface
  concentration over C_max (or C0 when the scenario gives no C_max) (the OCV follows the surface, so GITT analysis works), and
  R_ct = R_ct0 * C0 / (C_s - C_crit) for removal (R_ct ~ 1/C, seed 004; only the part of
  the species above the liquidus / critical level is available), with the analogous
  vacancy term (C_max - C_s) for insertion. The voltage is clamped to the source's
  compliance.
- Stack pressure: P = P0 - creep * ln(1 + t / tau_creep) + dP(q), with q = Q / Q_end the
  normalized capacity passed in the pressure-raising direction and dP(q) piecewise linear
  with per-phase rates (seed 001). Force = P * A_stack.
- FBG: sensing grating d(lambda)/lambda0 = (1 - p_e) eps + k_T dT (+ quadratic), reference
  grating the temperature term only. eps = eps_per_c * Q + eps_grad * (C_mean - C_s) / C0.
- Temperature: ambient (drift + daily swing) plus a first-order joule-heating lag.
"""

import math
from array import array

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
    n = len(table)
    if x <= table[0][0]:
        return table[0][1]
    for i in range(1, n):
        x1 = table[i][0]
        if x <= x1:
            x0, y0 = table[i - 1]
            y1 = table[i][1]
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return table[n - 1][1]


def gauss_at(seed, salt, key):
    """A standard normal value that depends only on (seed, salt, key): sensor noise keyed by
    a conversion index or a device time, so a seed reproduces it whatever the read order.
    Multipliers stay below 2**30 so no product leaves MicroPython's small ints."""
    x = (key * 0x2C1B3C6D + seed * 0x297A2D39 + salt * 0x3243F6A9 + 0x1B873593) & _M32
    x ^= x >> 16
    x = (x * 0x38ECAC5B) & _M32
    x ^= x >> 15
    x = (x * 0x2545F491) & _M32
    x ^= x >> 16
    y = (x * 0x3243F6A9 + 0x1B873593) & _M32
    y ^= y >> 15
    y = (y * 0x2C1B3C6D) & _M32
    y ^= y >> 12
    y = (y * 0x297A2D39) & _M32
    y ^= y >> 15
    u1 = (x + 0.5) / 4294967296.0
    u2 = (y + 0.5) / 4294967296.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


class Film:
    """1D diffusion in the anode film under the contact spots, plus a mixed reservoir."""

    def __init__(self, p):
        self.L = float(p["thickness_m"])
        self.D = float(p["d_m2_s"])
        self.c0 = float(p["c0_mol_m3"])
        self.z = int(_get(p, "z", 1))
        self.f = float(_get(p, "contact_fraction", 1.0))
        self.k = float(_get(p, "lateral_rate_per_s", 0.0)) if self.f < 1.0 else 0.0
        n = int(_get(p, "n_cells", 24))
        h0 = float(_get(p, "first_cell_m", self.L / n))
        self.n = n
        # geometric grid: h0 * r**j summing to L (r found by bisection; r = 1 when uniform)
        if h0 * n >= self.L * 0.999:
            r = 1.0
        else:
            lo, hi = 1.0, 2.0
            while h0 * (hi**n - 1.0) / (hi - 1.0) < self.L:
                hi *= 2.0
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                if h0 * (mid**n - 1.0) / (mid - 1.0) < self.L:
                    lo = mid
                else:
                    hi = mid
            r = 0.5 * (lo + hi)
        h = array("d", [0.0] * n)
        x = array("d", [0.0] * n)  # cell centres
        s = 0.0
        for j in range(n):
            h[j] = h0 * r**j
            s += h[j]
        scale = self.L / s
        pos = 0.0
        for j in range(n):
            h[j] *= scale
            x[j] = pos + 0.5 * h[j]
            pos += h[j]
        self.h = h
        self.x = x
        g = array("d", [0.0] * n)  # conductance between j and j+1 (last is the wall: 0)
        for j in range(n - 1):
            g[j] = self.D / (0.5 * (h[j] + h[j + 1]))
        self.g = g
        self.c = array("d", [self.c0] * n)
        self.c_res = self.c0
        self.tmp = array("d", [0.0] * n)
        self.rhs = array("d", [0.0] * n)
        # step ladder
        self.dt0 = float(_get(p, "dt0_s", 1e-3))
        self.levels = int(_get(p, "dt_levels", 14))
        self.growth = float(_get(p, "dt_growth_ratio", 4.0))  # dt <= t_since_edge / ratio
        self.be_steps = int(_get(p, "be_steps", 2))
        self.fac = []  # per level: (m, cp) for CN
        for k in range(self.levels):
            self.fac.append(self._factor(self.dt0 * (1 << k), 0.5))
        self.fac_be = self._factor(self.dt0, 1.0)
        self.removed_mol_m2 = 0.0  # species removed through the interface, per unit area A
        self.settled = 1e-9 * self.c0  # a profile flatter than this counts as uniform

    def spread(self):
        """max - min of the concentration profile (0 when the film is uniform)."""
        c = self.c
        lo = hi = c[0]
        for j in range(1, self.n):
            v = c[j]
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
        return hi - lo

    def _factor(self, dt, theta):
        n = self.n
        h = self.h
        g = self.g
        k = self.k
        m = array("d", [0.0] * n)
        cp = array("d", [0.0] * n)
        prev_cp = 0.0
        for j in range(n):
            gl = g[j - 1] if j > 0 else 0.0
            gr = g[j]
            b = h[j] / dt + theta * (gl + gr + k * h[j])
            a = -theta * gl
            c = -theta * gr
            mj = 1.0 / (b - a * prev_cp)
            m[j] = mj
            prev_cp = c * mj
            cp[j] = prev_cp
        return (m, cp)

    def step(self, dt, fac, theta, current_a, area_m2):
        """One theta step of length dt with a constant current (A)."""
        n = self.n
        c = self.c
        h = self.h
        g = self.g
        k = self.k
        rhs = self.rhs
        m, cp = fac
        j_local = current_a / (self.f * area_m2 * self.z * FARADAY)
        w = 1.0 - theta
        c_res = self.c_res
        # right-hand side
        cl = 0.0
        gl = 0.0
        for j in range(n):
            cj = c[j]
            gr = g[j]
            v = h[j] / dt * cj + k * h[j] * c_res
            if w:
                op = k * h[j] * cj
                if j > 0:
                    op += gl * (cj - cl)
                if j < n - 1:
                    op += gr * (cj - c[j + 1])
                v -= w * op
            rhs[j] = v
            cl = cj
            gl = gr
        rhs[0] -= j_local
        # Thomas: forward (a_j = -theta * g[j-1]) then back substitution
        prev = 0.0
        for j in range(n):
            a = -theta * g[j - 1] if j > 0 else 0.0
            prev = (rhs[j] - a * prev) * m[j]
            rhs[j] = prev
        nxt = rhs[n - 1]
        c[n - 1] = nxt
        for j in range(n - 2, -1, -1):
            nxt = rhs[j] - cp[j] * nxt
            c[j] = nxt
        if k:
            # what the column really received this step, so the reservoir loses exactly that
            ex = self._exchange(dt, theta, c_res)
            self.c_res = c_res - ex * self.f / ((1.0 - self.f) * self.L)
        self.removed_mol_m2 += current_a / (area_m2 * self.z * FARADAY) * dt

    def _exchange(self, dt, theta, c_res):
        # moles per column area gained from the reservoir over the step: k dt sum h (c_res -
        # c_theta), with c_theta = theta c_new + (1 - theta) c_old; c_old is in tmp
        k = self.k
        h = self.h
        c = self.c
        old = self.tmp
        s = 0.0
        w = 1.0 - theta
        for j in range(self.n):
            s += h[j] * (c_res - theta * c[j] - w * old[j])
        return k * dt * s

    def surface(self, current_a, area_m2):
        """Concentration at x = 0, extrapolated from the first cell with the flux."""
        j_local = current_a / (self.f * area_m2 * self.z * FARADAY)
        return self.c[0] - j_local * 0.5 * self.h[0] / self.D

    def column_mean(self):
        s = 0.0
        for j in range(self.n):
            s += self.h[j] * self.c[j]
        return s / self.L

    def mean(self):
        """Mean concentration of the whole film (column and reservoir)."""
        return self.f * self.column_mean() + (1.0 - self.f) * self.c_res

    def moles_per_area(self):
        return self.mean() * self.L


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
        self.charge_c = 0.0  # integral of I dt (positive = removal)
        self.heat_dt = 0.0  # joule temperature rise (K)
        self.since_edge_s = 1e9
        self.steps_since_edge = 1000
        self.lag_s = 0.0  # integration time not yet taken (smaller than dt0)
        self.steps = 0
        self.rng_seed = seed

    # ---- time --------------------------------------------------------------------------
    def set_current(self, amps, t_us):
        """Apply a new current from device time t_us on (advances to t_us first)."""
        self.advance(t_us)
        if amps != self.current:
            self.current = amps
            self.since_edge_s = 0.0
            self.steps_since_edge = 0

    def advance(self, t_us):
        d = t_us - self.t_us
        if d <= 0:
            return
        self.t_us = t_us
        dt_total = d * 1e-6 + self.lag_s
        film = self.film
        i = self.current
        dt0 = film.dt0
        # At rest with no lateral exchange the film only relaxes; stop integrating once it
        # is uniform (not after a fixed number of steps: a long rest must keep relaxing).
        if i != 0.0 or film.k or self.steps_since_edge < 1000 or film.spread() > film.settled:
            while dt_total >= dt0:
                if self.steps_since_edge < film.be_steps:
                    dt = dt0
                    self._copy_old()
                    film.step(dt, film.fac_be, 1.0, i, self.area)
                else:
                    lim = self.since_edge_s / film.growth
                    if dt_total < lim:
                        lim = dt_total
                    k = 0
                    dt = dt0
                    while k + 1 < film.levels and dt * 2.0 <= lim:
                        dt *= 2.0
                        k += 1
                    self._copy_old()
                    film.step(dt, film.fac[k], 0.5, i, self.area)
                dt_total -= dt
                self.since_edge_s += dt
                self.steps_since_edge += 1
                self.steps += 1
            self.lag_s = dt_total
        else:
            self.lag_s = 0.0
            self.since_edge_s += dt_total
        dts = d * 1e-6
        self.charge_c += i * dts
        # joule heating: first-order lag towards r_th * P
        if self.r_th:
            pw = i * i * self.r_ohm
            target = self.r_th * pw
            a = dts / self.tau_th
            if a > 1.0:
                a = 1.0
            self.heat_dt += (target - self.heat_dt) * a

    def _copy_old(self):
        c = self.film.c
        old = self.film.tmp
        for j in range(self.film.n):
            old[j] = c[j]

    # ---- observables at the current plant time -----------------------------------------
    def time_s(self):
        return self.t_us * 1e-6

    def surface_conc(self):
        return self.film.surface(self.current, self.area)

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
        ph = self.p_phases
        if not ph or q <= ph[0][0]:
            return 0.0
        for q0, q1, p_at, rate in ph:
            if q <= q1:
                return p_at + rate * (q - q0)
        q0, q1, p_at, rate = ph[-1]
        return p_at + rate * (q1 - q0)

    def pressure_pa(self, t_s=None):
        """Stack pressure; `t_s` evaluates the creep at another (nearby) device time."""
        t = (self.time_s() if t_s is None else t_s) + self.t0_age_s
        p = self.p0 - self.creep * math.log(1.0 + t / self.creep_tau)
        return p + self.pressure_rise_pa(self.normalized_capacity())

    def force_n(self, t_s=None):
        return self.pressure_pa(t_s) * self.stack_area

    def strain(self, t_s=None):
        """Electrode strain seen by the sensing grating (dimensionless)."""
        film = self.film
        grad = (film.column_mean() - self.surface_conc()) / film.c0
        return (
            self.eps_per_c * self.charge_c
            + self.eps_grad * grad
            + self.eps_per_mpa * (self.pressure_pa(t_s) - self.p0) * 1e-6
        )
