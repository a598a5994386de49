"""Framing: sync word, length, header, header check, payload, CRC-32.

    A5 5A | length u16 | version u8 | type u8 | flags u8 | stream u8 | seq u16 | boot u16 |
    hcheck u8 | payload | crc32

`length` counts version..hcheck plus the payload; the CRC covers length..payload; hcheck is
the low byte of the CRC-32 of length..boot. A reader that loses sync (garbage, a dropped
byte, a flipped bit) tries every following A5 5A as a frame start and accepts one only when
its header check, length and CRC are good, so it is back in step at the next intact frame;
the header check rejects a bad candidate after 13 bytes instead of after the (up to 1 KB)
length it claims. A version-1 frame (no header check) is still recognised by its CRC-32.

FrameWriter builds frames in a buffer it owns and allocates nothing per frame; FrameReader
collects incoming frames byte by byte into a preallocated buffer (the board reads only
small command frames, so a per-byte loop costs little there).
"""

import struct

from protocol import defs
from protocol.crc import crc32_check, crc32_into, crc32_low8

_HEADER_FMT = defs.HEADER_FMT
_HEADER_SIZE = defs.HEADER_SIZE
_SAMPLES_HEADER_FMT = defs.SAMPLES_HEADER_FMT
_SAMPLES_HEADER_SIZE = defs.SAMPLES_HEADER_SIZE
_HCHECK = defs.HCHECK_OFFSET


