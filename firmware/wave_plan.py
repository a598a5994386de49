# ruff: noqa: UP031  (MicroPython code: %-formatting, no f-string features beyond 3.5)
"""Waveform commands to waveform plans: currents in A or A/m2 checked against the board's
limits and quantised to levels the source makes, durations as integer us, cutoffs in raw
ADC counts, staircase levels counted exactly. Mixed into Commands (the adaptive waveforms
in firmware/loops/settle_cmd.py use the same checks)."""

import struct

from firmware import waveform as wf
from firmware.refuse import Refuse, _num, check_range, s_to_us
from firmware.safety import raw_window
from protocol import defs


class WavePlanner:
    def _amps(self, unit, name, value):
        """(amps, factor back to the command's unit) after range checks."""
        app = self.app
        imax = app.limits["max_current_a"]
        if unit == defs.UNIT_A:
            check_range(name, value, -imax, imax, "A")
            return value, 1.0
        if unit == defs.UNIT_A_PER_M2:
            if not app.area_m2:
                raise Refuse(
                    defs.NACK_NOT_CONFIGURED,
                    "%s in A/m2 needs the cell area: send set_cell first" % name,
                )
            jmax = imax / app.area_m2
            check_range(name, value, -jmax, jmax, "A/m2")
            return value * app.area_m2, 1.0 / app.area_m2
        raise Refuse(defs.NACK_OUT_OF_RANGE, "unit=%d outside allowed range [0, 1]" % unit)

    def _quantise(self, amps):
        try:
            return self.app.source.quantise(amps)
        except ValueError:
            raise Refuse(  # noqa: B904 (MicroPython has no exception chaining)
                defs.NACK_OUT_OF_RANGE, "current=%g A outside the source range" % amps
            )

    def _time(self, name, us, lo_s, allow_zero=False):
        """A duration field (integer us on the wire) checked against [lo_s, max_duration_s];
        returns it as a split_us() pair. Integer arithmetic only: a float32 of seconds
        loses time above 2**24 us (16.8 s) on the board."""
        if allow_zero and us == 0:
            return wf.split_us(0)
        lo = s_to_us(lo_s)
        hi = s_to_us(self.app.limits["max_duration_s"])
        if us < lo or us > hi:
            raise Refuse(
                defs.NACK_OUT_OF_RANGE,
                "%s=%d us outside allowed range [%d, %d] us" % (name, us, lo, hi),
            )
        return wf.split_us(us)

    def _cutoffs(self, plan, v_lo, v_hi, q, dur):
        app = self.app
        lim = app.limits
        if not (v_lo == 0 and v_hi == 0):
            check_range("v_min_v", v_lo, lim["min_voltage_v"], lim["compliance_v"], "V")
            check_range("v_max_v", v_hi, lim["min_voltage_v"], lim["compliance_v"], "V")
            if not v_lo < v_hi:
                raise Refuse(
                    defs.NACK_OUT_OF_RANGE,
                    "v_min_v=%g V must be below v_max_v=%g V (or both 0: no cutoff)" % (v_lo, v_hi),
                )
            plan.v_lo_raw, plan.v_hi_raw = raw_window(app.calib, v_lo, v_hi)
        check_range("max_charge_c", q, 0.0, lim.get("max_charge_c", 1e6), "C")
        if q > 0:
            units = int(q / (abs(app.calib["amps_per_count"]) * 1e-4) + 0.5)
            plan.charge_hi = units >> 20
            plan.charge_lo = units & 0xFFFFF
        plan.duration = self._time("max_duration_us", dur, 0.001, True)

    def plan(self, cmd_id, a):
        app = self.app
        lim = app.limits
        p = wf.Plan()
        p.cmd_id = cmd_id
        if cmd_id == defs.CMD_ADAPTIVE_REST or cmd_id == defs.CMD_ADAPTIVE_PULSES:
            from firmware.loops.settle_cmd import plan_adaptive  # closed loops (issue 14)

            return plan_adaptive(self, cmd_id, a)
        min_t = lim.get("min_pulse_s", 0.001)
        if cmd_id == defs.CMD_REST:
            p.kind = wf.REST
            p.t_on = self._time("duration_us", a[0], min_t, True)
            return p, (a[0],)
        unit = a[0]
        if cmd_id == defs.CMD_CONSTANT:
            amps, back = self._amps(unit, "current", a[1])
            p.kind = wf.CONSTANT
            p.code = self._quantise(amps)
            p.amps = app.source.code_to_amps(p.code)
            self._cutoffs(p, *a[2:6])
            return p, (unit, p.amps * back) + tuple(a[2:6])
        if cmd_id in (defs.CMD_PULSE_TRAIN, defs.CMD_GITT):
            on_name = "t_on_us" if cmd_id == defs.CMD_PULSE_TRAIN else "t_pulse_us"
            off_name = "t_off_us" if cmd_id == defs.CMD_PULSE_TRAIN else "t_rest_us"
            amps, back = self._amps(unit, "amplitude", a[1])
            p.kind = wf.PULSE
            p.t_on = self._time(on_name, a[2], min_t)
            p.t_off = self._time(off_name, a[3], min_t, True)
            check_range("count", a[4], 1, 65535)
            p.count = a[4]
            p.code = self._quantise(amps)
            p.amps = app.source.code_to_amps(p.code)
            self._cutoffs(p, *a[5:9])
            return p, (unit, p.amps * back, a[2], a[3], p.count) + tuple(a[5:9])
        # staircase: start, step, stop, dwell_s, on_s
        start, back = self._amps(unit, "start", a[1])
        stop, _ = self._amps(unit, "stop", a[3])
        step_u = a[2]
        if not _num(step_u) or step_u == 0 or (a[3] - a[1]) * step_u < 0:
            raise Refuse(
                defs.NACK_OUT_OF_RANGE,
                "step=%g must be non-zero and lead from start=%g to stop=%g" % (step_u, a[1], a[3]),
            )
        nsteps = staircase_steps(a[1], step_u, a[3])
        check_range("number of steps (stop-start)/step+1", nsteps, 1, 65535)
        dwell_us = a[4]
        on_us = a[5]
        dwell = self._time("dwell_us", dwell_us, min_t)
        if on_us > dwell_us:
            raise Refuse(
                defs.NACK_OUT_OF_RANGE,
                "on_us=%d us outside allowed range [0, dwell_us=%d] us" % (on_us, dwell_us),
            )
        p.kind = wf.STAIRCASE
        p.start_a = start
        p.step_a = step_u / back if back != 1.0 else step_u
        p.count = nsteps
        # the last level must be one the source can make too: found out mid-run it would
        # raise in the loop with the current on
        self._quantise(p.start_a + (nsteps - 1) * p.step_a)
        if on_us == 0 or on_us == dwell_us:
            p.t_on, p.t_off = dwell, wf.split_us(0)
        else:
            p.t_on, p.t_off = wf.split_us(on_us), wf.split_us(dwell_us - on_us)
        code = self._quantise(start)
        p.amps = app.source.code_to_amps(code)
        self._cutoffs(p, *a[6:10])
        return p, (unit, p.amps * back, a[2], a[3], a[4], a[5]) + tuple(a[6:10])


