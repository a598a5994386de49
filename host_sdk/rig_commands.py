"""The command API of a Rig: cmd_seq, send/retry/wait for the reply, one method per command
(configuration, waveforms with their cutoffs, status, info, timesync)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from host_sdk import wire
from host_sdk.rig_state import RigState
from host_sdk.rig_types import (
    CommandRefused,
    CommandTimeout,
    Cutoffs,
    _check_count,
    _Pending,
)
from host_sdk.timesync import ClockMapping
from host_sdk.transport import LinkLost
from protocol import defs


class CommandAPI(RigState):
    """Mixed into Rig: commands and their replies."""

    # ---- commands -------------------------------------------------------------------------
    def _next_seq(self) -> int:
        with self._lock:
            self._cmd_seq = (self._cmd_seq + 1) & 0xFFFF
            return self._cmd_seq

    def command(
        self,
        cmd_id: int,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        **fields: Any,
    ) -> Any:
        """Send a command and wait for its ACK (returned) or NACK (CommandRefused raised).

        Each try waits `timeout_s`; a retry resends the same cmd_seq so the board applies the
        command once even when only the ACK was lost.
        """
        name = defs.COMMANDS[cmd_id][0]
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        tries = 1 + (self.retries if retries is None else retries)
        seq = self._next_seq()
        frame = wire.encode_command(cmd_id, seq, seq, **fields)  # checks the fields now
        pending = _Pending()
        with self._lock:
            self._pending[seq] = pending
        try:
            for _ in range(tries):
                if not self._link_up.wait(timeout=self.reconnect_timeout_s):
                    break
                try:
                    if cmd_id == defs.CMD_TIMESYNC:
                        with self._lock:
                            self._timesync_sent[seq] = time.time()
                    self.link.write(frame)
                    # a retry is the same command (same cmd_seq and arguments) in a new frame:
                    # the same frame again would be a duplicate to a reader that drops them
                    with self._lock:
                        self._tx_extra = (self._tx_extra + 1) & 0xFFFF
                        frame = wire.encode_command(
                            cmd_id, seq, (seq + self._tx_extra) & 0xFFFF, **fields
                        )
                except LinkLost:
                    self._link_up.clear()
                    continue
                if pending.done.wait(timeout):
                    break
        finally:
            with self._lock:
                self._pending.pop(seq, None)
        reply = pending.reply
        if reply is None:
            raise CommandTimeout(
                f"{name} (cmd_seq {seq}) got no ACK/NACK from {self.describe()} after "
                f"{tries} tries of {timeout:.2f} s"
            )
        if isinstance(reply, wire.Nack):
            raise CommandRefused(name, int(reply.reason), str(reply.reason_name), str(reply.text))
        return reply

    def _remember(self, key: str, cmd_id: int, fields: dict[str, Any]) -> None:
        with self._lock:
            self._config[key] = (cmd_id, dict(fields))

    def configure_stream(self, stream: str | int, *, rate_hz: float, enabled: bool = True) -> Any:
        """Enable/disable a stream and set its sample rate; the ACK holds the applied rate."""
        sid = self.stream_id(stream)
        fields: dict[str, Any] = {
            "stream": sid,
            "enabled": 1 if enabled else 0,
            "rate_hz": float(rate_hz),
        }
        ack = self.command(defs.CMD_CONFIG_STREAM, **fields)
        self._remember(f"stream{sid}", defs.CMD_CONFIG_STREAM, fields)
        applied = dict(getattr(ack, "applied", {}) or {})
        with self._lock:
            self.stream_config[self.stream_name(sid)] = {
                "enabled": bool(enabled),
                "rate_hz": float(applied.get("rate_hz", rate_hz)),
            }
        return ack

    def set_streaming(self, on: bool) -> Any:
        ack = self.command(defs.CMD_SET_STREAMING, on=1 if on else 0)
        self._streaming = bool(on)
        return ack

    def set_cell(
        self, area_m2: float, *, stack_area_m2: float | None = None, label: str = ""
    ) -> Any:
        """The cell: `area_m2` is the electrode area (the board uses it for A/m² currents
        and current-density limits); `stack_area_m2` the pressed area the load cell's force
        acts on (stack pressure = force / stack_area_m2; kept on the host and stored with
        recordings, e.g. a 9 mm die: 6.362e-5 m²)."""
        if stack_area_m2 is not None and not 0.0 < float(stack_area_m2) <= 1.0:
            raise ValueError(f"stack_area_m2 must be in (0, 1] m², not {stack_area_m2!r}")
        fields: dict[str, Any] = {"area_m2": float(area_m2)}
        ack = self.command(defs.CMD_SET_CELL, **fields)
        self._remember("cell", defs.CMD_SET_CELL, fields)
        self.cell = {"electrode_area_m2": float(area_m2)}
        if stack_area_m2 is not None:
            self.cell["stack_area_m2"] = float(stack_area_m2)
        if label:
            self.cell["label"] = label
        return ack

    def set_watchdog(self, timeout_s: float) -> Any:
        """Current off when the host is silent for `timeout_s` while a waveform runs. The
        board keeps it within its min/max_watchdog_ms limits and cannot switch it off."""
        fields: dict[str, Any] = {"timeout_ms": int(round(timeout_s * 1000))}
        ack = self.command(defs.CMD_SET_WATCHDOG, **fields)
        self._watchdog_set_s = float(timeout_s) or None
        self._remember("watchdog", defs.CMD_SET_WATCHDOG, fields)
        return ack

    def set_voltage_window(self, v_min_v: float, v_max_v: float) -> Any:
        fields: dict[str, Any] = {"v_min_v": float(v_min_v), "v_max_v": float(v_max_v)}
        ack = self.command(defs.CMD_SET_VOLTAGE_WINDOW, **fields)
        self._v_window = (float(v_min_v), float(v_max_v))
        self._remember("vwindow", defs.CMD_SET_VOLTAGE_WINDOW, fields)
        return ack

    def _cutoff_fields(self, cutoffs: Cutoffs | None) -> dict[str, Any]:
        c = cutoffs or Cutoffs()
        if c.v_min_v is None and c.v_max_v is None and self._v_window is None:
            # no cutoff asked for and no window set: 0/0 = "no waveform voltage cutoff"
            # (the board's safety window still applies). Echoing the HELLO's limits back
            # does not work: they are f32-rounded (4.4 -> 4.4000001) and the board refuses
            # a cutoff above its own limit.
            lo, hi = 0.0, 0.0
            return {
                "v_min_v": lo,
                "v_max_v": hi,
                "max_charge_c": float(c.max_charge_c),
                "max_duration_s": float(c.max_duration_s),
            }
        lo, hi = self._v_window or self._limit_window()
        return {
            "v_min_v": float(lo if c.v_min_v is None else c.v_min_v),
            "v_max_v": float(hi if c.v_max_v is None else c.v_max_v),
            "max_charge_c": float(c.max_charge_c),
            "max_duration_s": float(c.max_duration_s),
        }

    def _limit_window(self) -> tuple[float, float]:
        """Voltage cutoffs when none were given: the board's own limits (compliance)."""
        limits = dict(getattr(self.hello, "limits", {}) or {})
        hi = next((limits[k] for k in ("v_max_v", "compliance_v") if k in limits), 10.0)
        lo = next((limits[k] for k in ("v_min_v", "min_voltage_v") if k in limits), -hi)
        # the HELLO carries f32: step 1 ppm inside so the board's range check accepts them
        return float(lo) + 1e-6 * abs(float(lo)), float(hi) - 1e-6 * abs(float(hi))

    @staticmethod
    def _current(a: float | None, a_m2: float | None, what: str) -> tuple[int, float]:
        if (a is None) == (a_m2 is None):
            raise ValueError(f"give exactly one of {what}_a or {what}_a_m2")
        if a is not None:
            return defs.UNIT_A, float(a)
        assert a_m2 is not None
        return defs.UNIT_A_PER_M2, float(a_m2)

    def rest(self, duration_s: float) -> Any:
        """Current off for `duration_s` (device time); ends with a waveform_end event."""
        return self.command(defs.CMD_REST, duration_s=float(duration_s))

    def constant_current(
        self,
        *,
        current_a: float | None = None,
        current_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        unit, value = self._current(current_a, current_a_m2, "current")
        return self.command(
            defs.CMD_CONSTANT, unit=unit, current=value, **self._cutoff_fields(cutoffs)
        )

    def pulse_train(
        self,
        *,
        t_on_s: float,
        t_off_s: float,
        count: int,
        amplitude_a: float | None = None,
        amplitude_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        _check_count(count, "pulse_train")
        unit, value = self._current(amplitude_a, amplitude_a_m2, "amplitude")
        return self.command(
            defs.CMD_PULSE_TRAIN,
            unit=unit,
            amplitude=value,
            t_on_s=float(t_on_s),
            t_off_s=float(t_off_s),
            count=int(count),
            **self._cutoff_fields(cutoffs),
        )

    def staircase(
        self,
        *,
        start: float,
        step: float,
        stop: float,
        dwell_s: float,
        on_s: float,
        per_m2: bool = False,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        """Current steps start, start+step, ... stop (A, or A/m² with per_m2=True); each
        step is on for `on_s` of its `dwell_s`."""
        return self.command(
            defs.CMD_STAIRCASE,
            unit=defs.UNIT_A_PER_M2 if per_m2 else defs.UNIT_A,
            start=float(start),
            step=float(step),
            stop=float(stop),
            dwell_s=float(dwell_s),
            on_s=float(on_s),
            **self._cutoff_fields(cutoffs),
        )

    def gitt(
        self,
        *,
        t_pulse_s: float,
        t_rest_s: float,
        count: int,
        amplitude_a: float | None = None,
        amplitude_a_m2: float | None = None,
        cutoffs: Cutoffs | None = None,
    ) -> Any:
        _check_count(count, "gitt")
        unit, value = self._current(amplitude_a, amplitude_a_m2, "amplitude")
        return self.command(
            defs.CMD_GITT,
            unit=unit,
            amplitude=value,
            t_pulse_s=float(t_pulse_s),
            t_rest_s=float(t_rest_s),
            count=int(count),
            **self._cutoff_fields(cutoffs),
        )

    def stop(self) -> Any:
        """Current off now (the waveform ends with cause host_stop)."""
        return self.command(defs.CMD_STOP)

    def clear_fault(self) -> Any:
        return self.command(defs.CMD_CLEAR_FAULT)

    def enter_repl(self) -> Any:
        """Leave binary mode: the board drops to the MicroPython REPL (for mpremote)."""
        return self.command(defs.CMD_ENTER_REPL)

    def reset(self) -> Any:
        """Reboot the board; the client reconnects and marks a gap on every stream."""
        return self.command(defs.CMD_RESET)

    def heartbeat(self) -> Any:
        return self.command(defs.CMD_HEARTBEAT)

    def status(self, timeout_s: float | None = None) -> Any:
        """Ask for STATUS and return the next one that arrives."""
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            seen = self._status_count
        for _ in range(1 + self.retries):
            ack_or_none: Any = None
            with contextlib.suppress(CommandTimeout):
                ack_or_none = self.command(defs.CMD_GET_STATUS, timeout_s=timeout, retries=0)
            with self._cond:
                if self._cond.wait_for(lambda: self._status_count > seen, timeout=timeout):
                    return self.last_status
            del ack_or_none
        raise CommandTimeout(f"no STATUS from {self.describe()}")

    def info(self, timeout_s: float | None = None) -> Any:
        """Ask for HELLO again (GET_INFO) and return it."""
        self._handshake(timeout_s or self.connect_timeout_s)
        return self.hello

    def timesync(self) -> ClockMapping | None:
        """One timesync exchange now (the heartbeat makes them continuously)."""
        self.command(defs.CMD_TIMESYNC, t_us=0)
        return self.clock_mapping
