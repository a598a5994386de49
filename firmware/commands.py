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

from firmware.cpu_budget import cpu_overload
from firmware.fastops import copy_bytes
from firmware.refuse import Refuse, check_range, s_to_us  # noqa: F401 (the loops' imports)
from firmware.wave_plan import WavePlanner
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


class Commands(WavePlanner):
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
        app.safety.fed(app.rx_tick)  # when the link was read, not the pass's start
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
            d = clock.ticks_diff(smp.next_due[s], app.dc.raw)
            if d > p:
                # faster than before: the next sample comes within a new period from now, not
                # on the old, slower schedule (1 Hz -> 10 Hz waited up to a second); whole
                # new periods earlier, so the grid keeps its phase (sample times, and the
                # emulated sensors' noise with them, do not depend on when the command came)
                smp.next_due[s] = clock.ticks_add(smp.next_due[s], -((d - 1) // p) * p)
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
