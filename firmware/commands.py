# ruff: noqa: UP031  (MicroPython code: %-formatting, no f-string features beyond 3.5)
"""Command handling: decode, refuse what is out of range (NACK naming the field and the
allowed range; never clip), apply, and ACK with the values actually applied.

A command identical to the previous one (same cmd_seq, cmd_id and argument bytes: a host
retry after a lost reply) is not applied again: the stored ACK/NACK payload is sent again.
A reused cmd_seq with other arguments is a new command and is applied. The read-only
commands (heartbeat, get_info, get_status, timesync) are always executed, so a retried
get_info brings a HELLO however many replies were lost. A COMMAND frame with reserved
flag bits, a non-zero stream byte or under 3 payload bytes is counted as a bad frame and
not executed (it has no cmd_seq to answer, or comes from a newer protocol).
Any valid command frame feeds the heartbeat watchdog.
"""

import struct

from firmware import waveform as wf
from firmware.fastops import copy_bytes
from firmware.safety import raw_window
from protocol import defs, messages

_EMPTY = ()
_NO_ARGS = (
    defs.CMD_HEARTBEAT,
    defs.CMD_GET_INFO,
    defs.CMD_GET_STATUS,
    defs.CMD_STOP,
    defs.CMD_CLEAR_FAULT,
    defs.CMD_ENTER_REPL,
    defs.CMD_RESET,
)


class Refuse(Exception):
    def __init__(self, reason, text):
        self.reason = reason
        self.text = text


def _num(x):
    return x == x and x not in (float("inf"), float("-inf"))


def check_range(name, value, lo, hi, unit=""):
    """Refuse unless lo <= value <= hi (and finite)."""
    if not _num(value) or value < lo or value > hi:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "%s=%g %s outside allowed range [%g, %g] %s" % (name, value, unit, lo, hi, unit),
        )


_READ_ONLY = (defs.CMD_HEARTBEAT, defs.CMD_GET_INFO, defs.CMD_GET_STATUS, defs.CMD_TIMESYNC)
_LAST_MAX = 96  # the longest command payload (adaptive_pulses with its strain fields: 95 B) fits
_TIMESYNC_LEN = 7  # cmd_seq u16, cmd_id u8, t_us u32


def _same(buf, off, last, n):
    i = 0
    while i < n:
        if buf[off + i] != last[i]:
            return False
        i += 1
    return True


_WAVEFORMS = (
    defs.CMD_REST,
    defs.CMD_CONSTANT,
    defs.CMD_PULSE_TRAIN,
    defs.CMD_STAIRCASE,
    defs.CMD_GITT,
    defs.CMD_ADAPTIVE_REST,
    defs.CMD_ADAPTIVE_PULSES,
)


