"""The firmware's side of the host link: command frames in, every other frame out.

Wraps the HAL link (`readinto(buf)` non-blocking; `write(buf, n, off)` takes what fits of
buf[off:off + n] without waiting and returns how many bytes it took). One frame sequence
counter covers every frame the board sends, so the host sees any lost frame; the first
frame after boot carries FLAG_BOOT, every frame while latched FLAG_LATCHED.

Nothing here waits for the host. A USB CDC write blocks while the host is not reading
(rp2: up to 500 ms per call), and every 526 B sample frame is larger than its 256 B
transmit buffer, so a loop that wrote whole frames (and retried) could stall sampling and
the safety checks for seconds. Instead:
- a frame is offered to the HAL once; what it did not take goes into `outbox` (a byte
  FIFO) and is written from there on later passes (`pump`), before anything new;
- while the outbox holds bytes, a new sample frame is REFUSED (the sampler keeps it and
  counts drops when its buffers overflow) and a control frame (ACK, NACK, EVENT, STATUS,
  LOG, HELLO) is queued behind it, or counted in `control_dropped` when it does not fit.
So a frame that was started is always finished: partial frames never reach the wire.
`send(buf, n)` returns SENT (on the wire or queued in order) or REFUSED (nothing taken).
All counters wrap at 2**30 so that they stay small ints on 32-bit ports.
"""

import struct

from micropython import const

from firmware.fastops import copy_bytes
from protocol import defs, messages
from protocol.frame import FrameReader, FrameWriter

SENT = const(0)
REFUSED = const(1)
PARTIAL = const(2)  # no longer returned (partial writes are finished from the outbox)

_M30 = const(0x3FFFFFFF)
_STATUS_SIZE = const(26)  # struct.calcsize(defs.STATUS_FMT)
_OUTBOX = const(2048)  # one sample frame (526 B) + a burst of control frames + the HELLO


def new_boot_id(clock):
    """A random u16 boot id, never 0 (host frames carry 0): the host tells a reboot from a
    gap by it, however many frames (the FLAG_BOOT one included) the link lost."""
    try:
        from os import urandom

        r = urandom(2)
        b = r[0] | (r[1] << 8)
    except Exception:  # a port without urandom: the boot time in us is random enough
        b = clock.ticks_us() & 0xFFFF
    return b or 1