def _f32_parts(x):
    """Exact (mantissa, exponent) of a float32 value: x == m * 2**e (integers)."""
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    e = (b >> 23) & 0xFF
    m = b & 0x7FFFFF
    if e:
        m |= 0x800000
    else:
        e = 1
    if b >> 31:
        m = -m
    return m, e - 150


def staircase_steps(start, step, stop):
    """Number of levels start, start + step, ... up to stop, stop itself included when it
    is within 1/1024 of a step of a level: floor((stop - start) / step + 1/1024) + 1.

    Exact integer arithmetic on the float32 values the command carried (big ints, at the
    command only), so a float32 board and a float64 host agree: -0.1 to 0.1 by 0.001 is 201
    levels everywhere (float32 division said 201, float64 said 200)."""
    ma, ea = _f32_parts(start)
    mb, eb = _f32_parts(stop)
    ms, es = _f32_parts(step)
    e = ea if ea < eb else eb
    d = (mb << (eb - e)) - (ma << (ea - e))  # stop - start = d * 2**e
    if d < 0:
        d = -d
    if ms < 0:
        ms = -ms
    if e >= es:
        num = d << (e - es)
        den = ms
    else:
        num = d
        den = ms << (es - e)
    return (num * 1024 + den) // (den * 1024) + 1
