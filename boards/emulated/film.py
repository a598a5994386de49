"""The plant's anode film: the exact solution of its finite-volume diffusion model.

Runs on MicroPython (inside the emulated board) and on CPython: only `math` and `array`.

Physics (SI, per unit column area). 1D diffusion across the film thickness L on a
cell-centred grid, fine at the interface (x = 0), no flux at the back wall. Only a fraction
f of the area A touches the electrolyte: the column under the contact spots loses the flux
J = I / (f A z F) from its first cell and exchanges with the rest of the film, a well-mixed
reservoir, at a rate k (1/s):

    h_j c_j' = g_(j-1) (c_(j-1) - c_j) + g_j (c_(j+1) - c_j) + k h_j (c_res - c_j) - [j=0] J
    (1 - f) L c_res' = f sum_j k h_j (c_j - c_res),      g_j = D / (0.5 (h_j + h_(j+1)))

Without exchange (f = 1 or k = 0) there is no reservoir state (the rest stays at c0).

Method. With the column rows scaled by f this is W x' = -K x + b J, W diagonal positive,
K symmetric positive semi-definite (a graph Laplacian, K 1 = 0). S = W^-1/2 K W^-1/2 =
Q diag(lambda) Q^T once at construction (Jacobi rotations); the modal amplitudes of
W^1/2 x obey a_i' = -lambda_i a_i + beta_i J, so for a constant J

    x(t) = m(t) + J p + sum_i V_i d_i exp(-lambda_i (t - t_edge))

with m the mean (the zero mode: it falls linearly, by the moles removed), p the
quasi-steady profile per unit flux, V_i the mode shapes and d_i the deviations left at the
last current edge. Exact to rounding for piecewise-constant current, whatever the reads.

Cost per read, what matters on MicroPython (every float op allocates): the state catches up
only when read; the surface value needs one multiply-add per live mode; a mode is dropped
(until the next edge) from the time, known at the edge, when its contribution to every
state falls below DROP_TOL; the decay factors of a repeated read interval are cached so
steady streaming calls no exp(), and the products are re-anchored on the exact exponential
every REANCHOR_EVERY reads so rounding cannot pile up.
"""

import math
from array import array

try:
    from jacobi import jacobi_eigen
except ImportError:  # imported as a package from CPython
    from boards.emulated.jacobi import jacobi_eigen

DROP_TOL = 1e-9  # mol/m3: a mode contributing less than this to any cell is gone
REANCHOR_EVERY = 64  # reads between exact exp() evaluations on a repeated interval
_NEVER = 1 << 60  # device us, far beyond any run
_exp = math.exp


def _get(d, key, default):
    v = d.get(key) if d else None
    return default if v is None else v


def geometric_grid(thickness, n, first):
    """Cell widths h_j = first * r**j scaled to sum to `thickness`, and the cell centres."""
    if first * n >= thickness * 0.999:
        r = 1.0
    else:  # r by bisection on first * (r**n - 1) / (r - 1) = thickness
        lo, hi = 1.0, 2.0
        while first * (hi**n - 1.0) / (hi - 1.0) < thickness:
            hi *= 2.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if first * (mid**n - 1.0) / (mid - 1.0) < thickness:
                lo = mid
            else:
                hi = mid
        r = 0.5 * (lo + hi)
    h = array("d", [0.0] * n)
    x = array("d", [0.0] * n)
    s = 0.0
    for j in range(n):
        h[j] = first * r**j
        s += h[j]
    scale = thickness / s
    pos = 0.0
    for j in range(n):
        h[j] *= scale
        x[j] = pos + 0.5 * h[j]
        pos += h[j]
    return h, x


