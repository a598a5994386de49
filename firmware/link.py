"""The firmware's side of the host link: command frames in, every other frame out.

Wraps the HAL link (`readinto(buf)` non-blocking, `write(buf, n)`). One frame sequence
counter covers every frame the board sends, so the host sees any lost frame; the first
frame after boot carries FLAG_BOOT, every frame while latched FLAG_LATCHED.

`send(buf, n)` returns SENT, REFUSED (nothing written: the caller may retry later) or
PARTIAL (the link took only part: the frame is lost on the wire and the caller counts it).
"""

import struct

from micropython import const

from protocol import defs, messages
from protocol.frame import FrameReader, FrameWriter

SENT = const(0)
REFUSED = const(1)
PARTIAL = const(2)

_CONTROL_RETRIES = const(20)
_STATUS_SIZE = const(26)  # struct.calcsize(defs.STATUS_FMT)


class Link:
    def __init__(self, hal_link, clock):
        self.io = hal_link
        self.clock = clock
        self.reader = FrameReader(256)
        self.rx_chunk = bytearray(64)
        self.tx = FrameWriter(512)  # control frames: ACK, NACK, EVENT, STATUS, LOG
        self.hello = None  # HELLO needs more room; built once in its own writer
        self.seq = 0
        self.boot_flag = defs.FLAG_BOOT
        self.latched = False
        self.frames_sent = 0
        self.control_dropped = 0
        self.partial_frames = 0

    # ---- receive --------------------------------------------------------------------
    def poll_commands(self, handler):
        """Feed what the link holds into the frame reader; call handler(reader) per frame."""
        chunk = self.rx_chunk
        reader = self.reader
        while True:
            k = self.io.readinto(chunk)
            if not k:
                return
            for i in range(k):
                if reader.feed_byte(chunk[i]):
                    while True:
                        if reader.msg_type == defs.MSG_COMMAND:
                            handler(reader)
                        if not reader.consume():
                            break

    # ---- send -----------------------------------------------------------------------
    def flags(self):
        f = self.boot_flag
        if self.latched:
            f |= defs.FLAG_LATCHED
        return f

    def send(self, buf, n):
        r = self.io.write(buf, n)
        if not r:
            return REFUSED
        self.seq = (self.seq + 1) & 0xFFFF
        self.boot_flag = 0
        if r < n:
            self.partial_frames += 1
            return PARTIAL
        self.frames_sent += 1
        return SENT

    def send_control(self, writer, msg_type, stream, payload_len):
        """Finish and send a control frame; retries briefly, counts it when it is lost."""
        writer.seq = self.seq
        n = writer.finish(msg_type, self.flags(), stream, payload_len)
        for _ in range(_CONTROL_RETRIES):
            r = self.send(writer.buf, n)
            if r == SENT:
                return True
            if r == PARTIAL:
                break
            self.clock.sleep_us(200)
        self.control_dropped += 1
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

    def nack(self, cmd_seq, cmd_id, reason, text):
        w = self.tx
        n = messages.pack_nack(w.buf, w.payload_offset, cmd_seq, cmd_id, reason, text)
        self.send_control(w, defs.MSG_NACK, 0, n)
        return n

    def resend_reply(self, msg_type, payload, n):
        """Send a stored ACK/NACK payload again (a retried command)."""
        w = self.tx
        off = w.payload_offset
        for i in range(n):
            w.buf[off + i] = payload[i]
        self.send_control(w, msg_type, 0, n)

    def status(self, uptime_ms, frames_sent, dropped, bad_rx, heap_free, state, cause, amps):
        # packed field by field: no tuple, so the 1 Hz STATUS allocates nothing either
        w = self.tx
        struct.pack_into(
            defs.STATUS_FMT,
            w.buf,
            w.payload_offset,
            uptime_ms,
            frames_sent,
            dropped,
            bad_rx,
            heap_free,
            state,
            cause,
            amps,
        )
        self.send_control(w, defs.MSG_STATUS, 0, _STATUS_SIZE)

    def log(self, level, text):
        w = self.tx
        n = messages.pack_log(w.buf, w.payload_offset, level, text)
        self.send_control(w, defs.MSG_LOG, 0, n)

    def send_hello(self, payload):
        n = len(payload)
        if self.hello is None or self.hello.max_payload < n:
            self.hello = FrameWriter(n)
        w = self.hello
        off = w.payload_offset
        w.buf[off : off + n] = payload
        self.send_control(w, defs.MSG_HELLO, 0, n)
