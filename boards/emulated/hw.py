"""The hardware around the plant: sensor front ends and the current source, on device time.

The fake parts the firmware's drivers talk to (parts.py: pins, ADCs, the setpoint PWM;
hx711_chip.py; interrogator.py; usb_cdc.py) call into `Hardware`, which owns the plant, the
virtual clock (clock.py) and the cost model (costs.py), and turns the plant's state at the
current device time into raw codes, as the real front ends would.

The plant is "hardware": its float arithmetic allocates on the MicroPython heap, so every
entry into it lifts a heap lock the firmware may hold (`_unlocked`); the firmware's own
code stays under the lock. Noise is a hash of (seed, sensor, conversion index or sweep
number or device microsecond), so a seed reproduces the data whatever the order of reads.
"""

import math

import micropython

try:
    from control import Control
    from plant import Plant, gauss_at
except ImportError:  # imported as a package from CPython
    from boards.emulated.control import Control
    from boards.emulated.plant import Plant, gauss_at

_K30 = 0x3FFFFFFF


def noise_key(t_us):
    """A small-int key for device time t_us that does not repeat when t_us passes 2**30."""
    return (t_us ^ (t_us >> 30) * 40503) & _K30


def _unlock():
    """Lift a heap lock held by the caller; returns how many levels to restore."""
    n = 0
    try:
        while True:
            micropython.heap_lock()
            depth = micropython.heap_unlock()
            if depth == 0:
                break
            micropython.heap_unlock()
            n += 1
    except AttributeError:
        pass
    return n


def _relock(n):
    while n > 0:  # (a for over range(n) made a range object per call)
        micropython.heap_lock()
        n -= 1


