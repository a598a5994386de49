"""The data plane of a Rig: messages from the reader routed to sample blocks, events, gaps,
subscribers and callbacks; device time, the clock mapping and reboots."""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from host_sdk import wire
from host_sdk.rig_state import RigState
from host_sdk.rig_types import (
    Block,
    GapMark,
    RigEvent,
    _stream_id_of,
    log,
)
from host_sdk.timesync import ClockMapping
from protocol import defs

_EPOCH_REFIT_S = 1.0  # wall seconds between fits of the start time from timesync exchanges


class DataPlane(RigState):
    """Mixed into Rig: what the board sends, delivered."""

    _epoch_fitted_at = 0.0  # time.monotonic() of the last fit for device_epoch_utc

    # ---- data out -------------------------------------------------------------------------
    def blocks(self, *, timeout_s: float | None = None, maxsize: int = 0) -> Iterator[Block]:
        """Iterate over sample blocks arriving from the moment of this call.

        Ends when no block arrives for `timeout_s` (None: never) or the rig closes.
        """
        q: queue.Queue[Block | None] = queue.Queue(maxsize)
        with self._lock:
            self._subscribers.append(q)
        return self._drain(q, timeout_s)

    def _drain(self, q: queue.Queue[Block | None], timeout_s: float | None) -> Iterator[Block]:
        try:
            while True:
                try:
                    item = q.get(timeout=timeout_s)
                except queue.Empty:
                    return
                if item is None:
                    return
                yield item
        finally:
            with self._lock:
                if q in self._subscribers:
                    self._subscribers.remove(q)

    def on_block(self, cb: Callable[[Block], None]) -> Callable[[], None]:
        """Call `cb(block)` on the reader thread for every block; returns an unsubscriber."""
        return self._add_cb(self._block_cbs, cb)

    def on_event(self, cb: Callable[[RigEvent], None]) -> Callable[[], None]:
        return self._add_cb(self._event_cbs, cb)

    def on_gap(self, cb: Callable[[GapMark], None]) -> Callable[[], None]:
        return self._add_cb(self._gap_cbs, cb)

    def _add_cb(self, lst: list[Any], cb: Any) -> Callable[[], None]:
        with self._lock:
            lst.append(cb)

        def remove() -> None:
            with self._lock:
                if cb in lst:
                    lst.remove(cb)

        return remove

    @property
    def lost_samples(self) -> dict[str, int]:
        """Samples lost per stream name: on the link (index gaps) and on the board (frames
        it could not send, sample slots its loop was too late for; FLAG_DROPPED). Each gap
        in `gaps` says which, where and how many."""
        out = {self.stream_name(int(s.id)): 0 for s in (self.hello.streams if self.hello else ())}
        with self._lock:
            for g in self.gaps:
                if g.count > 0:
                    out[g.stream] = out.get(g.stream, 0) + g.count
        return out

    def wait_data(
        self,
        t_dev_s: float,
        streams: Iterable[str | int] = (),
        *,
        stall_s: float | None = 60.0,
    ) -> bool:
        """Wait until the host holds a record at or after device time `t_dev_s` of every
        stream named (none named: every stream that has sent a block), so that the data of a
        run up to that time are all here. The board queues frames while its link is busy:
        a command's ACK (a `stop`, say) can arrive before the samples taken before it.

        False when the streams fall silent: no new block of them for `stall_s` wall
        seconds (None: wait for ever), or the rig closes. The limit is on silence, not on
        the whole wait, so a busy host that is merely slow still gets its data."""
        with self._cond:
            wanted = [self.stream_id(s) for s in streams] or list(self.last_t_s)
            seen = {sid: self.last_t_s.get(sid) for sid in wanted}
            quiet_since = time.monotonic()
            while True:
                behind = [sid for sid in wanted if self.last_t_s.get(sid, -1.0) < t_dev_s]
                if not behind:
                    return True
                if self._closing.is_set():
                    return False
                now = time.monotonic()
                latest = {sid: self.last_t_s.get(sid) for sid in wanted}
                if latest != seen:
                    seen, quiet_since = latest, now
                elif stall_s is not None and now - quiet_since >= stall_s:
                    return False
                self._cond.wait(timeout=0.2)

    # ---- waveforms: waiting for their end ---------------------------------------------------
    def event_mark(self) -> int:
        """Position in `events`; pass to `wait_event` to wait for events after this point."""
        with self._lock:
            return len(self.events)

    def wait_event(
        self,
        codes: tuple[int, ...] = (defs.EV_WAVEFORM_END, defs.EV_STOP_LATCHED),
        *,
        after: int = 0,
        timeout_s: float | None = None,
    ) -> RigEvent | None:
        """Wait for an event whose code is in `codes`, among events after index `after`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                for ev in self.events[after:]:
                    if ev.code in codes:
                        return ev
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                if self._closing.is_set():
                    return None
                self._cond.wait(timeout=0.2 if remaining is None else min(remaining, 0.2))

    def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, wire.SampleBlock):
            self._on_samples(msg)
        elif isinstance(msg, wire.Ack | wire.Nack):
            if int(msg.cmd_id) == defs.CMD_TIMESYNC:
                self._on_timesync(msg)
            with self._lock:
                p = self._pending.get(int(msg.cmd_seq))
            if p is not None and not p.done.is_set():
                p.reply = msg
                p.done.set()
        elif isinstance(msg, wire.Hello):
            self._on_hello(msg)
        elif isinstance(msg, wire.Event):
            self._on_event(msg)
        elif isinstance(msg, wire.Status):
            with self._cond:
                self.last_status = msg
                self._status_count += 1
                self._cond.notify_all()
        elif isinstance(msg, wire.Gap):
            sid = _stream_id_of(msg.stream)
            # the wire says exactly how many of the gap the board dropped, not which ones
            board = int(getattr(msg, "board_count", 0))
            for count, kind in ((board, "lost_on_board"), (int(msg.count) - board, "lost")):
                if count > 0:
                    self._add_gap(
                        GapMark(
                            self.stream_name(sid),
                            sid,
                            int(msg.first_index),
                            count,
                            self.time.now_s,
                            kind,
                        )
                    )
        elif isinstance(msg, wire.Reboot):
            self._board_rebooted(f"new boot id {msg.boot_id:#06x}")
        elif isinstance(msg, wire.Log):
            self.logs.append((int(msg.level), str(msg.text)))
            log.log(int(msg.level), "board: %s", msg.text)

    def _on_hello(self, hello: Any) -> None:
        previous = self.hello
        with contextlib.suppress(AttributeError):
            self._decoder.set_hello(hello)
        with self._cond:
            self.hello = hello
            self._hello_count += 1
            self._cond.notify_all()
        if previous is not None and previous.unique_id != hello.unique_id:
            log.warning(
                "a different board answers on %s: %s (was %s)",
                self.link.describe(),
                hello.unique_id,
                previous.unique_id,
            )

    def _on_samples(self, sb: Any) -> None:
        sid = _stream_id_of(sb.stream)
        flags = int(getattr(sb, "flags", 0))
        if flags & defs.FLAG_BOOT and self.last_index.get(sid, 0) > 0 and sb.first_index == 0:
            self._board_rebooted("boot flag on a sample frame")
        records = sb.records
        t_s = self.time.unwrap(records["t_us"])
        if len(t_s):
            point = (time.monotonic(), float(t_s[-1]))
            if self.device_epoch_utc is None:
                # the sample was taken a link latency ago: good to a few ms on a real
                # board; for an emulated board its virtual clock makes it nominal
                self.device_epoch_utc = time.time() - float(t_s[-1])
            with self._lock:
                if self._clock_first is None or self.boots != self._clock_boot:
                    self._clock_first, self._clock_boot = point, self.boots
                self._clock_last = point
        block = Block(
            self.stream_name(sid), sid, int(sb.first_index), records, t_s, flags, self.boots
        )
        self.last_index[sid] = int(sb.first_index) + len(records)
        self._last_sample_wall = time.monotonic()
        with self._cond:
            if len(t_s):
                self.last_t_s[sid] = float(t_s[-1])
                self._cond.notify_all()
            subs = list(self._subscribers)
            cbs = list(self._block_cbs)
        for q in subs:
            with contextlib.suppress(queue.Full):
                q.put_nowait(block)
        for cb in cbs:
            cb(block)

    # ---- time base ----------------------------------------------------------------------
    @property
    def clock_mapping(self) -> ClockMapping | None:
        """Device time -> UTC (offset, drift, uncertainty) fitted from the timesync
        exchanges the heartbeat makes; None before the first one."""
        return self.clock_sync.mapping()

    def _on_timesync(self, msg: Any) -> None:
        t1 = time.time()
        with self._lock:
            t0 = self._timesync_sent.pop(int(msg.cmd_seq), None)
        if t0 is None or not isinstance(msg, wire.Ack):
            return
        self.clock_sync.add(t0, t1, self.time.unwrap_one(int(msg.applied["t_us"])))
        # the fit (a weighted least squares over up to 256 exchanges) once a wall second
        # for the start time: an emulated board at speed makes thousands of exchanges a
        # second; `clock_mapping` always fits what there is
        now = time.monotonic()
        if self.device_epoch_utc is None or now - self._epoch_fitted_at >= _EPOCH_REFIT_S:
            self._epoch_fitted_at = now
            m = self.clock_sync.mapping()
            if m is not None:
                self.device_epoch_utc = m.utc_at_zero_s

    def _on_event(self, ev: Any) -> None:
        # a reboot matters when there is state on the board to lose: samples seen, or any
        # configuration sent (watchdog, cell area, stream rates) even with streaming off
        if (
            int(ev.code) == defs.EV_BOOT
            and self.hello is not None
            and (self.last_index or self._config or self._streaming)
        ):
            self._board_rebooted("boot event")
        e = RigEvent(
            self.time.unwrap_one(int(ev.t_us)),
            int(ev.code),
            str(ev.name),
            int(ev.cause),
            str(ev.cause_name),
            int(ev.index),
            float(ev.value),
        )
        with self._cond:
            self.events.append(e)
            cbs = list(self._event_cbs)
            self._cond.notify_all()
        for cb in cbs:
            cb(e)

    def _add_gap(self, gap: GapMark) -> None:
        with self._lock:
            self.gaps.append(gap)
            cbs = list(self._gap_cbs)
        for cb in cbs:
            cb(gap)

    def _mark_all_streams(self, kind: str) -> None:
        for sid, nxt in sorted(self.last_index.items()):
            self._add_gap(GapMark(self.stream_name(sid), sid, nxt, -1, self.time.now_s, kind))

    def _board_rebooted(self, why: str) -> None:
        now = time.monotonic()
        if now - self._reboot_wall < 1.0:  # the boot event and the boot flag of one reboot
            return
        self._reboot_wall = now
        log.warning(
            "%s rebooted (%s); marking a gap and re-applying the configuration",
            self.describe(),
            why,
        )
        self.boots += 1
        self.clock_sync.reset()  # the device clock restarted
        self._mark_all_streams("board_reset")
        self.last_index = {}
        self.last_t_s = {}
        # bridge the reboot with the wall time the board was away, on the device clock
        away_s = max(0.0, time.monotonic() - self._last_sample_wall)
        self.time.rebooted(away_s * self.clock_ratio())
        self._start_resync(reapply=True)