class FrameWriter:
    """Owns one frame buffer; fill the payload in place, then `finish` and send.

    Typical board use, with no allocation:
        w.payload_offset  -> where to struct.pack_into the payload
        n = w.finish(defs.MSG_EVENT, flags, 0, payload_len)
        link.write(w.buf, n)
    """

    def __init__(self, max_payload=defs.MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray(_HEADER_SIZE + max_payload + defs.CRC_SIZE)
        self.payload_offset = _HEADER_SIZE
        self.seq = 0
        self.boot = 0  # the board's boot id (0 in host frames)

    def finish(self, msg_type, flags, stream, payload_len):
        """Write header and CRC around a payload already in place; return frame length."""
        buf = self.buf
        struct.pack_into(
            _HEADER_FMT,
            buf,
            0,
            defs.SYNC0,
            defs.SYNC1,
            defs.LENGTH_BASE + payload_len,
            defs.PROTOCOL_VERSION,
            msg_type,
            flags,
            stream,
            self.seq,
            self.boot,
            0,
        )
        buf[_HCHECK] = crc32_low8(buf, defs.LENGTH_OFFSET, _HCHECK)
        end = _HEADER_SIZE + payload_len
        crc32_into(buf, defs.LENGTH_OFFSET, end)
        self.seq = (self.seq + 1) & 0xFFFF
        return end + defs.CRC_SIZE


class SampleFrame:
    """A preallocated sample frame for one stream: append records, then seal and send.

    Records are packed straight into the frame buffer with struct.pack_into at
    `record_offset()`; `seal` writes the sample header, frame header and CRC in place.
    """

    def __init__(self, stream, record_size, payload_capacity=defs.DEFAULT_SAMPLE_PAYLOAD):
        self.stream = stream
        self.record_size = record_size
        self.capacity = (payload_capacity - _SAMPLES_HEADER_SIZE) // record_size
        if self.capacity < 1:
            raise ValueError("record larger than the sample payload")
        self.writer = FrameWriter(_SAMPLES_HEADER_SIZE + self.capacity * record_size)
        self.buf = self.writer.buf
        self.count = 0
        self.first_index = 0
        self.t_first_us = 0
        self.dropped = 0  # board_dropped for the header, low 30 bits (board)
        self.dropped_ep6 = 0  # its top 2 bits << 6
        self.flag = 0  # FLAG_DROPPED when samples were lost just before its first record

    def reset(self, first_index):
        self.count = 0
        self.first_index = first_index

    def full(self):
        return self.count >= self.capacity

    def record_offset(self):
        """Byte offset in `buf` of the next record; call `added(t_us)` after packing it."""
        return _HEADER_SIZE + _SAMPLES_HEADER_SIZE + self.count * self.record_size

    def added(self, t_us):
        if self.count == 0:
            self.t_first_us = t_us
        self.count += 1

    def seal(self, flags, seq, boot=0, board_dropped=0):
        """Finish the frame with frame sequence number `seq`; return its length in bytes."""
        struct.pack_into(
            _SAMPLES_HEADER_FMT,
            self.buf,
            _HEADER_SIZE,
            self.first_index,
            self.t_first_us,
            self.count,
            board_dropped,
        )
        self.writer.seq = seq
        self.writer.boot = boot
        return self.writer.finish(
            defs.MSG_SAMPLES,
            flags,
            self.stream,
            _SAMPLES_HEADER_SIZE + self.count * self.record_size,
        )


class FrameReader:
    """Incremental frame reader for the board (commands from the host).

    Feed bytes with `feed_byte`; it returns True when a complete, CRC-valid frame sits in
    `buf` (header at 0, `payload_len` bytes of payload at HEADER_SIZE). Corrupt frames are
    counted in `bad_frames` and the reader rescans the bytes it already holds, so a frame
    that started inside a corrupt one is still found.
    """

    def __init__(self, max_payload=256):
        self.max_payload = max_payload
        self.buf = bytearray(_HEADER_SIZE + max_payload + defs.CRC_SIZE)
        self.n = 0  # bytes held
        self.need = 0  # total frame size once the length is known
        self.bad_frames = 0  # counters wrap at 2**30 (small ints on every port)
        self.frames = 0
        self.foreign_version = 0  # version byte of the last intact frame of another version
        self.msg_type = 0
        self.flags = 0
        self.stream = 0
        self.seq = 0
        self.payload_len = 0

    def feed_byte(self, b):
        buf = self.buf
        buf[self.n] = b
        self.n += 1
        return self._advance()

    def _bad(self):
        self.bad_frames = self.bad_frames + 1 if self.bad_frames < 0x3FFFFFFF else 0
        self._shift(1)

    def _advance(self):
        buf = self.buf
        while True:
            n = self.n
            if n == 0:
                return False
            if buf[0] != defs.SYNC0:
                self._shift(1)
                continue
            if n < 2:
                return False
            if buf[1] != defs.SYNC1:
                self._shift(1)
                continue
            if n < 5:
                return False
            length = buf[2] | (buf[3] << 8)
            ver = buf[4]
            if ver == 1:
                # version 1: no header check; only its CRC-32 tells a frame from noise
                if length < defs.V1_LENGTH_BASE or length > defs.V1_LENGTH_BASE + self.max_payload:
                    self._bad()
                    continue
            else:
                if ver == 0:
                    self._bad()
                    continue
                if n < _HEADER_SIZE:
                    return False
                if buf[_HCHECK] != crc32_low8(buf, defs.LENGTH_OFFSET, _HCHECK):
                    self._bad()
                    continue
                if length < defs.LENGTH_BASE or length > defs.LENGTH_BASE + self.max_payload:
                    self._bad()
                    continue
            need = 4 + length + defs.CRC_SIZE
            if n < need:
                return False
            if not crc32_check(buf, defs.LENGTH_OFFSET, 4 + length):
                self._bad()
                continue
            if ver != defs.PROTOCOL_VERSION:
                # an intact frame of another protocol version: skip it whole, remember it
                self.bad_frames = self.bad_frames + 1 if self.bad_frames < 0x3FFFFFFF else 0
                self.foreign_version = ver
                self._shift(need)
                continue
            self.msg_type = buf[5]
            self.flags = buf[6]
            self.stream = buf[7]
            self.seq = buf[8] | (buf[9] << 8)
            self.payload_len = length - defs.LENGTH_BASE
            self.need = need
            self.frames = self.frames + 1 if self.frames < 0x3FFFFFFF else 0
            return True

    def consume(self):
        """Drop the frame just returned so the next one can be read."""
        self._shift(self.need)
        self.need = 0
        return self._advance()

    def _shift(self, k):
        buf = self.buf
        n = self.n
        # memmove without a temporary: the board never holds more than one frame
        i = 0
        while i + k < n:
            buf[i] = buf[i + k]
            i += 1
        self.n = n - k if n > k else 0