class Commands:
    def __init__(self, app):
        self.app = app
        self.last_seq = -1
        self.last_id = -1
        self.last_cmd = bytearray(_LAST_MAX)  # payload of the last command executed
        self.last_cmd_n = 0
        self.last_type = 0
        self.last_payload = bytearray(256)
        self.last_n = 0
        self.after = None  # what to run after the ACK went out (a waveform start, ...)

    def handle(self, reader):
        """One command frame. Argument-less commands (heartbeat, get_status, ...) allocate
        nothing, so a host that only heartbeats keeps the heap still (no GC pause)."""
        app = self.app
        app.safety.fed(app.dc.raw)
        buf = reader.buf
        plen = reader.payload_len
        h = defs.HEADER_SIZE
        if (
            plen < defs.COMMAND_HEADER_SIZE
            or reader.flags & ~defs.FLAGS_KNOWN & 0xFF
            or reader.stream != 0
        ):
            reader.bad_frames = reader.bad_frames + 1 if reader.bad_frames < 0x3FFFFFFF else 0
            return
        cmd_seq = buf[h] | (buf[h + 1] << 8)
        cmd_id = buf[h + 2]
        if cmd_id not in _READ_ONLY:
            if (
                cmd_seq == self.last_seq
                and cmd_id == self.last_id
                and plen == self.last_cmd_n
                and _same(buf, h, self.last_cmd, plen)
            ):
                app.link.resend_reply(self.last_type, self.last_payload, self.last_n)
                return
            n = plen if plen <= _LAST_MAX else _LAST_MAX
            copy_bytes(self.last_cmd, 0, buf, h, n)
            self.last_cmd_n = plen if plen <= _LAST_MAX else -1  # too long: never a retry
        if cmd_id == defs.CMD_TIMESYNC and plen == _TIMESYNC_LEN:
            # the host's heartbeat: answered without decoding or a big int (allocates nothing)
            app.link.ack_timesync(cmd_seq, app.dc.t30, app.dc.ep6)
            return
        if plen == defs.COMMAND_HEADER_SIZE and cmd_id in _NO_ARGS:
            args = _EMPTY
            if cmd_id != defs.CMD_HEARTBEAT and cmd_id != defs.CMD_GET_STATUS:
                app.note_garbage()
        else:
            app.note_garbage()
            payload = memoryview(buf)[h:]
            cmd_seq, cmd_id, args = messages.decode_command(payload, plen)
        if args is None:
            if cmd_id not in defs.COMMANDS:
                self._reply_nack(
                    cmd_seq, cmd_id, defs.NACK_UNKNOWN_COMMAND, "unknown command id %d" % cmd_id
                )
            else:
                self._reply_nack(
                    cmd_seq,
                    cmd_id,
                    defs.NACK_BAD_LENGTH,
                    "%s: expected %d argument bytes"
                    % (defs.COMMANDS[cmd_id][0], messages.command_size(cmd_id)),
                )
            return
        self.after = None
        try:
            applied = self.apply(cmd_id, args)
        except Refuse as e:
            self._reply_nack(cmd_seq, cmd_id, e.reason, e.text)
            return
        nb = messages.base_fields(cmd_id, plen)
        if nb and applied:  # it came in its older layout: so does its ACK (issue 14 strain)
            applied = tuple(applied)[:nb]
        self._reply_ack(cmd_seq, cmd_id, applied)
        after = self.after
        if after is not None:
            self.after = None
            after()

    def _remember(self, cmd_seq, cmd_id, msg_type, n):
        if cmd_id in _READ_ONLY:
            return
        w = self.app.link.tx
        off = w.payload_offset
        self.last_seq = cmd_seq
        self.last_id = cmd_id
        self.last_type = msg_type
        self.last_n = n
        copy_bytes(self.last_payload, 0, w.buf, off, n)

    def _reply_ack(self, cmd_seq, cmd_id, applied):
        n = self.app.link.ack(cmd_seq, cmd_id, applied)
        self._remember(cmd_seq, cmd_id, defs.MSG_ACK, n)

    def _reply_nack(self, cmd_seq, cmd_id, reason, text):
        n = self.app.link.nack(cmd_seq, cmd_id, reason, text)
        self._remember(cmd_seq, cmd_id, defs.MSG_NACK, n)

    # ---- dispatch ----------------------------------------------------------------------
    def apply(self, cmd_id, a):
        """Validate and apply; return the applied values (a tuple; empty: zeros) and leave in
        `self.after` what to run after the ACK went out."""
        app = self.app
        lim = app.limits
        if cmd_id == defs.CMD_HEARTBEAT:
            return _EMPTY
        if cmd_id == defs.CMD_GET_INFO:
            app.send_hello()
            return _EMPTY
        if cmd_id == defs.CMD_GET_STATUS:
            app.send_status()
            return _EMPTY
        if cmd_id == defs.CMD_TIMESYNC:
            # the device clock when the command was read (u32 us, the samples' clock); a
            # big int on 32-bit ports, fine off the sampling hot path
            return (app.dc.wire_us(),)
        if cmd_id == defs.CMD_CONFIG_STREAM:
            s, en, rate = a
            if s >= defs.N_STREAMS:
                raise Refuse(
                    defs.NACK_OUT_OF_RANGE,
                    "stream=%d outside allowed range [0, %d]" % (s, defs.N_STREAMS - 1),
                )
            if not app.sampler.fitted[s]:
                raise Refuse(
                    defs.NACK_UNSUPPORTED,
                    "stream=%d (%s) is not fitted on this board" % (s, defs.STREAM_NAMES[s]),
                )
            check_range("enabled", en, 0, 1)
            check_range(
                "rate_hz",
                rate,
                lim.get("min_rate_hz", 0.1),
                lim["max_rate_%s_hz" % defs.STREAM_NAMES[s]],
                "Hz",
            )
            smp = app.sampler
            old_p = smp.period_us[s]
            old_en = smp.enabled[s]
            applied = smp.set_rate(s, rate)
            smp.enabled[s] = bool(en)
            why = cpu_overload(lim, smp)
            if why:
                smp.period_us[s] = old_p
                smp.enabled[s] = old_en
                raise Refuse(defs.NACK_OUT_OF_RANGE, "rate_hz=%g Hz: %s" % (rate, why))
            p = smp.period_us[s]
            clock = app.clock
            if clock.ticks_diff(smp.next_due[s], app.dc.raw) > p:
                # faster than before: the next sample comes a new period from now, not on
                # the old, slower schedule (1 Hz -> 10 Hz waited up to a second)
                smp.next_due[s] = clock.ticks_add(app.dc.raw, p)
            return (s, en, applied)
        if cmd_id == defs.CMD_SET_STREAMING:
            check_range("on", a[0], 0, 1)
            app.set_streaming(a[0])
            return (a[0],)
        if cmd_id == defs.CMD_SET_CELL:
            if app.waveform.running:
                raise Refuse(defs.NACK_BUSY, "set_cell: a waveform is running; stop it first")
            check_range("area_m2", a[0], lim["min_area_m2"], lim["max_area_m2"], "m2")
            app.area_m2 = a[0]
            return (a[0],)
        if cmd_id == defs.CMD_SET_WATCHDOG:
            check_range("timeout_ms", a[0], lim["min_watchdog_ms"], lim["max_watchdog_ms"], "ms")
            app.safety.watchdog_ms = a[0]
            return (a[0],)
        if cmd_id == defs.CMD_SET_VOLTAGE_WINDOW:
            lo, hi = a
            check_range("v_min_v", lo, lim["min_voltage_v"], lim["compliance_v"], "V")
            check_range("v_max_v", hi, lim["min_voltage_v"], lim["compliance_v"], "V")
            if not lo < hi:
                raise Refuse(
                    defs.NACK_OUT_OF_RANGE, "v_min_v=%g V must be below v_max_v=%g V" % (lo, hi)
                )
            app.safety.set_window(lo, hi)
            return (lo, hi)
        if cmd_id == defs.CMD_SET_INTERLOCK:
            from firmware.loops.interlock_cmd import set_interlock  # closed loops (issue 14)

            return set_interlock(app, a)
        if cmd_id == defs.CMD_SET_DERATE:
            from firmware.loops.derate_cmd import set_derate  # closed loops (issue 14)

            return set_derate(app, a)
        if cmd_id == defs.CMD_SET_PRESS_HOLD:
            from firmware.loops.press_hold_cmd import set_press_hold  # closed loops (issue 14)

            return set_press_hold(app, a)
        if cmd_id == defs.CMD_STOP:
            app.waveform.stop(defs.CAUSE_HOST_STOP)
            app.source.off()
            return _EMPTY
        if cmd_id == defs.CMD_CLEAR_FAULT:
            if app.safety.latched:
                why = app.safety.condition_present(app.sampler)
                if why:
                    raise Refuse(defs.NACK_BAD_STATE, "clear_fault: " + why + " still present")
                app.clear_fault()
            return _EMPTY
        if cmd_id == defs.CMD_ENTER_REPL:
            self.after = app.enter_repl
            return _EMPTY
        if cmd_id == defs.CMD_RESET:
            self.after = app.reset
            return _EMPTY
        if cmd_id in _WAVEFORMS:
            if app.safety.latched:
                raise Refuse(
                    defs.NACK_LATCHED,
                    "latched stop (cause %s): send clear_fault first"
                    % defs.CAUSE_NAMES.get(app.safety.cause, "?"),
                )
            if app.waveform.running:
                raise Refuse(defs.NACK_BUSY, "a waveform is running; send stop first")
            plan, applied = self.plan(cmd_id, a)
            # the clock is read again: decoding and checking a waveform command takes ~10 ms
            # on a Pico, and a start anchored to the pass's clock reading made the first
            # phase that much short and stamped EV_WAVEFORM_START before the output switched
            self.after = lambda: app.waveform.start(plan, app.dc.update())
            return applied
        raise Refuse(defs.NACK_UNSUPPORTED, "command %d not supported" % cmd_id)

    # ---- waveform validation --------------------------------------------------------------
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


def s_to_us(x):
    """Seconds (a board limit, float) -> integer us without a float product above 2**24
    (float32 on the board): whole seconds in integers, the fraction rounded."""
    whole = int(x)
    return whole * 1000000 + int(round((x - whole) * 1e6))


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


def stream_cost_us(lim, rate_hz):
    """Estimated CPU us per second of one stream at rate_hz (each record its own wake-up)."""
    return rate_hz * (lim.get("record_cost_us", 0) + lim.get("wake_cost_us", 0))


def cpu_overload(lim, smp):
    """Text saying why the enabled streams exceed the board's CPU budget, else None."""
    frac = lim.get("max_cpu_fraction", 0)
    if not frac:
        return None
    total = 0.0
    for s in range(defs.N_STREAMS):
        if smp.fitted[s]:  # acquired whether sent or not (safety uses the readings)
            total += stream_cost_us(lim, 1000000 / smp.period_us[s])
    if total <= frac * 1e6:
        return None
    return "the streams would need %.0f %% of the CPU (board budget %.0f %%: %g us a record, %g us a wake-up)" % (
        total / 1e4,
        frac * 100,
        lim.get("record_cost_us", 0),
        lim.get("wake_cost_us", 0),
    )