class Modes:
    """The eigenmodes of the film's semi-discrete system (built once; read at edges and by
    the observables other than the surface)."""

    def __init__(self, h, g, f, k, L, D):
        n = len(h)
        res = k > 0.0
        # the column rows are scaled by f when there is a reservoir, so K stays symmetric
        wf = f if res else 1.0
        N = n + 1 if res else n
        w = [wf * h[j] for j in range(n)] + ([(1.0 - f) * L] if res else [])
        # edges of the conductance graph: (a, b, kappa); K = sum kappa (e_a - e_b)(...)^T
        edges = [(j, j + 1, wf * g[j]) for j in range(n - 1)]
        if res:
            edges += [(j, n, f * k * h[j]) for j in range(n)]
        s = array("d", [0.0] * (N * N))
        for a, b, kap in edges:
            s[a * N + a] += kap
            s[b * N + b] += kap
            s[a * N + b] -= kap
            s[b * N + a] -= kap
        rw = [1.0 / math.sqrt(w[r]) for r in range(N)]
        for r in range(N):
            for c in range(N):
                s[r * N + c] *= rw[r] * rw[c]
        lam, v = jacobi_eigen(s, N)
        # the zero mode is known exactly: W^1/2 1, normalised. Take it out by overlap.
        mass = sum(w)
        q0 = [math.sqrt(w[r] / mass) for r in range(N)]
        zero = 0
        best = -1.0
        for i in range(N):
            ov = abs(sum(v[r * N + i] * q0[r] for r in range(N)))
            if ov > best:
                best, zero = ov, i
        modes = [i for i in range(N) if i != zero]
        nm = len(modes)
        self.n_states = N
        self.n_modes = nm
        self.lam = array("d", [0.0] * nm)
        self.shape = [array("d", [0.0] * nm) for _ in range(N)]  # shape[r][i]: state r, mode i
        self.quasi = array("d", [0.0] * nm)  # steady amplitude per unit flux, beta / lambda
        self.wmax = array("d", [0.0] * nm)  # largest |shape| over the states
        self.col_w = array("d", [0.0] * nm)  # contribution to the column mean
        for i in range(nm):
            col = [v[r * N + modes[i]] for r in range(N)]
            dot = sum(col[r] * q0[r] for r in range(N))  # orthogonal to the zero mode
            col = [col[r] - dot * q0[r] for r in range(N)]
            norm = math.sqrt(sum(x * x for x in col))
            x = [col[r] / norm * rw[r] for r in range(N)]
            # eigenvalue as a Rayleigh quotient in difference form (sum_r w_r x_r**2 = 1):
            # every term positive, so the slow modes keep their relative accuracy
            lam_i = 0.0
            for a, b, kap in edges:
                lam_i += kap * (x[a] - x[b]) ** 2
            if not lam_i > 0.0:
                raise ValueError("film: disconnected cells (lambda <= 0)")
            self.lam[i] = lam_i
            for r in range(N):
                self.shape[r][i] = x[r]
                self.wmax[i] = max(self.wmax[i], abs(x[r]))
            # input: b = -wf e_0, so beta_i = -wf * x_0 (x = W^-1/2 q)
            self.quasi[i] = -wf * x[0] / lam_i
            if res:
                self.col_w[i] = sum(h[j] * x[j] for j in range(n)) / L
        # quasi-steady profile per unit flux, and what the observables need of it
        quasi = [sum(self.shape[r][i] * self.quasi[i] for i in range(nm)) for r in range(N)]
        self.quasi_profile = array("d", quasi)
        self.p_surface = quasi[0] - 0.5 * h[0] / D
        self.p_column = sum(h[j] * quasi[j] for j in range(n)) / L if res else 0.0
        self.m_per_flux = -wf / mass  # d(mean)/dt per unit flux


