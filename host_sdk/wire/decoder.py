"""Incremental frame decoder with a vectorised sample path and exact gap accounting.

Feed it bytes in any chunking; it returns messages. It never raises on bad input, never
waits on more than one maximum-size frame of bytes, and hands nothing on that failed its
CRC. Frames are found by a Python loop over frames (bytes.find + struct + zlib.crc32 per
frame, nothing per record); the records of consecutive sample frames of a stream are joined
and turned into a numpy structured array with one `np.frombuffer`.

Output order: messages come out in arrival order, except that sample frames of different
streams that arrive between two other messages are merged into one block per stream run.
Every SampleBlock holds gap-free records; a `Gap` is emitted where samples are missing.
"""

from __future__ import annotations

import struct
import zlib
from collections import defaultdict
from typing import Any

import numpy as np

from host_sdk.wire import layouts
from host_sdk.wire.messages import (
    Ack,
    Command,
    Event,
    FieldInfo,
    Gap,
    Hello,
    Log,
    Message,
    Nack,
    RawSamples,
    SampleBlock,
    Status,
    StreamInfo,
)
from protocol import defs

_SYNC = bytes([defs.SYNC0, defs.SYNC1])
_U32 = struct.Struct("<I")
_INNER = struct.Struct("<" + defs.HEADER_FMT[4:])  # version type flags stream seq
assert _INNER.size == defs.HEADER_SIZE - 4
_SAMPLES_HEADER = struct.Struct(defs.SAMPLES_HEADER_FMT)
_EVENT = struct.Struct(defs.EVENT_FMT)
_STATUS = struct.Struct(defs.STATUS_FMT)
_NACK = struct.Struct(defs.NACK_FMT)
_CMD_HEADER = struct.Struct(defs.COMMAND_HEADER_FMT)
_CMD_ARGS = {cid: struct.Struct("<" + spec[1]) for cid, spec in defs.COMMANDS.items()}

_HDR = defs.HEADER_SIZE
_SHDR = defs.SAMPLES_HEADER_SIZE
_OVERHEAD = defs.FRAME_OVERHEAD
_MASK32 = 0xFFFFFFFF
_HALF32 = 0x80000000

BAD_KINDS = ("length", "crc", "version", "flags", "type", "payload")


def hello_from_dict(info: Any) -> Hello:
    """Hello from a parsed HELLO container/dict (construct or protocol.messages)."""
    streams = tuple(
        StreamInfo(
            id=int(s["id"]),
            name=str(s["name"]),
            rate_hz=float(s["rate_hz"]),
            enabled=bool(s["enabled"]),
            record_format=str(s["record_format"]),
            fields=tuple(
                FieldInfo(str(f["name"]), str(f["unit"]), float(f["scale"]), float(f["offset"]))
                for f in s["fields"]
            ),
        )
        for s in info["streams"]
    )
    limits = info["limits"]
    if not isinstance(limits, dict):  # construct: a list of {name, value}
        limits = {str(lim["name"]): float(lim["value"]) for lim in limits}
    fw = tuple(int(x) for x in info["firmware_version"])
    return Hello(
        protocol_version=int(info["protocol_version"]),
        firmware_version=(fw[0], fw[1], fw[2]),
        board_id=str(info["board_id"]),
        unique_id=str(info["unique_id"]),
        streams=streams,
        limits=dict(limits),
    )


def parse_hello(payload: bytes) -> Hello:
    """HELLO payload -> Hello (raises ValueError/construct errors when malformed)."""
    hello = hello_from_dict(layouts.HELLO.parse(payload))
    for s in hello.streams:
        s.dtype  # noqa: B018  (validates the layout now, not when samples arrive)
    return hello


class _Run:
    """Sample frames of one stream being merged into one block."""

    __slots__ = ("stream", "first_index", "parts", "flags", "seq", "dtype")

    def __init__(self, stream: int, first_index: int, flags: int, seq: int, dtype: Any) -> None:
        self.stream = stream
        self.first_index = first_index
        self.parts: list[Any] = []
        self.flags = flags
        self.seq = seq
        self.dtype = dtype