class Link:
    def __init__(self, hal_link, clock):
        self.io = hal_link
        self.clock = clock
        self.reader = FrameReader(256)
        self.rx_chunk = bytearray(64)
        # control frames: ACK, NACK, EVENT, STATUS, LOG; grown once to fit the HELLO (one
        # buffer for both: the 160 KB heap of an RP2040 has no room for two)
        self.tx = FrameWriter(512)
        self.outbox = bytearray(_OUTBOX)
        self.out_start = 0
        self.out_end = 0
        self.seq = 0
        self.boot = new_boot_id(clock)
        self.boot_flag = defs.FLAG_BOOT
        self.latched = False
        self.frames_sent = 0
        self.control_dropped = 0
        self.bytes_queued = 0  # bytes that went through the outbox (diagnostics)
        self.hello_end = 0  # outbox offset where a queued HELLO ends (0: none waiting)

    # ---- receive --------------------------------------------------------------------
    def poll_commands(self, handler):
        """Feed what the link holds into the frame reader; call handler(reader) per frame.
        Returns the number of command frames handled."""
        handled = 0
        while True:
            k = self.io.readinto(self.rx_chunk)
            if not k:
                return handled
            handled += self._feed(k, handler)

    def _feed(self, k, handler):
        # apart from poll_commands, which runs at every pass and mostly finds nothing: one
        # frame of both would not fit MicroPython's C stack (see firmware/app.py)
        chunk = self.rx_chunk
        reader = self.reader
        handled = 0
        i = 0
        while i < k:
            if reader.feed_byte(chunk[i]):
                while True:
                    if reader.msg_type == defs.MSG_COMMAND:
                        handler(reader)
                        handled += 1
                    if not reader.consume():
                        break
            i += 1
        return handled

    # ---- send -----------------------------------------------------------------------
    def flags(self):
        f = self.boot_flag
        if self.latched:
            f |= defs.FLAG_LATCHED
        return f

    def busy(self):
        """True while the outbox still holds bytes of a frame."""
        return self.out_end > self.out_start

    def pump(self):
        """Write what the HAL takes of the outbox; True when it is empty."""
        s = self.out_start
        e = self.out_end
        if e > s:
            k = self.io.write(self.outbox, e - s, s)
            if k:
                s += k
                if s >= self.hello_end:
                    self.hello_end = 0
                if s >= e:
                    s = e = 0
                self.out_start = s
                self.out_end = e
        return e == s

    def _queue(self, buf, off, n):
        """Append buf[off:off + n] to the outbox; False when it does not fit."""
        s = self.out_start
        e = self.out_end
        if e + n > _OUTBOX and s:
            copy_bytes(self.outbox, 0, self.outbox, s, e - s)
            e -= s
            self.hello_end = self.hello_end - s if self.hello_end > s else 0
            s = 0
            self.out_start = 0
            self.out_end = e
        if e + n > _OUTBOX:
            return False
        copy_bytes(self.outbox, e, buf, off, n)
        self.out_end = e + n
        q = self.bytes_queued  # + n, wrapping at 2**30 without forming it
        self.bytes_queued = q + n if n <= _M30 - q else n - (_M30 - q) - 1
        return True

    def _sent(self):
        self.seq = (self.seq + 1) & 0xFFFF
        self.boot_flag = 0
        self.frames_sent = self.frames_sent + 1 if self.frames_sent < _M30 else 0

    def send(self, buf, n):
        """Offer a sample frame: SENT (written, or its rest queued) or REFUSED."""
        if not self.pump():
            return REFUSED
        k = self.io.write(buf, n, 0)
        if not k:
            return REFUSED
        if k < n:
            self._queue(buf, k, n - k)  # the outbox was empty: the rest always fits
        self._sent()
        return SENT

    def send_control(self, writer, msg_type, stream, payload_len):
        """Finish and send a control frame, queued behind the outbox when the link is
        busy; counted in control_dropped when even the outbox cannot take it (its seq is
        used up all the same, so the host sees the frame missing)."""
        writer.seq = self.seq
        writer.boot = self.boot
        n = writer.finish(msg_type, self.flags(), stream, payload_len)
        buf = writer.buf
        if self.pump():
            k = self.io.write(buf, n, 0)
            if k == n:
                self._sent()
                return True
            if self._queue(buf, k, n - k):
                self._sent()
                return True
        elif self._queue(buf, 0, n):
            self._sent()
            return True
        self.control_dropped = self.control_dropped + 1 if self.control_dropped < _M30 else 0
        # it still takes its seq: the host counts it among the lost frames (STATUS
        # frames_sent does not count it, which tells it from a loss on the link)
        self.seq = (self.seq + 1) & 0xFFFF
        return False

    def event(self, t30, epoch, code, cause, index, value):
        w = self.tx
        off = w.payload_offset
        messages.pack_event(w.buf, off, t30, code, cause, index, value)
        w.buf[off + 3] |= epoch << 6
        return self.send_control(w, defs.MSG_EVENT, 0, defs.EVENT_SIZE)

    def ack(self, cmd_seq, cmd_id, applied):
        w = self.tx
        n = messages.pack_ack(w.buf, w.payload_offset, cmd_seq, cmd_id, applied)
        self.send_control(w, defs.MSG_ACK, 0, n)
        return n

    def ack_timesync(self, cmd_seq, t30, ep6):
        """ACK a timesync with the device clock (u32 us from t30 and its epoch bits, no big
        int): the host's heartbeat, so it must allocate nothing."""
        w = self.tx
        off = w.payload_offset
        struct.pack_into("<HBI", w.buf, off, cmd_seq, defs.CMD_TIMESYNC, t30)
        w.buf[off + 6] |= ep6
        self.send_control(w, defs.MSG_ACK, 0, 7)

    def nack(self, cmd_seq, cmd_id, reason, text):
        w = self.tx
        n = messages.pack_nack(w.buf, w.payload_offset, cmd_seq, cmd_id, reason, text)
        self.send_control(w, defs.MSG_NACK, 0, n)
        return n

    def resend_reply(self, msg_type, payload, n):
        """Send a stored ACK/NACK payload again (a retried command)."""
        w = self.tx
        copy_bytes(w.buf, w.payload_offset, payload, 0, n)
        self.send_control(w, msg_type, 0, n)

    def status(self, uptime30, up_ep6, frames_sent, dropped, bad_rx, heap_free, state, cause, amps):
        # packed field by field: no tuple, so the 1 Hz STATUS allocates nothing either.
        # uptime_ms is a u32 built from its low 30 bits and 2 epoch bits (no big int)
        w = self.tx
        off = w.payload_offset
        struct.pack_into(
            defs.STATUS_FMT,
            w.buf,
            off,
            uptime30,
            frames_sent,
            dropped,
            bad_rx,
            heap_free,
            state,
            cause,
            amps,
        )
        w.buf[off + 3] |= up_ep6
        self.send_control(w, defs.MSG_STATUS, 0, _STATUS_SIZE)

    def log(self, level, text):
        w = self.tx
        n = messages.pack_log(w.buf, w.payload_offset, level, text)
        self.send_control(w, defs.MSG_LOG, 0, n)

    def hello_pending(self):
        """True while the last HELLO is still (partly) in the outbox: it has not reached the
        host yet, so it answers a GET_INFO that arrives now as well. (A host that resends
        GET_INFO faster than the link drains HELLOs, or whose GET_INFOs pile up while the
        board boots, would otherwise fill the outbox with HELLOs and crowd out ACKs.)"""
        return self.hello_end > self.out_start

    def send_hello(self, payload):
        n = len(payload)
        if self.tx.max_payload < n:
            self.tx = None  # the old buffer is garbage before the new one is taken
            self.tx = FrameWriter(n)
        w = self.tx
        off = w.payload_offset
        w.buf[off : off + n] = payload
        if self.send_control(w, defs.MSG_HELLO, 0, n):
            self.hello_end = self.out_end  # 0 when it went out whole
