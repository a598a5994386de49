"""Safety: board limits as raw-count thresholds, the heartbeat watchdog and the latch.

Checks run on every fresh reading (no allocation): while the output is on, compliance
voltage (board limit), the voltage window set by SET_VOLTAGE_WINDOW, over-current (10 %
above the board's max |current| plus 16 counts); always, over-force and over-temperature.
A saturated load-cell reading (full scale) is over-force whatever the limit. A missing/open sensor is reported once as EV_SENSOR_FAULT and latches only when a
waveform is running (its protection is gone). The watchdog latches when a waveform is
running and no valid command frame arrived for `timeout_ms`. A latch switches the output
off at once; only CLEAR_FAULT (with the condition gone) releases it.
"""

from micropython import const

from protocol import defs

_CHUNK = const(0x10000000)  # 2**28 us: ticks_diff spans only +-2**29 us on boards
_FULL_SCALE = const(0x7FFFFF)  # 24-bit bridge ADC


def volts_to_raw(calib, v):
    return (v - calib.get("volts_offset_v", 0.0)) / calib["volts_per_count"]


def raw_window(calib, v_lo, v_hi):
    """(raw at v_lo, raw at v_hi) as ints, ordered low/high in raw counts."""
    a = volts_to_raw(calib, v_lo)
    b = volts_to_raw(calib, v_hi)
    if a <= b:
        return int(a + 0.999999), int(b)  # inside the window stays inside after rounding
    return int(b + 0.999999), int(a)


class Safety:
    def __init__(self, limits, calib, i_zero_raw, watchdog_ms):
        self.limits = limits
        self.calib = calib
        self.i_zero = i_zero_raw
        self.compliance_raw = raw_window(calib, limits["min_voltage_v"], limits["compliance_v"])
        self.set_window(limits["min_voltage_v"], limits["compliance_v"])
        self.i_max_raw = int(1.1 * limits["max_current_a"] / abs(calib["amps_per_count"])) + 16
        nps = calib.get("load_n_per_count", 0.0)
        off = calib.get("load_offset_n", 0.0)
        fmax = limits.get("max_force_n", 0.0)
        if nps:
            a = (-fmax - off) / nps
            b = (fmax - off) / nps
            # a limit beyond the 24-bit full scale could never be reached: the ADC saturates
            # first. Saturation (LOAD_SATURATED) trips over-force in any case.
            self.force_lo = int(max(min(a, b), -_FULL_SCALE))
            self.force_hi = int(min(max(a, b), _FULL_SCALE))
        else:
            self.force_lo = self.force_hi = None
        self.max_mdegc = int(limits.get("max_temp_c", 1000.0) * 1000)
        self.watchdog_ms = watchdog_ms
        self.last_rx = 0
        self.silent_us = 0  # silence already folded out of last_rx (timeouts > 2**29 us)
        self.latched = False
        self.cause = defs.CAUSE_NONE
        self.sensor_bad = 0  # bit s: stream s reported a sensor fault
        self.new_sensor_fault = -1  # stream id to report as EV_SENSOR_FAULT, -1: none

    def set_window(self, v_lo, v_hi):
        self.v_min_v = v_lo
        self.v_max_v = v_hi
        self.win_lo, self.win_hi = raw_window(self.calib, v_lo, v_hi)

    def fed(self, now):
        self.last_rx = now
        self.silent_us = 0

    def watchdog_wait_us(self, clock, now):
        """Device us until the watchdog would fire (a deadline for the loop's sleep)."""
        left = self.watchdog_ms * 1000 - self.silent_us - clock.ticks_diff(now, self.last_rx)
        return left + 1 if left > 0 else 1

    def check(self, clock, now, smp, output_on, running):
        """Return a latch cause (0 when all is well). (One method per stream: a frame this
        big would come from MicroPython's heap at every pass, see firmware/app.py.)"""
        c = 0
        if smp.fresh & 4 and output_on:  # ELEC
            c = self._elec(smp)
        if not c and smp.fresh & 1:  # LOAD
            c = self._load(smp, running)
        if not c and smp.fresh & 8:  # TEMP
            c = self._temp(smp, running)
        if not c and running and self.watchdog_fired(clock, now):
            c = defs.CAUSE_WATCHDOG
        return c

    def _elec(self, smp):
        v = smp.v_raw
        if v >= self.compliance_raw[1]:
            smp.elec_state |= defs.ELEC_COMPLIANCE
            return defs.CAUSE_COMPLIANCE
        if v <= self.win_lo:
            return defs.CAUSE_V_MIN
        if v >= self.win_hi:
            return defs.CAUSE_V_MAX
        di = smp.i_raw - self.i_zero
        if di > self.i_max_raw or -di > self.i_max_raw:
            return defs.CAUSE_OVER_CURRENT
        return 0

    def _load(self, smp, running):
        st = smp.load_status
        if st & defs.LOAD_NOT_READY and smp.loadcell.missing:
            return defs.CAUSE_SENSOR_FAULT if self._sensor(0, running) else 0
        self.sensor_bad &= ~1
        if st & defs.LOAD_SATURATED:
            return defs.CAUSE_OVER_FORCE
        c = smp.load_counts
        if self.force_lo is not None and not (st & defs.LOAD_GLITCH):
            if c < self.force_lo or c > self.force_hi:
                return defs.CAUSE_OVER_FORCE
        return 0

    def _temp(self, smp, running):
        if not smp.temp_ok:
            return defs.CAUSE_SENSOR_FAULT if self._sensor(3, running) else 0
        self.sensor_bad &= ~8
        if smp.temp_mdegc > self.max_mdegc:
            return defs.CAUSE_OVER_TEMP
        return 0

    def watchdog_fired(self, clock, now):
        """True when no valid command frame arrived for the watchdog timeout (only a
        running waveform latches on it: the caller decides)."""
        d = clock.ticks_diff(now, self.last_rx)
        if d >= _CHUNK:  # fold long silences in before a single ticks_diff would wrap
            self.last_rx = clock.ticks_add(self.last_rx, _CHUNK)
            d -= _CHUNK
            if self.silent_us < 3 * _CHUNK:  # stays a small int (< 2**30) with d added
                self.silent_us += _CHUNK
        return self.watchdog_ms and self.silent_us + d > self.watchdog_ms * 1000

    def _sensor(self, s, running):
        bit = 1 << s
        if not (self.sensor_bad & bit):
            self.sensor_bad |= bit
            self.new_sensor_fault = s
        return running

    def condition_present(self, smp):
        """Text naming a latch condition that still holds, else None (CLEAR_FAULT)."""
        if smp.temp_ok and smp.temp_mdegc > self.max_mdegc:
            return "temperature above max_temp_c"
        st = smp.load_status
        if st & defs.LOAD_SATURATED:
            return "force at the load-cell ADC's full scale"
        if self.force_lo is not None and not (st & 3):
            c = smp.load_counts
            if c < self.force_lo or c > self.force_hi:
                return "force above max_force_n"
        return None
