"""A loopback board for client tests: answers commands like the firmware, built on the wire
encoder, and streams synthetic samples on a device clock.

`board.port` is an opener for `Link(opener=...)`; the returned port object behaves like a
pyserial port (read/write/close/in_waiting) and raises SerialException while unplugged.
Knobs: `ignore` (swallow the next N commands), `drop_replies` (lose the next N ACK/NACK on
the way back, so the host retries), `drop_sample_frames`, `refuse`, `silent`, `unplug()`,
`replug()`, `reboot()`, `t_offset_us` (start the device clock near its wrap).
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from typing import Any

import numpy as np
import serial

from host_sdk import wire
from protocol import defs

READ_ONLY = ("heartbeat", "get_info", "get_status", "timesync")  # always executed (§6.3)


class FakeBoard:
    def __init__(
        self,
        hello: wire.Hello | None = None,
        *,
        unique_id: str = "fake0001",
        speed: float = 1.0,
        t_offset_us: int = 0,
    ) -> None:
        self.hello = hello or wire.reference_hello(board_id="fake", unique_id=unique_id)
        self.speed = speed
        self.t_offset_us = t_offset_us
        self.lock = threading.RLock()
        self.out = bytearray()
        self.dec = wire.Decoder()
        self.received: list[Any] = []  # every Command frame seen (retries included)
        self.applied: list[Any] = []  # commands applied (once per cmd_seq)
        self.replies: dict[int, bytes] = {}
        self.ignore = 0
        self.drop_replies = 0
        self.drop_sample_frames = 0
        self.dropped_samples = 0
        self.refuse: dict[str, tuple[int, str]] = {}
        self.silent = False
        self.plugged = True
        self.boots = 0
        self._reset_state()

    # ---- state --------------------------------------------------------------------------
    def _reset_state(self) -> None:
        old = getattr(self, "boot_id", 0)
        self.boot_id = old
        while self.boot_id in (0, old):  # a new random boot id at every boot (protocol §6.2)
            self.boot_id = random.randint(1, 0xFFFF)
        self.t0 = time.monotonic()
        self.frame_seq = 0
        self.boot_flag = defs.FLAG_BOOT
        self.state = defs.STATE_IDLE
        self.setpoint_a = 0.0
        self.streaming = False
        self.rates = {s.id: s.rate_hz for s in self.hello.streams}
        self.enabled = {s.id: False for s in self.hello.streams}
        self.next_index = {s.id: 0 for s in self.hello.streams}
        self.base: dict[int, tuple[int, int]] = {}
        self.end_at_us: int | None = None
        self.replies = {}

    def now_us(self) -> int:
        return int((time.monotonic() - self.t0) * 1e6 * self.speed) + self.t_offset_us

    # ---- faults -----------------------------------------------------------------------------
    def unplug(self) -> None:
        self.plugged = False

    def replug(self) -> None:
        with self.lock:
            self.out.clear()
            self.plugged = True

    def reboot(self) -> None:
        with self.lock:
            self.boots += 1
            self._reset_state()
            self.out.clear()
            self._event(defs.EV_BOOT, defs.CAUSE_BOOT)

    def port(self) -> FakePort:
        if not self.plugged:
            raise serial.SerialException("could not open port: No such file or directory")
        return FakePort(self)

    # ---- output -------------------------------------------------------------------------
    def _emit(self, frame: bytes) -> None:
        self.out += frame

    def _seq(self) -> int:
        s = self.frame_seq
        self.frame_seq = (s + 1) & 0xFFFF
        return s

    def _flags(self) -> int:
        f = self.boot_flag
        self.boot_flag = 0
        if self.state == defs.STATE_LATCHED:
            f |= defs.FLAG_LATCHED
        return f

    def _event(self, code: int, cause: int = 0, index: int = 0, value: float = 0.0) -> None:
        self._emit(
            wire.encode_event(
                self.now_us() & 0xFFFFFFFF,
                code,
                cause,
                index,
                value,
                seq=self._seq(),
                flags=self._flags(),
                boot=self.boot_id,
            )
        )

    def _status(self) -> wire.Status:
        return wire.Status(
            uptime_ms=(self.now_us() // 1000) & 0xFFFFFFFF,
            frames_sent=self.frame_seq,
            samples_dropped=0,
            bad_frames_rx=0,
            heap_free=100_000,
            state=self.state,
            latched_cause=0,
            setpoint_a=self.setpoint_a,
        )

    # ---- input --------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        with self.lock:
            for msg in self.dec.feed(data):
                if isinstance(msg, wire.Command):
                    self.received.append(msg)
                    self._command(msg)

    def _restamp(self, frame: bytes) -> bytes:
        """The stored reply as a new frame (the board's next frame seq), as the board sends
        it again: the same bytes again would be a duplicate frame (dropped)."""
        b = bytearray(frame)
        b[8:10] = self._seq().to_bytes(2, "little")
        b[12] = zlib.crc32(b[2:12]) & 0xFF
        b[-4:] = zlib.crc32(b[2:-4]).to_bytes(4, "little")
        return bytes(b)

    @staticmethod
    def _key(cmd: Any) -> tuple[int, int, tuple[Any, ...]]:
        return (cmd.cmd_seq, cmd.cmd_id, tuple(sorted(dict(cmd.args).items())))

    def _reply(self, cmd: Any, frame: bytes, extra: bytes = b"") -> None:
        if cmd.name not in READ_ONLY:
            self.replies = {self._key(cmd): frame}  # the board remembers the last command
        self._emit(extra)  # HELLO / STATUS / event before the ACK, as the board does
        if self.drop_replies > 0:
            self.drop_replies -= 1
        else:
            self._emit(frame)

    def _command(self, cmd: Any) -> None:
        if self.silent:
            return
        if self.ignore > 0:
            self.ignore -= 1
            return
        if self._key(cmd) in self.replies:  # a retry: answer again, apply nothing
            self._emit(self._restamp(self.replies[self._key(cmd)]))
            return
        name, args = cmd.name, dict(cmd.args)
        if name in self.refuse:
            reason, text = self.refuse[name]
            self._reply(
                cmd,
                wire.encode_nack(
                    cmd.cmd_id, cmd.cmd_seq, reason, text, seq=self._seq(), boot=self.boot_id
                ),
            )
            return
        if name in ("constant", "pulse_train", "gitt") or name == "staircase":
            amp = float(args.get("current", args.get("amplitude", args.get("stop", 0.0))))
            limit = float(self.hello.limits.get("max_current_a", 5.0))
            if abs(amp) > limit:
                self._reply(
                    cmd,
                    wire.encode_nack(
                        cmd.cmd_id,
                        cmd.cmd_seq,
                        defs.NACK_OUT_OF_RANGE,
                        f"current {amp:g} A outside +-{limit:g} A",
                        seq=self._seq(),
                        boot=self.boot_id,
                    ),
                )
                return
        self.applied.append(cmd)
        extra = b""
        if name == "get_info":
            extra = wire.encode_hello(self.hello, seq=self._seq(), boot=self.boot_id)
        elif name == "get_status":
            extra = wire.encode_status(self._status(), seq=self._seq(), boot=self.boot_id)
        elif name == "timesync":
            args = {"t_us": self.now_us() & 0xFFFFFFFF}
        elif name == "config_stream":
            self.enabled[args["stream"]] = bool(args["enabled"])
            self.rates[args["stream"]] = float(args["rate_hz"])
        elif name == "set_streaming":
            self.streaming = bool(args["on"])
            now = self.now_us()
            self.base = {sid: (now, self.next_index[sid]) for sid in self.rates}
        elif name in ("rest", "constant", "pulse_train", "staircase", "gitt"):
            self.state = defs.STATE_RUNNING
            self.setpoint_a = float(args.get("current", args.get("amplitude", 0.0)))
            dur = {
                "rest": args.get("duration_s", 0.0),
                "pulse_train": args.get("count", 0)
                * (args.get("t_on_s", 0) + args.get("t_off_s", 0)),
                "gitt": args.get("count", 0) * (args.get("t_pulse_s", 0) + args.get("t_rest_s", 0)),
            }.get(name, 3600.0)
            self.end_at_us = self.now_us() + int(float(dur) * 1e6)
        elif name == "stop":
            if self.state == defs.STATE_RUNNING:
                extra = wire.encode_event(
                    self.now_us() & 0xFFFFFFFF,
                    defs.EV_WAVEFORM_END,
                    defs.CAUSE_HOST_STOP,
                    seq=self._seq(),
                    boot=self.boot_id,
                )
            self.state = defs.STATE_IDLE
            self.setpoint_a = 0.0
            self.end_at_us = None
        ack = wire.encode_ack(
            cmd.cmd_id, cmd.cmd_seq, seq=self._seq(), flags=self._flags(), boot=self.boot_id, **args
        )
        self._reply(cmd, ack, extra)
        if name == "reset":
            self.reboot()

    # ---- time passes ------------------------------------------------------------------
    def tick(self) -> None:
        with self.lock:
            now = self.now_us()
            if self.end_at_us is not None and now >= self.end_at_us:
                self.end_at_us = None
                self.state = defs.STATE_IDLE
                self.setpoint_a = 0.0
                self._event(defs.EV_WAVEFORM_END, defs.CAUSE_COMPLETED)
            if not self.streaming:
                return
            for s in self.hello.streams:
                if not self.enabled.get(s.id):
                    continue
                rate = self.rates[s.id]
                t_base, i_base = self.base[s.id]
                due = i_base + int((now - t_base) * rate / 1e6)
                start = self.next_index[s.id]
                per_frame = (
                    defs.DEFAULT_SAMPLE_PAYLOAD - defs.SAMPLES_HEADER_SIZE
                ) // s.record_size
                while start < due:
                    n = min(per_frame, due - start)
                    rec = np.zeros(n, dtype=s.dtype)
                    idx = np.arange(start, start + n, dtype=np.int64)
                    rec["t_us"] = (t_base + (idx - i_base) * 1e6 / rate).astype(
                        np.int64
                    ) & 0xFFFFFFFF
                    names = s.dtype.names or ()
                    if "voltage" in names:
                        rec["voltage"] = 3000 + (idx % 100)
                        rec["current"] = int(self.setpoint_a * 1000)
                    if "counts" in names:
                        rec["counts"] = 100_000 + (idx % 10)
                    frame = wire.encode_samples(
                        s.id, start, rec, seq=self._seq(), flags=self._flags(), boot=self.boot_id
                    )
                    if self.drop_sample_frames > 0:
                        self.drop_sample_frames -= 1
                        self.dropped_samples += n
                    else:
                        self._emit(frame)
                    start += n
                self.next_index[s.id] = start


class FakePort:
    """The pyserial-like face of a FakeBoard."""

    def __init__(self, board: FakeBoard, timeout: float = 0.02) -> None:
        self.board = board
        self.timeout = timeout
        self.closed = False

    def _check(self) -> None:
        if self.closed or not self.board.plugged:
            raise serial.SerialException("device reports readiness to read but returned no data")

    @property
    def in_waiting(self) -> int:
        self._check()
        self.board.tick()
        return len(self.board.out)

    def read(self, size: int = 1) -> bytes:
        self._check()
        deadline = time.monotonic() + self.timeout
        while True:
            self.board.tick()
            with self.board.lock:
                if self.board.out:
                    data = bytes(self.board.out[:size])
                    del self.board.out[:size]
                    return data
            if time.monotonic() >= deadline:
                return b""
            time.sleep(0.002)
            self._check()

    def write(self, data: bytes) -> int:
        self._check()
        self.board.receive(bytes(data))
        return len(data)

    def close(self) -> None:
        self.closed = True
