"""The pump: board stdout -> ledger + link faults -> outbox -> host ports, and host ports ->
board stdin. One thread; public calls from other threads take `lock`.

Flow control instead of loss: the board's stdout is read only while the outbox holds less
than BACKLOG_LIMIT for the slowest connected host. Beyond that the pipe fills, the board's
blocking write waits and (with its virtual clock) its device time pauses, so a host that
reads slowly loses nothing. Stalls hold bytes the same way.

Loss happens in three places only, each written into the ledger: the fault injector; no host
connected (nobody has the pty open and no TCP client: the board's output is discarded, as a
USB CDC device does when no host has the port open, so a board whose host died goes on and
its watchdog fires); and the last host leaving with bytes it never read.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Hashable

from host_sdk.emulator.board_process import RESET_EXIT_CODE, BoardProcess
from host_sdk.emulator.device_clock import SpeedMeter
from host_sdk.emulator.host_ports import PtyPort, TcpClient, TcpListener
from host_sdk.emulator.ledger import LinkLedger
from host_sdk.emulator.link_faults import LinkFaults
from host_sdk.emulator.outbox import Outbox

BACKLOG_LIMIT = 64 * 1024  # board bytes held for a connected host before the board waits
TO_BOARD_LIMIT = 64 * 1024  # host bytes held for the board before the hosts wait
NO_HOST_POLL_S = 0.02  # how often a pty nobody has open is checked for a host
CRASH_RESTART_S = 0.2  # a board that died (not a RESET command) restarts after this
_IN = select.POLLIN | select.POLLHUP | select.POLLERR


class Proxy:
    def __init__(
        self,
        board: BoardProcess,
        ledger: LinkLedger,
        faults: LinkFaults,
        port_path: str,
        tcp: TcpListener | None,
    ) -> None:
        self.board = board
        self.ledger = ledger
        self.faults = faults
        self.port_path = port_path
        self.pty: PtyPort | None = PtyPort(port_path)
        self.tcp = tcp
        self.tcp_client: TcpClient | None = None
        self.outbox = Outbox()
        self.meter = SpeedMeter()
        self.lock = threading.RLock()
        self.first_output = threading.Event()
        self.restarts = 0
        self.exit_codes: list[int] = []
        self._pty_ready_at = 0.0
        self._unplugged_until = 0.0
        self._restart_at: float | None = None
        self._to_board = bytearray()
        self._epoch = 0  # bumped when another thread replaces descriptors the loop polls
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="stressrig-emu", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass  # already awake (pipe full) or closed

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self.lock:
            self.board.kill()
            if self.pty is not None:
                self.pty.close()
                self.pty = None
            for s in (self.tcp_client, self.tcp):
                if s is not None:
                    s.close()
            self.tcp_client = None
            os.close(self._wake_r)
            os.close(self._wake_w)

    # ---- called by the Emulator, with `lock` held --------------------------------------
    def unplug(self, seconds: float) -> None:
        pty = self.pty
        if pty is not None:
            if pty in self.outbox:
                self._lose_port(pty, pty.drain_stale())
            pty.close()
            self.pty = None
        self._drop_tcp_client()  # the bridge's device vanished: its connection closes
        self._unplugged_until = time.monotonic() + float(seconds)
        self._epoch += 1
        self.wake()

    def reset_board(self) -> None:
        self.board.kill()
        self._start_board()
        self._epoch += 1
        self.wake()

    def hosts(self) -> list[str]:
        """The host ports someone has open now: "pty", "tcp"."""
        names = []
        if self.pty is not None and self.pty in self.outbox:
            names.append("pty")
        if self.tcp_client is not None and self.tcp_client in self.outbox:
            names.append("tcp")
        return names

    # ---- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                now = time.monotonic()
                self._housekeeping(now)
                epoch = self._epoch
                poller, timeout = self._poll_set(now)
            try:
                ready = dict(poller.poll(max(0, int(timeout * 1000 + 0.999))))
            except (OSError, ValueError):
                ready = {}
            with self.lock:
                if self._stop.is_set() or epoch != self._epoch:
                    continue  # descriptors changed under the poll: look again
                self._service(ready, time.monotonic())

    def _housekeeping(self, now: float) -> None:
        if self._restart_at is not None and now >= self._restart_at:
            self._start_board()
        if self.pty is None and self._unplugged_until and now >= self._unplugged_until:
            self._unplugged_until = 0.0
            self.pty = PtyPort(self.port_path)
        pty = self.pty
        if pty is not None:
            present = pty.host_present()
            if present and pty not in self.outbox:
                self.outbox.add(pty)
                self._pty_ready_at = now + pty.settle_s
            elif not present and pty in self.outbox:
                self._lose_port(pty, pty.drain_stale())
        if self.first_output.is_set():
            self.meter.sample(now, self.ledger.clock.total_us * 1e-6)

    def _poll_set(self, now: float) -> tuple[select.poll, float]:
        p = select.poll()
        p.register(self._wake_r, select.POLLIN)
        timeout = 0.05  # also how soon a board that exits unread is noticed
        board, outbox = self.board, self.outbox
        if board.running:
            if not board.eof and (not outbox.has_ports() or outbox.backlog() < BACKLOG_LIMIT):
                p.register(board.stdout_fd, select.POLLIN)
            if self._to_board:
                p.register(board.stdin_fd, select.POLLOUT)
        stall = self.faults.stall_left(now)
        room = len(self._to_board) < TO_BOARD_LIMIT
        pty = self.pty
        if pty is not None and pty in outbox:
            ev = select.POLLIN if room else 0  # POLLHUP (the host left) comes regardless
            if now < self._pty_ready_at:
                timeout = min(timeout, self._pty_ready_at - now)
            elif not stall and outbox.pending_bytes(pty):
                ev |= select.POLLOUT
            p.register(pty.master, ev)
        elif pty is not None:
            p.register(pty.edges_fd, select.POLLIN)  # a host that writes wakes us at once
            timeout = min(timeout, NO_HOST_POLL_S)  # one that only opens is seen this soon
        if pty is not None and self.tcp is not None:  # no new connections while unplugged
            p.register(self.tcp, select.POLLIN)
        client = self.tcp_client
        if client is not None:
            ev = select.POLLIN if room else 0
            if not stall and outbox.pending_bytes(client):
                ev |= select.POLLOUT
            p.register(client, ev)
        if stall:
            timeout = min(timeout, stall)
        next_stall = self.faults.next_stall_in(now)
        if next_stall is not None:
            timeout = min(timeout, next_stall)
        for at in (self._restart_at, self._unplugged_until):
            if at:
                timeout = min(timeout, max(0.0, at - now))
        return p, timeout

    def _service(self, ready: dict[int, int], now: float) -> None:
        if ready.get(self._wake_r):
            try:
                os.read(self._wake_r, 4096)
            except OSError:
                pass
        board = self.board
        if board.running:
            code = board.exit_code()
            if code is not None:
                self._board_exited(code, now)
            elif ready.get(board.stdout_fd, 0) & _IN:
                self._read_board()
        self._read_hosts(ready)
        if self._to_board and board.running:
            n = board.write(self._to_board)
            self.ledger.bytes_in += n
            del self._to_board[:n]
        self._deliver(now)

    # ---- board -> host -----------------------------------------------------------------
    def _read_board(self) -> None:
        outbox = self.outbox
        budget = BACKLOG_LIMIT - outbox.backlog() if outbox.has_ports() else 65536
        if budget > 0:
            data = self.board.read(min(65536, budget))
            if data:
                self._board_output(data)

    def _board_output(self, data: bytes) -> None:
        """The board wrote `data`: ledger first (damage, then the bytes), then the outbox."""
        led = self.ledger
        base = led.bytes_out
        if self.outbox.has_ports():
            self.outbox.push(self.faults.damage(data, base, led), base, base + len(data))
        else:
            led.note_discarded(base, base + len(data))
        led.feed(data)
        self.first_output.set()

    def _deliver(self, now: float) -> None:
        if self.faults.stall_left(now):
            return
        outbox = self.outbox
        for port in outbox.ports():
            if port is self.pty and now < self._pty_ready_at:
                continue
            if not outbox.pending_bytes(port):
                continue
            assert isinstance(port, PtyPort | TcpClient)
            try:
                n = port.send(outbox.pending(port, 16384 if port is self.pty else 65536))
            except ConnectionError:
                if port is self.tcp_client:
                    self._drop_tcp_client()
                continue
            outbox.advance(port, n)
        self.ledger.bytes_delivered = outbox.delivered

    def _lose_port(self, port: Hashable, stale: int) -> None:
        """A host left. `stale`: bytes it had been given but left unread in the pty. When it
        was the last host, what it never read is lost and goes into the ledger."""
        pos, pending = self.outbox.remove(port)
        if not self.outbox.has_ports() and (pending or stale):
            cut = self.outbox.board_offset(pos - stale, default=self.ledger.bytes_out)
            self.ledger.lose_tail(cut, pending + stale)

    # ---- host -> board -----------------------------------------------------------------
    def _read_hosts(self, ready: dict[int, int]) -> None:
        incoming = b""
        pty = self.pty
        if pty is not None and ready.get(pty.edges_fd):
            pty.clear_edges()
        # a pty nobody has open is read every round: a host may have written and left
        if pty is not None and (pty not in self.outbox or ready.get(pty.master, 0) & _IN):
            incoming += pty.read()
        client = self.tcp_client
        if client is not None and ready.get(client.fileno(), 0) & _IN:
            got = client.read()
            if got is None:
                self._drop_tcp_client()
            else:
                incoming += got
        if incoming:
            self._to_board += self.faults.damage_to_board(incoming)
        if self.tcp is not None and ready.get(self.tcp.fileno(), 0) & select.POLLIN:
            new = self.tcp.accept()
            if new is not None:
                self._drop_tcp_client()  # one TCP host at a time: the newest wins
                self.tcp_client = new
                self.outbox.add(new)

    def _drop_tcp_client(self) -> None:
        client, self.tcp_client = self.tcp_client, None
        if client is not None:
            if client in self.outbox:
                self._lose_port(client, 0)
            client.close()

    # ---- the board's life --------------------------------------------------------------
    def _board_exited(self, code: int, now: float) -> None:
        # what it wrote before it ended is real output: take all of it (at most a pipe's
        # worth over the backlog limit)
        while data := self.board.read(65536):
            self._board_output(data)
        self.exit_codes.append(code)
        self.board.kill()
        if not self._stop.is_set():
            # a RESET command restarts at once; a crash as a watchdog would, a moment later
            self._restart_at = now + (0.0 if code == RESET_EXIT_CODE else CRASH_RESTART_S)

    def _start_board(self) -> None:
        self._restart_at = None
        self._to_board.clear()  # commands in flight die with the old board
        self.board.start()
        self.restarts += 1
        self.ledger.new_boot()