class LiveModes:
    """The modes still alive since the last edge and the surface value they make: the hot
    path of every sensor read. On MicroPython a function whose locals and stack exceed 11
    words gets its frame from the heap, and allocating floats under such a frame is up to
    ~50x slower (the allocator rescans its heap), so the hot functions here are kept tiny
    (test_film_exact.py checks a stand-in for their frame size)."""

    def __init__(self, lam, c0):
        nm = len(lam)
        self.lam = lam  # by natural index
        self.fac_all = array("d", [0.0] * nm)  # decay factors over dt_cached, natural index
        # live modes, packed at the front (swap-removed when they drop). Lists, not arrays,
        # for what the hot loop reads: a list hands out its float objects, an array('d')
        # boxes a new one at every read (an allocation on MicroPython).
        self.nact = 0
        self.nlam = [0.0] * nm  # -lambda (1/s)
        self.wd = [0.0] * nm  # contribution to the surface at the edge
        self.ws = [0.0] * nm  # the same at t_at
        self.fac = [0.0] * nm  # decay factor over dt_cached
        self.d = array("d", [0.0] * nm)  # modal deviation at the edge
        self.drop = array("d", [0.0] * nm)  # device us from which it is negligible
        self.idx = array("i", [0] * nm)  # natural mode index
        self.t_now = 0  # device time asked for (Film.advance; the plant sets it directly)
        self.t_next_drop = _NEVER
        self.dt_cached = -1
        self.dt_prev = -1
        self.reanchor = 0
        self.t_edge = 0
        self.t_at = 0
        self.base = c0  # surface value at the edge without the modes: mean + J p_surface
        self.m_rate_us = 0.0  # slope of the mean per device us
        self.surf = c0  # surface value at t_at

    def restart(self, t, dev, modes, base, m_rate_us):
        """A current edge at device time t, `dev` the modal deviations (natural index) from
        the new quasi-steady state. Modes below DROP_TOL everywhere are left out."""
        nact = 0
        t_next = _NEVER
        s = base
        for i in range(modes.n_modes):
            d = dev[i]
            size = abs(d) * modes.wmax[i]
            if size <= DROP_TOL:
                continue
            lam = modes.lam[i]
            wd = modes.shape[0][i] * d  # the first cell
            self.nlam[nact] = -lam
            self.wd[nact] = wd
            self.ws[nact] = wd
            self.fac[nact] = self.fac_all[i]
            self.d[nact] = d
            self.idx[nact] = i
            drop = t + math.log(size / DROP_TOL) / lam * 1e6
            self.drop[nact] = drop
            if drop < t_next:
                t_next = int(drop) + 1
            s += wd
            nact += 1
        self.nact = nact
        self.t_next_drop = t_next
        self.t_edge = t
        self.t_at = t
        self.base = base
        self.m_rate_us = m_rate_us
        self.surf = s
        self.dt_prev = -1
        self.reanchor = REANCHOR_EVERY

    def surface_at(self, t):
        """Surface concentration at device time t (t never goes back)."""
        dt = t - self.t_at
        if dt == 0:
            return self.surf
        self.t_at = t
        if t >= self.t_next_drop:
            self.drop_until(t)
        if dt == self.dt_cached and self.reanchor:
            self.reanchor -= 1
            s = self._decay_cached()
        else:
            s = self._decay_exact(t, dt)
        self.dt_prev = dt
        s += self.base + self.m_rate_us * (t - self.t_edge)
        self.surf = s
        return s

    def _decay_cached(self):
        ws = self.ws
        fac = self.fac
        s = 0.0
        for k in range(self.nact):
            v = ws[k] * fac[k]
            ws[k] = v
            s += v
        return s

    def _decay_exact(self, t, dt):
        if dt == self.dt_prev and dt != self.dt_cached:  # a regular interval: cache it
            self.cache_decay(dt)
        self.reanchor = REANCHOR_EVERY  # and re-anchor on the exact exponential
        return self._relax((t - self.t_edge) * 1e-6)

    def _relax(self, tau):
        s = 0.0
        for k in range(self.nact):
            v = _exp(self.nlam[k] * tau) * self.wd[k]
            self.ws[k] = v
            s += v
        return s

    def cache_decay(self, dt):
        x = -dt * 1e-6
        for i in range(len(self.lam)):
            self.fac_all[i] = _exp(self.lam[i] * x)
        for k in range(self.nact):
            self.fac[k] = self.fac_all[self.idx[k]]
        self.dt_cached = dt

    def drop_until(self, t):
        """Swap-remove the modes that are negligible from device time t on."""
        k = 0
        n = self.nact
        t_next = _NEVER
        while k < n:
            if self.drop[k] <= t:
                n -= 1
                for arr in (self.nlam, self.wd, self.ws, self.fac, self.d, self.drop, self.idx):
                    arr[k] = arr[n]
            else:
                t_next = min(t_next, int(self.drop[k]) + 1)
                k += 1
        self.nact = n
        self.t_next_drop = t_next

    def amplitudes(self, tau, out):
        """The modal deviations tau s after the edge into `out` (natural index; the dropped
        ones are left alone), exactly (exp): for the edges and the observables other than
        the surface, which are read seldom."""
        for k in range(self.nact):
            v = self.nlam[k] * tau
            v = self.d[k] * _exp(v)
            out[self.idx[k]] = v