class Decoder:
    """Bytes in, messages out. See the module docstring and protocol/README.md.

    Counters (all cumulative):
      frames_ok        frames accepted (CRC, length, version, flags and payload all good)
      bad_frames       candidate frames rejected; `bad` breaks them down by kind
      bytes_skipped    bytes discarded while resynchronising or in rejected frames
      bytes_ok         bytes of accepted frames
      lost_frames      frames missing by frame sequence number
      lost_samples     {stream: samples missing by sample index}
      unknown_stream_frames  sample frames of a stream with no known layout (see `raw`)
      boots            frames seen with FLAG_BOOT (index and sequence tracking restarted)
    """

    def __init__(self, hello: Hello | None = None, *, max_payload: int = defs.MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()
        self.frames_ok = 0
        self.bad_frames = 0
        self.bad: dict[str, int] = dict.fromkeys(BAD_KINDS, 0)
        self.bytes_skipped = 0
        self.bytes_ok = 0
        self.lost_frames = 0
        self.lost_samples: defaultdict[int, int] = defaultdict(int)
        self.unknown_stream_frames = 0
        self.boots = 0
        self.hello: Hello | None = None
        self.raw: list[RawSamples] = []
        self._dtypes: dict[int, np.dtype[Any]] = {}
        self._rsize: dict[int, int] = {}
        self._next_index: dict[int, int] = {}  # unwrapped index expected next, per stream
        self._next_seq: int | None = None
        if hello is not None:
            self.set_hello(hello)

    # ---- configuration ----------------------------------------------------------------
    def set_hello(self, hello: Hello) -> None:
        """Take record layouts from a HELLO (done automatically when one is decoded)."""
        self.hello = hello
        self._dtypes = {s.id: s.dtype for s in hello.streams}
        self._rsize = {sid: int(dt.itemsize) for sid, dt in self._dtypes.items()}

    def take_raw(self) -> list[RawSamples]:
        """Sample frames kept aside because their stream's layout was unknown."""
        raw, self.raw = self.raw, []
        return raw

    @property
    def pending_bytes(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    # ---- decoding -------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add bytes; return every message completed by them."""
        self._buf += data
        return self._process(final=False)

    def flush(self) -> list[Message]:
        """End of input: give up on any incomplete frame, decode what follows it."""
        out = self._process(final=True)
        self.bytes_skipped += len(self._buf)
        self._buf.clear()
        return out

    def _reject(self, kind: str) -> None:
        self.bad_frames += 1
        self.bad[kind] += 1

    def _process(self, final: bool) -> list[Message]:
        result, pos = self._scan(final)
        # every view into the buffer died with _scan's frame, so it may be resized now
        del self._buf[:pos]
        return result

    def _scan(self, final: bool) -> tuple[list[Message], int]:
        buf = self._buf
        n = len(buf)
        out: list[Any] = []  # Message or _Run placeholders, materialised at the end
        runs: dict[int, _Run] = {}  # open run per stream
        max_len = defs.LENGTH_BASE + self.max_payload
        find = buf.find
        crc32 = zlib.crc32
        u32 = _U32.unpack_from
        inner = _INNER.unpack_from
        sh = _SAMPLES_HEADER.unpack_from
        rsize = self._rsize
        next_index = self._next_index
        msg_samples = defs.MSG_SAMPLES
        unknown_flags = ~defs.FLAGS_KNOWN & 0xFF
        version = defs.PROTOCOL_VERSION
        pos = 0
        skipped = 0
        ok = 0
        ok_bytes = 0
        mv = memoryview(buf)
        try:
            while True:
                i = find(_SYNC, pos)
                if i < 0:
                    # keep a trailing A5: it may be the first half of the next sync word
                    keep = n - 1 if n > pos and buf[n - 1] == defs.SYNC0 and not final else n
                    skipped += keep - pos
                    pos = keep
                    break
                skipped += i - pos
                if i + 4 > n:
                    if final:
                        skipped += 1
                        pos = i + 1
                        continue
                    pos = i
                    break
                length = buf[i + 2] | (buf[i + 3] << 8)
                if length < defs.LENGTH_BASE or length > max_len:
                    self._reject("length")
                    skipped += 1
                    pos = i + 1
                    continue
                end = i + 4 + length
                if end + 4 > n:
                    if final:
                        self._reject("length")
                        skipped += 1
                        pos = i + 1
                        continue
                    pos = i
                    break
                if crc32(mv[i + 2 : end]) != u32(buf, end)[0]:
                    self._reject("crc")
                    skipped += 1
                    pos = i + 1
                    continue
                # a real frame (CRC-32 matched): whatever happens now, skip all of it
                pos = end + 4
                ver, mtype, flags, stream, seq = inner(buf, i + 4)
                if ver != version:
                    self._reject("version")
                    skipped += pos - i
                    continue
                if flags & unknown_flags:
                    self._reject("flags")
                    skipped += pos - i
                    continue
                # frame sequence accounting (one counter for every frame the sender sends)
                if flags & defs.FLAG_BOOT:
                    self.boots += 1
                    self._next_seq = None
                    next_index.clear()
                    runs.clear()
                nxt = self._next_seq
                if nxt is not None and seq != nxt:
                    d = (seq - nxt) & 0xFFFF
                    if d < 0x8000:
                        self.lost_frames += d
                self._next_seq = (seq + 1) & 0xFFFF

                if mtype == msg_samples:
                    plen = length - defs.LENGTH_BASE
                    if plen < _SHDR:
                        self._reject("payload")
                        skipped += pos - i
                        continue
                    first, t_first, nrec = sh(buf, i + _HDR)
                    rs = rsize.get(stream)
                    start = i + _HDR + _SHDR
                    if rs is None:
                        self.unknown_stream_frames += 1
                        self.raw.append(
                            RawSamples(
                                stream, first, t_first, nrec, bytes(mv[start:end]), flags, seq
                            )
                        )
                        ok += 1
                        ok_bytes += pos - i
                        continue
                    if nrec * rs != plen - _SHDR:
                        self._reject("payload")
                        skipped += pos - i
                        continue
                    ok += 1
                    ok_bytes += pos - i
                    if nrec == 0:
                        continue
                    run = runs.get(stream)
                    exp = next_index.get(stream)
                    if exp is None:
                        idx = first
                    else:
                        d = (first - exp) & _MASK32
                        if d == 0:
                            idx = exp
                        elif d < _HALF32:
                            idx = exp + d
                            self.lost_samples[stream] += d
                            run = None
                            out.append(Gap(stream, exp, d, bool(flags & defs.FLAG_DROPPED)))
                        else:  # backwards: the board restarted without us seeing FLAG_BOOT
                            idx = first
                            run = None
                    next_index[stream] = idx + nrec
                    if run is None:
                        run = _Run(stream, idx, flags, seq, self._dtypes[stream])
                        runs[stream] = run
                        out.append(run)
                    else:
                        run.flags |= flags
                    run.parts.append(mv[start:end])
                    continue

                # any other message: close the sample runs first, so order is kept
                runs.clear()
                msg = self._decode_other(mtype, stream, mv[i + _HDR : end])
                if msg is None:
                    skipped += pos - i
                    continue
                ok += 1
                ok_bytes += pos - i
                out.append(msg)
                if isinstance(msg, Hello):
                    self.set_hello(msg)
                    rsize = self._rsize

            result: list[Message] = []
            for item in out:
                if isinstance(item, _Run):
                    parts = item.parts
                    data = bytearray(parts[0]) if len(parts) == 1 else bytearray().join(parts)
                    records = np.frombuffer(data, dtype=item.dtype)
                    result.append(
                        SampleBlock(item.stream, item.first_index, records, item.flags, item.seq)
                    )
                else:
                    result.append(item)
        finally:
            out.clear()
            runs.clear()
        self.bytes_skipped += skipped
        self.frames_ok += ok
        self.bytes_ok += ok_bytes
        return result, pos

    def _decode_other(self, mtype: int, stream: int, payload: memoryview) -> Message | None:
        """Decode one non-sample payload; None (counted) when it is malformed."""
        plen = len(payload)
        try:
            if mtype == defs.MSG_EVENT:
                if plen != _EVENT.size:
                    raise ValueError
                t_us, code, cause, index, value = _EVENT.unpack_from(payload)
                return Event(
                    t_us,
                    code,
                    defs.EVENT_NAMES.get(code, f"event_{code}"),
                    cause,
                    defs.CAUSE_NAMES.get(cause, f"cause_{cause}"),
                    index,
                    value,
                )
            if mtype == defs.MSG_STATUS:
                if plen != _STATUS.size:
                    raise ValueError
                return Status(*_STATUS.unpack_from(payload))
            if mtype == defs.MSG_ACK or mtype == defs.MSG_COMMAND:
                if plen < _CMD_HEADER.size:
                    raise ValueError
                cmd_seq, cmd_id = _CMD_HEADER.unpack_from(payload)
                args = _CMD_ARGS.get(cmd_id)
                if args is None or plen != _CMD_HEADER.size + args.size:
                    raise ValueError
                raw = args.unpack_from(payload, _CMD_HEADER.size)
                us_index = layouts.COMMAND_US_INDEX[cmd_id]
                if us_index:  # integer us on the wire, seconds at the SDK surface
                    vals = list(raw)
                    for k in us_index:
                        vals[k] = vals[k] / layouts.US_PER_S
                    raw = tuple(vals)
                values = dict(zip(layouts.COMMAND_FIELDS[cmd_id], raw, strict=True))
                name = layouts.COMMAND_NAMES[cmd_id]
                if mtype == defs.MSG_ACK:
                    return Ack(cmd_seq, cmd_id, name, values)
                return Command(cmd_seq, cmd_id, name, values)
            if mtype == defs.MSG_NACK:
                if plen < _NACK.size:
                    raise ValueError
                cmd_seq, cmd_id, reason = _NACK.unpack_from(payload)
                text = bytes(payload[_NACK.size :]).decode("utf-8", "replace")
                return Nack(
                    cmd_seq, cmd_id, reason, defs.NACK_NAMES.get(reason, f"nack_{reason}"), text
                )
            if mtype == defs.MSG_LOG:
                if plen < 1:
                    raise ValueError
                return Log(payload[0], bytes(payload[1:]).decode("utf-8", "replace"))
            if mtype == defs.MSG_HELLO:
                return parse_hello(bytes(payload))
        except Exception:  # malformed payload inside a CRC-valid frame: count, go on
            self._reject("payload")
            return None
        self._reject("type")
        return None