# ---- the hardware around the plant ------------------------------------------------------
class Hardware:
    """Owns the plant, the clock and the sensor front ends; the fake parts call into it."""

    def __init__(self, scenario, clock, cost, seed=0, ctrl_port=0):
        self.sc = scenario
        self.clock = clock
        self.cost = cost
        self.plant = Plant(scenario, seed)
        self.faults = {}
        sf = (scenario.get("faults") or {}).get("sensors") or {}
        self.faults.update(sf)
        self.control = Control(ctrl_port, self.apply_control)
        src = scenario.get("source") or {}
        self.i_max = float(src.get("max_current_a", 0.01))
        self.v_half = float(src.get("voltage_range_v", 5.0))
        self.dac_code = 32768
        self.enabled = False
        self.amps_per_lsb = self.i_max / 32768.0
        self.dac_gain_error = float(src.get("dac_gain_error", 0.0))
        self.v_noise = float(src.get("voltage_noise_v", 50e-6))
        self.v_counts_per_v = 65536.0 / (2.0 * self.v_half)
        self.i_counts_per_a = 32768.0 / self.i_max
        self.i_noise = float(src.get("current_noise_a", self.i_max * 2e-5))
        # sensor noise: gauss_at(seed, sensor, key) keyed by conversion index / sweep
        # number / device ms, so a seed reproduces the data whatever the read order
        self.seed = seed
        # constants of the sensor front ends, read once (the reads allocate less)
        th = scenario.get("thermistor") or {}
        self.th_beta = float(th.get("beta", 3950.0))
        self.th_r0 = float(th.get("r0_ohm", 10000.0))
        self.th_inv_t0 = 1.0 / (float(th.get("t0_c", 25.0)) + 273.15)
        self.th_rs = float(th.get("r_series_ohm", 10000.0))
        self.th_noise = float(th.get("noise_counts", 2.0))
        lc = scenario.get("loadcell") or {}
        self.lc_span = float(lc.get("span_n_per_count", 1e-3))
        self.lc_tare = float(lc.get("tare_counts", 0.0))
        self.lc_tc = float(lc.get("zero_drift_counts_per_k", 0.0))
        self.lc_noise = float(lc.get("noise_counts", 20.0))
        fb = scenario.get("fbg") or {}
        self.fb_pe = float(fb.get("p_e", 0.22))
        self.fb_kt = float(fb.get("thermal_per_k", 7.25e-6))
        self.fb_kt2 = float(fb.get("thermal_per_k2", 0.0))
        self.fb_tref = float(fb.get("t_ref_c", 25.0))
        self.fb_noise_nm = float(fb.get("noise_pm", 1.0)) * 1e-3
        self.fb_gratings = [
            (
                float(g["lambda0_nm"]),
                g.get("role", "sensing") == "sensing",
                float(g.get("strain_transfer", 1.0)),
            )
            for g in fb.get("gratings", [])
        ]

    # -- time and the control channel --
    def now(self):
        """Device time, with the plant advanced to it (call with the heap unlocked)."""
        t = self.clock.t
        self.plant.advance(t)
        self.control.poll(t)
        return t

    def apply_control(self, msg):
        for k in msg:
            v = msg[k]
            if k == "clear":
                self.faults = {}
            elif k == "hold_at_us":
                self.clock.hold(int(v))
            elif k == "release":
                self.clock.release()
            elif k == "ambient_c":
                self.plant.t_amb0 = float(v)
            elif k == "applied_mass_kg":
                # known masses on the load cell (calibration): m * g on top of the stack
                self.plant.applied_n = float(v) * 9.80665
            elif k == "force_ramp":
                # [N/s, t0_us, t1_us]: the press ramps its force (a known rate step)
                self.plant.ramp_n_per_s = float(v[0])
                self.plant.ramp_t0_s = int(v[1]) * 1e-6
                self.plant.ramp_t1_s = int(v[2]) * 1e-6
            elif k == "press_open":
                # the load cell out of the stack's force path (calibration fixture)
                self.plant.press_open = bool(v)
            elif k == "fresh_cell":
                if v:
                    self._fresh_cell()
            elif v is None or v == "ok" or v is False:
                if k in self.faults:
                    del self.faults[k]
            else:
                self.faults[k] = v

    def _fresh_cell(self):
        """A new cell in the rig (a protocol step with `fresh_cell`): the plant starts again
        from the scenario at this device time, as the paper's series each started on a new
        cell. The rig stays: the press, the masses on it, the ambient and the clock."""
        old = self.plant
        t = self.clock.t
        new = Plant(self.sc, old.rng_seed)
        new.t_amb0 = old.t_amb0
        new.applied_n = old.applied_n
        new.press_open = old.press_open
        new.ramp_n_per_s = old.ramp_n_per_s
        new.ramp_t0_s = old.ramp_t0_s
        new.ramp_t1_s = old.ramp_t1_s
        new.press = old.press  # the rig's press and where its actuator stands
        new.advance(t)  # the new cell's clock is the device clock; no charge passed yet
        new.t_edge = t
        new.film.set_flux(0.0, t)  # its film is uniform from now on
        if old.current:
            new.set_current(old.current, t)
        self.plant = new

    # -- the current source --
    def applied_current(self):
        if not self.enabled:
            return 0.0
        return (self.dac_code - 32768) * self.amps_per_lsb * (1.0 + self.dac_gain_error)

    def source_changed(self):
        n = _unlock()
        try:
            t = self.clock.now_us()
            self.plant.set_current(self.applied_current(), t)
        finally:
            _relock(n)

    # The read paths are split into small functions on purpose: a MicroPython function
    # with more than about 11 locals and stack slots gets its frame from the heap, and
    # every float made inside such a function then costs many times more.
    def read_voltage_u16(self):
        n = _unlock()
        try:
            code = self._voltage_code()
        finally:
            _relock(n)
        return 0 if code < 0 else (65535 if code > 65535 else code)

    def _voltage_code(self):
        noise = self.v_noise * gauss_at(self.seed, 1, noise_key(self.now()))
        return int((self.plant.voltage() + noise + self.v_half) * self.v_counts_per_v)

    def read_current_u16(self):
        n = _unlock()
        try:
            code = self._current_code()
        finally:
            _relock(n)
        return 0 if code < 0 else (65535 if code > 65535 else code)

    def _current_code(self):
        noise = self.i_noise * gauss_at(self.seed, 2, noise_key(self.now()))
        return int(32768 + (self.plant.current + noise) * self.i_counts_per_a)

    # -- the thermistor divider --
    def read_thermistor_u16(self):
        f = self.faults.get("thermistor")
        if f == "open":
            return 65535
        if f == "short":
            return 0
        n = _unlock()
        try:
            t = self.now()
            tk = self.plant.temperature_c() + 273.15
            r = self.th_r0 * math.exp(self.th_beta * (1.0 / tk - self.th_inv_t0))
            x = r / (r + self.th_rs)
            code = int(x * 65535.0 + self.th_noise * gauss_at(self.seed, 3, noise_key(t)))
        finally:
            _relock(n)
        return 1 if code < 1 else (65534 if code > 65534 else code)

    # -- the load cell (bridge counts at a conversion) --
    def load_counts(self, k_conv=0, t_conv_us=0):
        """Bridge counts of conversion number k_conv, finished at device time t_conv_us."""
        # no try/finally: it would not leave this frame room on MicroPython's C stack (it runs
        # at every conversion), and an exception from the plant ends the board anyway
        n = _unlock()
        counts = self._bridge_counts(k_conv, t_conv_us)
        _relock(n)
        if counts > 0x7FFFFF:
            counts = 0x7FFFFF
        if counts < -0x800000:
            counts = -0x800000
        return counts & 0xFFFFFF

    def _bridge_counts(self, k_conv, t_conv_us):
        self.now()
        p = self.plant
        c = self.lc_tare + p.force_n(t_conv_us * 1e-6) / self.lc_span
        c += self.lc_noise * gauss_at(self.seed, 5, k_conv)
        if self.lc_tc:
            c += self.lc_tc * (p.temperature_c() - p.ambient_c())
        return int(c)

    # -- the FBG interrogator line --
    def fbg_line(self, seq, out, t_sweep_us=0):
        """Write one '#P seq nm nm ...\\n' sweep into bytearray `out`; return its length."""
        n = _unlock()
        try:
            self.now()
            p = self.plant
            dT = p.temperature_c(t_sweep_us * 1e-6) - self.fb_tref
            eps = p.strain(t_sweep_us * 1e-6)
            common = self.fb_kt * dT + self.fb_kt2 * dT * dT
            strain_rel = (1.0 - self.fb_pe) * eps
            lost = self.faults.get("fbg_lost") or ()
            outwin = self.faults.get("fbg_out_of_window") or ()
            parts = ["#P %d" % seq]
            gi = 0
            for lam0, sensing, transfer in self.fb_gratings:
                rel = common + strain_rel * transfer if sensing else common
                noise = self.fb_noise_nm * gauss_at(self.seed, 10 + gi, seq)
                lam = lam0 * (1.0 + rel) + noise
                if gi in outwin:
                    lam += 5.0
                if gi not in lost:
                    parts.append("%.6f" % lam)
                gi += 1
            s = (" ".join(parts) + "\n").encode()
        finally:
            _relock(n)
        k = len(s)
        out[:k] = s
        return k