class Film:
    """The film: its grid, its modes and its state; times are device microseconds (int)."""

    def __init__(self, p):
        self.L = float(p["thickness_m"])
        self.D = float(p["d_m2_s"])
        self.c0 = float(p["c0_mol_m3"])
        self.z = int(_get(p, "z", 1))
        self.f = float(_get(p, "contact_fraction", 1.0))
        self.k = float(_get(p, "lateral_rate_per_s", 0.0)) if self.f < 1.0 else 0.0
        n = int(_get(p, "n_cells", 24))
        self.n = n
        self.h, self.x = geometric_grid(self.L, n, float(_get(p, "first_cell_m", self.L / n)))
        self.g = array("d", [0.0] * n)  # conductance between j and j+1 (the wall: 0)
        for j in range(n - 1):
            self.g[j] = self.D / (0.5 * (self.h[j] + self.h[j + 1]))
        self.has_reservoir = self.k > 0.0
        self.modes = Modes(self.h, self.g, self.f, self.k, self.L, self.D)
        self.live = LiveModes(self.modes.lam, self.c0)
        self.amp = array("d", [0.0] * self.modes.n_modes)  # modal deviations at t_amp
        self.t_amp = -1
        self.t_edge = 0
        self.flux = 0.0  # J, mol m-2 s-1 out of the column
        self.m_edge = self.c0  # zero mode (mean) at the edge
        self.m_rate = 0.0  # its slope (mol m-3 s-1)
        self.removed_edge = 0.0

    def advance(self, t_us):
        """Move to device time t_us (lazy: the state is brought up to date when read)."""
        if t_us > self.live.t_now:
            self.live.t_now = t_us

    def set_flux(self, flux, t_us):
        """A current edge: from t_us on the column loses `flux` mol m-2 s-1 at x = 0."""
        self.advance(t_us)
        t = self.live.t_now
        dev = self._amplitudes()
        tau = (t - self.t_edge) * 1e-6
        self.m_edge += self.m_rate * tau
        self.removed_edge += self.f * self.flux * tau
        md = self.modes
        for i in range(md.n_modes):  # deviation from the new quasi-steady state
            dev[i] += (self.flux - flux) * md.quasi[i]
        self.t_edge = t
        self.flux = flux
        self.m_rate = md.m_per_flux * flux
        self.live.restart(t, dev, md, self.m_edge + flux * md.p_surface, self.m_rate * 1e-6)
        self.t_amp = -1

    # ---- observables at the asked-for time ---------------------------------------------
    def surface(self):
        """Concentration at x = 0: the first cell extrapolated with the flux."""
        return self.live.surface_at(self.live.t_now)

    def _amplitudes(self):
        now = self.live.t_now
        if self.t_amp != now:
            a = self.amp
            for i in range(len(a)):
                a[i] = 0.0
            if now >= self.live.t_next_drop:
                self.live.drop_until(now)  # as the surface does: they are gone for good
            self.live.amplitudes((now - self.t_edge) * 1e-6, a)
            self.t_amp = now
        return self.amp

    def _mode_sum(self, weights):
        a = self._amplitudes()
        s = 0.0
        for i in range(len(a)):
            s += weights[i] * a[i]
        return s

    def zero_mode(self):
        """The uniform part of the profile (the mean over the modelled states)."""
        return self.m_edge + self.m_rate * (self.live.t_now - self.t_edge) * 1e-6

    def cell(self, j):
        """Concentration of cell j (j = n: the reservoir)."""
        if j == self.n and not self.has_reservoir:
            return self.c0
        md = self.modes
        m = self.zero_mode() + self.flux * md.quasi_profile[j]
        return m + self._mode_sum(md.shape[j])

    def cells(self):
        return array("d", [self.cell(j) for j in range(self.n)])

    def reservoir(self):
        return self.cell(self.n)

    def column_mean(self):
        if not self.has_reservoir:
            return self.zero_mode()  # the modes carry no column mass
        md = self.modes
        return self.zero_mode() + self.flux * md.p_column + self._mode_sum(md.col_w)

    def mean(self):
        """Mean concentration of the whole film (column and reservoir)."""
        if self.has_reservoir:
            return self.zero_mode()
        return self.f * self.zero_mode() + (1.0 - self.f) * self.c0

    def moles_per_area(self):
        return self.mean() * self.L

    @property
    def removed_mol_m2(self):
        """Species removed through the interface, per unit film area A."""
        return self.removed_edge + self.f * self.flux * (self.live.t_now - self.t_edge) * 1e-6
