"""Link faults: byte damage on the board -> host stream, lost host -> board bytes, stalls.

Each byte fault (drop, flip, insert) is an independent per-byte chance. Rather than rolling
a die per byte, the offset of the next event of each kind is drawn from the geometric
distribution, so damaging a chunk costs time per event, not per byte, and each kind has its
own random stream (the events do not depend on how the output was chunked). Every event is
written into the ledger before the chunk is fed to it.

A stall holds the bytes (the port stays open, nothing arrives); nothing is lost, and with
flow control the board itself waits once the proxy holds enough.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from host_sdk.emulator.ledger import LinkLedger

BYTE_FAULTS = ("drop_rate", "flip_rate", "insert_rate")
RATE_SETTINGS = (*BYTE_FAULTS, "to_board_drop_rate")


class _EventProcess:
    """Offsets of one kind of per-byte event (a Bernoulli process), drawn gap by gap."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rate = 0.0
        self._next: int | None = None  # stream offset of the next event, once drawn

    def set_rate(self, rate: float) -> None:
        if rate != self.rate:
            self.rate = rate
            self._next = None  # redraw from wherever the stream is then

    def events(self, base: int, end: int) -> list[int]:
        """Offsets in [base, end) where this kind of event happens."""
        if self.rate <= 0.0:
            return []
        nxt = self._next
        if nxt is None or nxt < base:  # memoryless: restart the draw at `base`
            nxt = base + self._gap()
        out = []
        while nxt < end:
            out.append(nxt)
            nxt += 1 + self._gap()
        self._next = nxt
        return out

    def _gap(self) -> int:
        """Bytes without an event before the next one (geometric on 0, 1, 2, ...)."""
        if self.rate >= 1.0:
            return 0
        u = self.rng.random()
        return int(math.log1p(-u) / math.log1p(-self.rate))


class LinkFaults:
    """The fault settings of one link and the random streams that realise them."""

    def __init__(self, seed: int) -> None:
        rngs = [random.Random((seed ^ 0x5EED) * 8 + k) for k in range(5)]
        self._drop, self._flip, self._insert = (_EventProcess(r) for r in rngs[:3])
        self._flip_rng, self._to_board_rng = rngs[3], rngs[4]
        self.to_board_drop_rate = 0.0
        self.stall_every_s = 0.0
        self.stall_s = 0.0
        self._stall_until = 0.0
        self._next_stall = 0.0

    @property
    def drop_rate(self) -> float:
        return self._drop.rate

    @property
    def flip_rate(self) -> float:
        return self._flip.rate

    @property
    def insert_rate(self) -> float:
        return self._insert.rate

    def apply(self, settings: dict[str, Any]) -> None:
        """Set any of drop_rate / flip_rate / insert_rate (per byte, board -> host),
        to_board_drop_rate, stall_every_s + stall_s (periodic stalls), stall=SECONDS (one
        stall now). Keys that are absent or None keep their value."""
        s = {k: v for k, v in settings.items() if v is not None}
        for name, proc in (
            ("drop_rate", self._drop),
            ("flip_rate", self._flip),
            ("insert_rate", self._insert),
        ):
            if name in s:
                proc.set_rate(float(s[name]))
        if "to_board_drop_rate" in s:
            self.to_board_drop_rate = float(s["to_board_drop_rate"])
        now = time.monotonic()
        if "stall_every_s" in s:
            self.stall_every_s = float(s["stall_every_s"])
            self._next_stall = now + self.stall_every_s if self.stall_every_s else 0.0
        if "stall_s" in s:
            self.stall_s = float(s["stall_s"])
        if s.get("stall"):
            self._stall_until = now + float(s["stall"])

    def clear(self) -> None:
        self.apply(dict.fromkeys((*RATE_SETTINGS, "stall_every_s", "stall_s"), 0.0))
        self._stall_until = 0.0

    # ---- board -> host -------------------------------------------------------------------
    def damage(self, data: bytes, base: int, ledger: LinkLedger) -> bytes:
        """`data` (board bytes from stream offset `base`) as the host receives it; each
        event is noted in the ledger, in stream order."""
        end = base + len(data)
        drops = self._drop.events(base, end)
        flips = self._flip.events(base, end)
        inserts = self._insert.events(base, end)
        if not (drops or flips or inserts):
            return data
        dropped = set(drops)
        out = bytearray(data)
        for off in flips:
            if off not in dropped:  # a dropped byte cannot also arrive changed
                out[off - base] ^= 1 << self._flip_rng.randrange(8)
        # note every event in offset order; build the output around drops and insertions
        events = sorted(
            [(off, 0) for off in inserts]
            + [(off, 1) for off in drops]
            + [(off, 2) for off in flips if off not in dropped]
        )
        result = bytearray()
        pos = base
        for off, kind in events:
            result += out[pos - base : off - base]
            pos = off
            if kind == 0:
                ledger.note_inserted(off)
                result.append(self._insert.rng.randrange(256))
            elif kind == 1:
                ledger.note_dropped(off)
                pos = off + 1
            else:
                ledger.note_flipped(off)
        result += out[pos - base :]
        return bytes(result)

    # ---- host -> board -------------------------------------------------------------------
    def damage_to_board(self, data: bytes) -> bytes:
        p = self.to_board_drop_rate
        if not p:
            return data
        rng = self._to_board_rng
        return bytes(b for b in data if rng.random() >= p)

    # ---- stalls --------------------------------------------------------------------------
    def stall_left(self, now: float) -> float:
        """Seconds the link stays stalled from `now` (0: not stalled); starts the periodic
        stalls when they are due."""
        if self.stall_every_s and self._next_stall and now >= self._next_stall:
            self._stall_until = max(self._stall_until, now + self.stall_s)
            self._next_stall = now + self.stall_every_s
        return max(0.0, self._stall_until - now)

    def next_stall_in(self, now: float) -> float | None:
        """Seconds until the next periodic stall starts (None: none scheduled)."""
        if self.stall_every_s and self._next_stall:
            return max(0.0, self._next_stall - now)
        return None
