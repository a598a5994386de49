"""Fake machine-level hardware for the emulated board, backed by the plant.

The firmware's real drivers run on top of these objects exactly as on a board: `Pin`
(value), `ADC.read_u16`, `PWM.duty_u16`, a `UART` with any()/readinto() fed by an emulated
FBG interrogator, an HX711 chip behind two pins (bit-bang) or an rp2-style StateMachine
(PIO path), and the device clock.

The plant is "hardware": its float arithmetic allocates on the MicroPython heap, so every
entry into it lifts a heap lock the firmware may hold (`_unlocked`); the firmware's own
code stays under the lock. Noise is a hash of (seed, sensor, conversion index or sweep
number or device millisecond), so a seed reproduces the data whatever the order of reads.
"""

import json
import math
import time

import micropython

try:
    from plant import Plant, XorShift, gauss_at
except ImportError:  # imported as a package from CPython
    from boards.emulated.plant import Plant, XorShift, gauss_at

_T30 = 0x40000000
_T30_MASK = 0x3FFFFFFF
_T29 = 0x20000000


# ---- the device clock -------------------------------------------------------------------
DEFAULT_MAX_STEP_US = 5000


class EmuClock:
    """Device clock = wall clock x speed, integer arithmetic only (no allocation).

    `ticks_us` wraps at 2**30 like the MicroPython ports of real boards, so the firmware's
    wrap handling is exercised; `now_us()` is the unwrapped device time the plant uses.
    """

    def __init__(self, speed=1.0, max_step_us=None):
        self.num = int(round(speed * 1000))
        if self.num < 1:
            self.num = 1
        self.den = 1000
        self.wall0 = time.ticks_us()
        self.last = 0
        # When the VM cannot keep up with the requested speed, the device clock slips
        # instead of running away: after the firmware's loop last slept, the clock runs at
        # most `max_step_us` past the planned wake-up (default 5 ms, half the period of
        # the fastest default stream, so no sample slot is skipped) and from there on at
        # real time (speed 1), as a real board would. Without this a slow loop sees longer
        # intervals, the plant and the fake parts have more to catch up, the loop gets
        # slower still, and the board stops answering or skips samples. `slip_us` is the
        # device time given up so far (0 while the VM keeps up): --speed is a maximum.
        if max_step_us is None:
            max_step_us = DEFAULT_MAX_STEP_US
        self.max_step_us = max_step_us
        self.cap_us = max_step_us
        self.cap_wall = self.wall0
        self.slip_us = 0

    def now_us(self):
        w = time.ticks_us()
        t = time.ticks_diff(w, self.wall0) * self.num // self.den - self.slip_us
        if t < self.last:
            t = self.last
        else:
            cap = self.cap_us + time.ticks_diff(w, self.cap_wall)
            if t > cap:
                self.slip_us += t - cap
                t = cap
        self.last = t
        return t

    def hide_wall_us(self, wall_us):
        """Let `wall_us` of the emulator's own bookkeeping pass without device time."""
        self.slip_us += wall_us * self.num // self.den
        self.cap_wall = time.ticks_add(self.cap_wall, wall_us)

    def ticks_us(self):
        return self.now_us() & _T30_MASK

    def ticks_ms(self):
        return (self.now_us() // 1000) & _T30_MASK

    def ticks_diff(self, a, b):
        return ((a - b + _T29) & _T30_MASK) - _T29

    def ticks_add(self, a, d):
        return (a + d) & _T30_MASK

    def sleep_us(self, n):
        if n > 0:
            self.cap_us = self.last + n + self.max_step_us
            self.cap_wall = time.ticks_us()
            time.sleep_us(n * self.den // self.num)

    def sleep_ms(self, n):
        self.sleep_us(n * 1000)


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
    for _ in range(n):
        micropython.heap_lock()


# ---- the hardware around the plant ------------------------------------------------------
class Hardware:
    """Owns the plant, the clock and the sensor front ends; the fake parts call into it."""

    def __init__(self, scenario, seed=0, speed=1.0, ctrl_port=0):
        self.sc = scenario
        self.clock = EmuClock(speed)
        self.plant = Plant(scenario, seed)
        self.faults = {}
        sf = (scenario.get("faults") or {}).get("sensors") or {}
        self.faults.update(sf)
        self.ctrl = None
        self._ctrl_buf = bytearray(512)
        self._ctrl_next = 0
        if ctrl_port:
            import socket

            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(socket.getaddrinfo("127.0.0.1", ctrl_port)[0][-1])
            s.setblocking(False)
            self.ctrl = s
        src = scenario.get("source") or {}
        self.i_max = float(src.get("max_current_a", 0.01))
        self.v_half = float(src.get("voltage_range_v", 5.0))
        self.dac_code = 32768
        self.enabled = False
        self.amps_per_lsb = self.i_max / 32768.0
        self.dac_gain_error = float(src.get("dac_gain_error", 0.0))
        self.v_noise = float(src.get("voltage_noise_v", 50e-6))
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
        t = self.clock.now_us()
        self.plant.advance(t)
        self._poll_ctrl(t)
        return t

    def _poll_ctrl(self, t):
        if self.ctrl is None or t < self._ctrl_next:
            return
        self._ctrl_next = t + 20000
        while True:
            try:
                n = self.ctrl.readinto(self._ctrl_buf)
            except OSError:
                return
            if not n:
                return
            try:
                msg = json.loads(bytes(self._ctrl_buf[:n]))
            except ValueError:
                continue
            self.apply_control(msg)

    def apply_control(self, msg):
        for k in msg:
            v = msg[k]
            if k == "clear":
                self.faults = {}
            elif k == "ambient_c":
                self.plant.t_amb0 = float(v)
            elif v is None or v == "ok" or v is False:
                if k in self.faults:
                    del self.faults[k]
            else:
                self.faults[k] = v

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

    def read_voltage_u16(self):
        n = _unlock()
        try:
            t = self.now()
            v = self.plant.voltage() + self.v_noise * gauss_at(self.seed, 1, t // 1000)
            code = int((v + self.v_half) * 65536.0 / (2.0 * self.v_half))
        finally:
            _relock(n)
        return 0 if code < 0 else (65535 if code > 65535 else code)

    def read_current_u16(self):
        n = _unlock()
        try:
            t = self.now()
            i = self.plant.current + self.i_noise * gauss_at(self.seed, 2, t // 1000)
            code = int(32768 + i * 32768.0 / self.i_max)
        finally:
            _relock(n)
        return 0 if code < 0 else (65535 if code > 65535 else code)

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
            code = int(x * 65535.0 + self.th_noise * gauss_at(self.seed, 3, t // 1000))
        finally:
            _relock(n)
        return 1 if code < 1 else (65534 if code > 65534 else code)

    # -- the load cell (bridge counts at a conversion) --
    def load_counts(self, k_conv=0, t_conv_us=0):
        """Bridge counts of conversion number k_conv, finished at device time t_conv_us."""
        n = _unlock()
        try:
            self.now()
            p = self.plant
            f = p.force_n(t_conv_us * 1e-6)
            c = self.lc_tare + f / self.lc_span + self.lc_noise * gauss_at(self.seed, 5, k_conv)
            if self.lc_tc:
                c += self.lc_tc * (p.temperature_c() - p.ambient_c())
            counts = int(c)
        finally:
            _relock(n)
        if counts > 0x7FFFFF:
            counts = 0x7FFFFF
        if counts < -0x800000:
            counts = -0x800000
        return counts & 0xFFFFFF

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


# ---- machine-level parts --------------------------------------------------------------
class Pin:
    """A GPIO; `on_change(pin, v)` lets a fake chip see writes, `reader()` supplies reads."""

    OUT = 1
    IN = 0

    def __init__(self, num=0, mode=0, value=0, reader=None, on_change=None):
        self.num = num
        self._v = value
        self.reader = reader
        self.on_change = on_change

    def value(self, v=None):
        if v is None:
            if self.reader is not None:
                return self.reader()
            return self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            if self.on_change is not None:
                self.on_change(v)
        return None

    def __call__(self, v=None):
        return self.value(v)


class ADC:
    def __init__(self, read):
        self._read = read

    def read_u16(self):
        return self._read()


class PWM:
    """The current source's setpoint PWM (bipolar around mid-scale)."""

    def __init__(self, hw):
        self.hw = hw
        self.code = 32768

    def duty_u16(self, code=None):
        if code is None:
            return self.code
        self.code = code
        self.hw.dac_code = code
        self.hw.source_changed()
        return None

    def freq(self, f=None):
        return 100000 if f is None else None


class DAC(PWM):
    def write(self, code):
        self.duty_u16(code)


class EnablePin(Pin):
    def __init__(self, hw, num=0):
        Pin.__init__(self, num)
        self.hw = hw

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
        self.hw.enabled = bool(self._v)
        self.hw.source_changed()
        return None


class InterrogatorUART:
    """UART fed by an emulated FBG interrogator sweeping at `rate_hz` of device time.

    Every sweep becomes a line in the UART's receive buffer (RX_BUF bytes, as the port's
    rxbuf); when the firmware falls behind and the buffer is full, further lines are lost
    as on a real port. Sweep n happens at device time n / rate.
    """

    RX_BUF = 1024

    def __init__(self, hw, rate_hz):
        self.hw = hw
        self.period_us = int(1000000 // rate_hz) if rate_hz > 0 else 0
        self.next_us = self.period_us
        self.seq = 0
        self.buf = bytearray(self.RX_BUF)
        self.line = bytearray(200)
        self.n = 0
        self.pos = 0
        self.overflows = 0

    def _fill(self):
        if not self.period_us or self.hw.clock.now_us() < self.next_us:
            return
        n = _unlock()  # the interrogator is not the board: its work may allocate
        try:
            self._sweeps()
        finally:
            _relock(n)

    def _sweeps(self):
        t = self.hw.clock.now_us()
        if t < self.next_us:
            return
        behind = (t - self.next_us) // self.period_us + 1  # sweeps due
        if behind > 64:  # far behind (a stalled loop): the older sweeps are long gone
            skip = behind - 64
            self.seq += skip
            self.next_us += skip * self.period_us
            self.overflows += skip
            behind = 64
        if self.pos:  # compact what the firmware has not read yet
            b = self.buf
            k = self.n - self.pos
            for i in range(k):
                b[i] = b[self.pos + i]
            self.n = k
            self.pos = 0
        silent = self.hw.faults.get("fbg_silent")
        for _ in range(behind):
            self.seq += 1
            t_sweep = self.next_us
            self.next_us += self.period_us
            if silent:
                continue
            k = self.hw.fbg_line(self.seq, self.line, t_sweep)
            if self.n + k > self.RX_BUF:
                self.overflows += 1
                continue
            self.buf[self.n : self.n + k] = self.line[:k]
            self.n += k

    def any(self):
        self._fill()
        return self.n - self.pos

    def readinto(self, buf, nbytes=-1):
        self._fill()
        k = self.n - self.pos
        m = len(buf) if nbytes < 0 else nbytes
        if k > m:
            k = m
        b = self.buf
        p = self.pos
        for i in range(k):
            buf[i] = b[p + i]
        self.pos = p + k
        return k if k else None

    def read(self, n=-1):
        self._fill()
        k = self.n - self.pos
        if 0 <= n < k:
            k = n
        out = bytes(self.buf[self.pos : self.pos + k])
        self.pos += k
        return out


class HX711Chip:
    """An HX711 conversion timeline on device time (10 or 80 SPS), bit-bang or PIO side."""

    def __init__(self, hw, rate_sps=10):
        self.hw = hw
        self.rate_sps = rate_sps
        self.period_us = 1000000 // rate_sps
        self.next_conv = self.period_us
        self.ready_word = -1  # latched conversion not yet read
        self.word = 0
        self.bit = 0  # bits clocked out so far in the current read
        self.gain_pulses = 1
        self.rng = XorShift(hw.plant.rng_seed * 13 + 9)
        self.conversions = 0
        self.fifo = []  # PIO path

    def _convert(self):
        """Latch the newest conversion if one fell due (older ones are overwritten)."""
        t = self.hw.clock.now_us()
        if t < self.next_conv:
            return
        n = _unlock()
        try:
            self._latch_newest(t)
        finally:
            _relock(n)

    def _latch_newest(self, t):
        k = (t - self.next_conv) // self.period_us
        t_conv = self.next_conv + k * self.period_us  # the newest conversion that finished
        self.next_conv = t_conv + self.period_us
        faults = self.hw.faults
        if faults.get("loadcell") == "not_ready":
            return
        w = self.hw.load_counts(t_conv // self.period_us, t_conv)
        g = faults.get("loadcell_glitch_rate")
        if faults.get("loadcell") == "glitch" or (g and self.rng.uniform() < float(g)):
            w = 0xFFFFFF
        self.ready_word = w
        self.conversions += 1

    def convert_one(self):
        """Latch the oldest conversion not yet made if it is due; False when none is."""
        t = self.hw.clock.now_us()
        if t < self.next_conv:
            return False
        t_conv = self.next_conv
        lag = (t - t_conv) // self.period_us
        if lag > 8:  # far behind: skip what the FIFO could never have held
            t_conv += (lag - 8) * self.period_us
        self.next_conv = t_conv + self.period_us
        faults = self.hw.faults
        if faults.get("loadcell") == "not_ready":
            return True
        w = self.hw.load_counts(t_conv // self.period_us, t_conv)
        g = faults.get("loadcell_glitch_rate")
        if faults.get("loadcell") == "glitch" or (g and self.rng.uniform() < float(g)):
            w = 0xFFFFFF
        self.ready_word = w
        self.conversions += 1
        return True

    # bit-bang side: DOUT and PD_SCK
    def dout(self):
        if self.bit == 0:
            self._convert()
            return 0 if self.ready_word >= 0 else 1
        if self.bit > 24:
            return 1
        return (self.word >> (24 - self.bit)) & 1

    def sck(self, v):
        if not v:
            return
        if self.bit == 0:
            if self.ready_word < 0:
                return
            self.word = self.ready_word
            self.ready_word = -1
        self.bit += 1
        if self.bit >= 24 + self.gain_pulses:
            self.bit = 0

    def pins(self, num_dout=0, num_sck=1):
        return Pin(num_dout, reader=self.dout), Pin(num_sck, on_change=self.sck)


class StateMachine:
    """rp2.StateMachine look-alike running the HX711 PIO program: RX FIFO of 24-bit words."""

    def __init__(self, chip, depth=4):
        self.chip = chip
        self.depth = depth
        self.active_ = False

    def active(self, v=None):
        if v is None:
            return self.active_
        self.active_ = bool(v)
        return None

    def put(self, v):
        self.chip.gain_pulses = (v & 3) + 1

    def _run(self):
        if self.chip.hw.clock.now_us() < self.chip.next_conv:
            return
        n = _unlock()
        try:
            self._push()
        finally:
            _relock(n)

    def _push(self):
        # the PIO program reads every conversion as it completes, whether or not the CPU
        # looks: all conversions since the last look go into the FIFO (push noblock: a
        # full FIFO drops the new word)
        c = self.chip
        while c.convert_one():
            if c.ready_word >= 0:
                if len(c.fifo) < self.depth:
                    c.fifo.append(c.ready_word)
                c.ready_word = -1

    def rx_fifo(self):
        self._run()
        return len(self.chip.fifo)

    def get(self, buf=None, shift=0):
        self._run()
        while not self.chip.fifo:
            self.chip.hw.clock.sleep_us(1000)
            self._run()
        return self.chip.fifo.pop(0) >> shift
