"""The link session of a Rig: connect and handshake, the reader thread, reconnect and
re-sync after a lost port or a board reboot, the heartbeat (timesync) thread, close."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Self

from host_sdk import wire
from host_sdk.rig_state import RigState
from host_sdk.rig_types import (
    _RIGS,
    FIRMWARE_MAX,
    FIRMWARE_MIN,
    BoardNotAnswering,
    CommandRefused,
    CommandTimeout,
    IncompatibleBoard,
    RigError,
    _foreign_protocol_version,
    _name,
    log,
)
from host_sdk.transport import LinkLost
from protocol import defs


class LinkSession(RigState):
    """Mixed into Rig: the port, its threads and their lifecycle."""

    def connect(self) -> Self:
        """Open the link, start the reader, handshake, start the heartbeat."""
        if not self.link.is_open:
            self.link.open()
        self._link_up.set()
        self._reader = threading.Thread(target=self._read_loop, name="rig-reader", daemon=True)
        self._reader.start()
        self._handshake(self.connect_timeout_s)
        if self.watchdog_s is not None:
            self.set_watchdog(self.watchdog_s)
        if self.heartbeat_s:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop, name="rig-heartbeat", daemon=True
            )
            self._heartbeat.start()
        _RIGS[self.unique_id] = self
        return self

    def close(self, *, leave_current_off: bool = True) -> None:
        """Stop the current (and verify), stop streaming, stop threads, close the port."""
        if self._closed:
            return
        self._closed = True
        error: Exception | None = None
        if leave_current_off and self.hello is not None and self._closing.is_set():
            log.warning(
                "%s: link lost, STOP could not be sent; the board's watchdog switches the "
                "current off when the host stays silent",
                self.describe(),
            )
        if leave_current_off and self.hello is not None and not self._closing.is_set():
            try:
                self.ensure_current_off()
            except RigError as e:
                error = e
            with contextlib.suppress(RigError, LinkLost):
                self.set_streaming(False)
        self._shutdown_threads()
        self.link.close()
        with self._lock:
            for q in self._subscribers:
                q.put(None)
        if self.hello is not None:
            _RIGS.pop(self.unique_id, None)
        if error is not None:
            raise error

    def _shutdown_threads(self) -> None:
        self._closing.set()
        self._link_up.set()
        self._beat_due.set()
        for t in (self._reader, self._heartbeat):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=2.0)

    def ensure_current_off(self, attempts: int = 3) -> Any:
        """STOP, then read STATUS until it shows no current; raise RigError if it never does."""
        last: Any = None
        for _ in range(attempts):
            with contextlib.suppress(CommandTimeout, CommandRefused):
                self.stop()
            try:
                last = self.status()
            except (CommandTimeout, CommandRefused, BoardNotAnswering):
                continue
            if (
                int(_name(last, "state", 0)) != defs.STATE_RUNNING
                and float(_name(last, "setpoint_a", 0.0)) == 0.0
            ):
                return last
        raise RigError(
            f"could not verify that the current is off on {self.describe()} "
            f"after {attempts} STOP commands (last status: {last!r})"
        )

    # ---- handshake ------------------------------------------------------------------------
    def _handshake(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        tries = 0
        with self._lock:
            seen = self._hello_count
        per_try = max(0.2, min(1.0, timeout_s / 4))
        while time.monotonic() < deadline:
            tries += 1
            seq = self._next_seq()
            with contextlib.suppress(LinkLost):
                if self._link_up.is_set():
                    self.link.write(wire.encode_command(defs.CMD_GET_INFO, seq, seq))
            with self._cond:
                if self._cond.wait_for(
                    lambda: self._hello_count > seen,
                    timeout=min(per_try, max(0.0, deadline - time.monotonic())),
                ):
                    break
        else:
            self._raise_not_answering(tries, timeout_s)
        if self.check_versions:
            self._check_versions()

    def _raise_not_answering(self, tries: int, timeout_s: float) -> None:
        dec = self._decoder
        # an intact frame of another version (CRC-checked by the decoder), else a guess
        # from the version bytes after sync words
        found = _name(dec, "foreign_version", None) or _foreign_protocol_version(
            bytes(self._capture)
        )
        if found is not None:
            raise IncompatibleBoard(
                f"{self.link.describe()}: the board sends protocol version {found}; this SDK "
                f"speaks protocol version {defs.PROTOCOL_VERSION}. Update the firmware "
                "(stressrig flash) or the SDK."
            )
        raise BoardNotAnswering(
            f"no HELLO from {self.link.describe()}: sent GET_INFO {tries} times over "
            f"{timeout_s:.1f} s; received {self.bytes_in} bytes, "
            f"{_name(dec, 'frames_ok', 0)} valid frames, {_name(dec, 'bad_frames', 0)} bad "
            "frames. Is the board powered, the firmware running (not sitting at the REPL), "
            "and is this the right port? `stressrig ports` lists the ports."
        )

    def _check_versions(self) -> None:
        h = self.hello
        fw = self.firmware_version
        ok_fw = FIRMWARE_MIN <= fw < FIRMWARE_MAX
        if int(h.protocol_version) != defs.PROTOCOL_VERSION or not ok_fw:
            raise IncompatibleBoard(
                f"{self.link.describe()}: board {h.board_id} runs firmware "
                f"{'.'.join(map(str, fw))} with protocol version {h.protocol_version}; this SDK "
                f"needs protocol version {defs.PROTOCOL_VERSION} and firmware "
                f">= {'.'.join(map(str, FIRMWARE_MIN))}, < {'.'.join(map(str, FIRMWARE_MAX))}"
            )

    # ---- reader -----------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.link.read(65536)
            except LinkLost as e:
                if self._closing.is_set():
                    return
                self._link_lost(str(e))
                continue
            if not data:
                continue
            self.bytes_in += len(data)
            self._last_rx_wall = time.monotonic()
            if len(self._capture) < 4096:
                self._capture += data[: 4096 - len(self._capture)]
            try:
                messages = self._decoder.feed(data)
            except Exception:  # noqa: BLE001 - the decoder must never kill the reader
                log.exception("decoder raised; dropping %d bytes", len(data))
                continue
            for msg in messages:
                try:
                    self._dispatch(msg)
                except Exception:  # noqa: BLE001 - a bad callback must not kill the reader
                    log.exception("while handling %r", type(msg).__name__)
            if self.heartbeat_s and self._link_up.is_set() and self._heartbeat_due_by_device_time():
                # beat from here, at once: handing it to the heartbeat thread costs a thread
                # switch (up to the interpreter's 5 ms switch interval while this thread
                # decodes), and an emulated board at the host lease waits for this byte
                self._send_heartbeat()

    def _heartbeat_due_by_device_time(self) -> bool:
        """True once the device clock has run a quarter of the watchdog since the last
        heartbeat: an emulated board's clock can run far ahead of any wall-time interval."""
        now = self.time.now_s
        if now < self._beat_device_s:  # the board rebooted: its clock started again
            self._beat_device_s = now
        return now - self._beat_device_s >= self._watchdog_device_s() / 4

    def _link_lost(self, why: str) -> None:
        self._link_up.clear()
        self.link.drop()
        if not self.reconnect:
            log.error("link to %s lost: %s", self.describe(), why)
            self._gave_up = True
            self._closing.set()
            return
        log.warning("link to %s lost (%s); reconnecting", self.describe(), why)
        self._mark_all_streams("link_down")
        deadline = time.monotonic() + self.reconnect_timeout_s
        while not self._closing.is_set() and time.monotonic() < deadline:
            try:
                self.link.open()
            except OSError:
                time.sleep(0.2)
                continue
            self.reconnects += 1
            # a fresh decoder: the bytes in flight were lost with the port
            self._decoder = wire.Decoder()
            if self.hello is not None:
                with contextlib.suppress(AttributeError):
                    self._decoder.set_hello(self.hello)
            self._link_up.set()
            self._start_resync(reapply=self._streaming)
            return
        log.error(
            "could not reopen %s within %.0f s", self.link.describe(), self.reconnect_timeout_s
        )
        self._gave_up = True
        self._closing.set()

    def _start_resync(self, *, reapply: bool) -> None:
        t = threading.Thread(target=self._resync, args=(reapply,), daemon=True, name="rig-resync")
        self._resync_thread = t
        t.start()

    def _resync(self, reapply: bool) -> None:
        try:
            self._handshake(self.reconnect_timeout_s)
            if reapply:
                self._reapply()
        except RigError as e:
            log.error("resync with %s failed: %s", self.link.describe(), e)

    def _reapply(self) -> None:
        with self._lock:
            config = list(self._config.values())
        for cmd_id, fields in config:
            self.command(cmd_id, **fields)
        if self._streaming:
            self.set_streaming(True)

    def clock_ratio(self) -> float:
        """Device seconds per wall second (1 for a real board; N for an emulator at speed N),
        measured from the samples and events seen, else taken from the emulator."""
        with self._lock:
            first, last = self._clock_first, self._clock_last
        if first is not None and last is not None and last[0] - first[0] > 0.5:
            return max(1e-3, (last[1] - first[1]) / (last[0] - first[0]))
        emu = self.link.emulator
        if emu is None:
            return 1.0
        achieved = getattr(emu, "achieved_speed", None)
        ratio = float(achieved() if callable(achieved) else 0.0)
        if ratio <= 0.0:
            ratio = float(getattr(emu, "speed", 1.0) or 1.0)
        return min(ratio, 1e6)  # speed "max" is infinite until a ratio is measured

    def _watchdog_device_s(self) -> float:
        if self._watchdog_set_s:
            return self._watchdog_set_s
        limits = dict(getattr(self.hello, "limits", {}) or {})
        return float(limits.get("default_watchdog_ms", 5000.0)) / 1000.0

    def _heartbeat_interval_s(self) -> float:
        """At most `heartbeat_s`, and a quarter of the watchdog in wall time (an emulated
        board's watchdog runs on its accelerated clock)."""
        assert self.heartbeat_s
        wd_wall = self._watchdog_device_s() / self.clock_ratio()
        return max(0.005, min(self.heartbeat_s, wd_wall / 4))

    def _heartbeat_loop(self) -> None:
        """Beat at the wall-time interval, or sooner when the reader sees that the device
        clock ran a quarter of the watchdog (the board's time is what the watchdog counts)."""
        while not self._closing.is_set():
            self._beat_due.wait(self._heartbeat_interval_s())
            self._beat_due.clear()
            if self._closing.is_set():
                return
            if not self._link_up.is_set():
                continue
            self._send_heartbeat()

    def _send_heartbeat(self) -> None:
        self._beat_device_s = self.time.now_s
        seq = self._next_seq()
        # a timesync feeds the watchdog like a heartbeat and measures the clock mapping
        with self._lock:
            if len(self._timesync_sent) > 64:  # unanswered ones (lost replies)
                self._timesync_sent.clear()
            self._timesync_sent[seq] = time.time()
        with contextlib.suppress(LinkLost):
            self.link.write(wire.encode_command(defs.CMD_TIMESYNC, seq, seq, t_us=0))
