"""Board bytes (after the link faults) on their way to the host ports.

One buffer and one read position per connected port, so a slow port holds bytes back for
itself only and never makes the others see them twice. `backlog()` (what the slowest port
has yet to take) is what the proxy bounds: past it, it stops reading the board. Positions are
offsets in the output stream (the bytes as the host receives them), which never restart.

For the ledger, the outbox also remembers which board-stream bytes each pushed chunk came
from, for the last `MAP_SPAN` of output: when the last host leaves, the output it never read
maps back to board offsets (to within the faults inside the chunk at the cut).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

MAP_SPAN = 1 << 20  # output bytes whose board offsets stay known (>> outbox + pty buffers)


class Outbox:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._start = 0  # output offset of _buf[0]
        self._pos: dict[Hashable, int] = {}
        self._furthest = 0  # the furthest output offset any port has taken
        self._delivered = 0
        # (output start, output end, board start, board end) of recent chunks
        self._chunks: deque[tuple[int, int, int, int]] = deque(maxlen=8192)

    @property
    def end(self) -> int:
        return self._start + len(self._buf)

    @property
    def delivered(self) -> int:
        """Output bytes handed to at least one port."""
        return self._delivered

    def ports(self) -> list[Hashable]:
        return list(self._pos)

    def has_ports(self) -> bool:
        return bool(self._pos)

    def __contains__(self, port: Hashable) -> bool:
        return port in self._pos

    def add(self, port: Hashable) -> None:
        """A port that connected now: it gets the bytes pushed from now on."""
        self._pos[port] = self.end

    def remove(self, port: Hashable) -> tuple[int, int]:
        """(its position, bytes it had yet to take) of a port that went away."""
        pos = self._pos.pop(port)
        self._trim()
        return pos, self.end - pos

    def push(self, data: bytes, board_start: int, board_end: int) -> None:
        if not self._pos:
            return
        out_start = self.end
        self._buf += data
        self._chunks.append((out_start, self.end, board_start, board_end))
        while self._chunks and self._chunks[0][1] < self.end - MAP_SPAN:
            self._chunks.popleft()

    def backlog(self) -> int:
        """Bytes the slowest connected port has yet to take."""
        return self.end - min(self._pos.values()) if self._pos else 0

    def pending_bytes(self, port: Hashable) -> int:
        return self.end - self._pos[port]

    def pending(self, port: Hashable, limit: int = 65536) -> bytes:
        """The next bytes for `port` (at most `limit`)."""
        i = self._pos[port] - self._start
        return bytes(self._buf[i : i + limit])

    def advance(self, port: Hashable, n: int) -> None:
        if n <= 0:
            return
        old = self._pos[port]
        pos = self._pos[port] = old + n
        # each output byte counts once, when the first port takes it
        first_taker_from = max(old, self._furthest)
        if pos > first_taker_from:
            self._delivered += pos - first_taker_from
            self._furthest = pos
        self._trim()

    def _trim(self) -> None:
        keep_from = min(self._pos.values()) if self._pos else self.end
        if keep_from > self._start:
            del self._buf[: keep_from - self._start]
            self._start = keep_from

    def board_offset(self, out_pos: int, default: int) -> int:
        """The board-stream offset that output offset `out_pos` came from (`default` when
        no chunk is remembered)."""
        for o0, o1, b0, b1 in reversed(self._chunks):
            if o0 <= out_pos:
                return b0 + min(out_pos - o0, b1 - b0) if out_pos < o1 else b1
        return self._chunks[0][2] if self._chunks else default
