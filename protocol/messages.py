"""Payload layouts beyond the frame: commands, replies, events, status, HELLO, log.

Fixed-size payloads (events, status) are packed in place with no allocation; variable
ones (HELLO, NACK text, commands) allocate, which is fine because they are rare.
The host derives its `construct` layouts from the same tables in `defs`.
"""

import struct

from protocol import defs

# Per-command tables built once at import, so that packing an ACK on the board needs no
# string concatenation, no `*args` tuple and no calcsize at run time (all of them allocate).
_CMD_FMT = {}  # cmd_id -> "<" + argument format
_CMD_SIZE = {}  # cmd_id -> argument bytes
_CMD_FIELD_FMTS = {}  # cmd_id -> tuple of one-value formats ("<f", ...)
_ONE = {}
for _cid in defs.COMMANDS:
    _args = defs.COMMANDS[_cid][1]
    if _args not in _ONE:  # commands with the same arguments share one format string
        _ONE[_args] = "<" + _args
    _CMD_FMT[_cid] = _ONE[_args]
    _CMD_SIZE[_cid] = struct.calcsize(_ONE[_args])
    _fmts = []
    for _ch in _args:
        if _ch not in _ONE:  # one string per code, shared by every command (RAM on boards)
            _ONE[_ch] = "<" + _ch
        _fmts.append(_ONE[_ch])
    _CMD_FIELD_FMTS[_cid] = tuple(_fmts)
# commands that may also come in their older, shorter layout (defs.COMMAND_BASE_FIELDS)
_CMD_BASE = {}  # cmd_id -> (n fields, "<" + format, bytes)
for _cid in defs.COMMAND_BASE_FIELDS:
    _nb = defs.COMMAND_BASE_FIELDS[_cid]
    _bf = "<" + "".join(f[1:] for f in _CMD_FIELD_FMTS[_cid][:_nb])
    _CMD_BASE[_cid] = (_nb, _bf, struct.calcsize(_bf))


def command_format(cmd_id):
    """struct format of a command's arguments (and of its ACK's applied values)."""
    return _CMD_FMT[cmd_id]


def command_size(cmd_id):
    """Bytes of a command's arguments (and of its ACK's applied values)."""
    return _CMD_SIZE[cmd_id]


def encode_command(cmd_seq, cmd_id, args):
    """Payload bytes of a COMMAND (in its older layout when `args` has only its base fields)."""
    fmt = command_format(cmd_id)
    base = _CMD_BASE.get(cmd_id)
    if base is not None and len(args) == base[0]:
        fmt = base[1]
    return struct.pack(defs.COMMAND_HEADER_FMT, cmd_seq, cmd_id) + struct.pack(fmt, *args)


def command_format_for(cmd_id, payload_len):
    """The struct format of a command (or ACK) payload of this length: its older, shorter
    layout when it came in that (defs.COMMAND_BASE_FIELDS)."""
    if base_fields(cmd_id, payload_len):
        return _CMD_BASE[cmd_id][1]
    return _CMD_FMT[cmd_id]


def base_fields(cmd_id, payload_len):
    """How many fields a command of this payload length carried when it came in its older
    layout (defs.COMMAND_BASE_FIELDS), else 0."""
    base = _CMD_BASE.get(cmd_id)
    if base is not None and payload_len - defs.COMMAND_HEADER_SIZE == base[2]:
        return base[0]
    return 0


def decode_command(payload, payload_len):
    """(cmd_seq, cmd_id, args tuple or None when the length is wrong, or cmd unknown)."""
    if payload_len < defs.COMMAND_HEADER_SIZE:
        return (0, 0, None)
    cmd_seq, cmd_id = struct.unpack_from(defs.COMMAND_HEADER_FMT, payload, 0)
    if cmd_id not in defs.COMMANDS:
        return (cmd_seq, cmd_id, None)
    fmt = command_format(cmd_id)
    n = payload_len - defs.COMMAND_HEADER_SIZE
    if n != _CMD_SIZE[cmd_id]:
        if not base_fields(cmd_id, payload_len):
            return (cmd_seq, cmd_id, None)
        # the older layout: the appended fields are 0 (their "off")
        base = _CMD_BASE[cmd_id]
        args = struct.unpack_from(base[1], payload, defs.COMMAND_HEADER_SIZE)
        fill = [0] * (len(_CMD_FIELD_FMTS[cmd_id]) - base[0])
        return (cmd_seq, cmd_id, tuple(args) + tuple(fill))
    return (cmd_seq, cmd_id, struct.unpack_from(fmt, payload, defs.COMMAND_HEADER_SIZE))


def pack_ack(buf, offset, cmd_seq, cmd_id, applied):
    """Pack an ACK payload at buf[offset:]; return its length.

    `applied` holds one value per argument of the command (a tuple or list, reused by the
    caller to stay allocation-free), or only its base fields to answer a command that came in
    its older layout; when it is empty the applied values are sent as zeros.
    Packs value by value: `struct.pack_into(fmt, ..., *applied)` would allocate.
    """
    struct.pack_into(defs.COMMAND_HEADER_FMT, buf, offset, cmd_seq, cmd_id)
    base = offset + defs.COMMAND_HEADER_SIZE
    size = _CMD_SIZE[cmd_id]
    if applied:
        fmts = _CMD_FIELD_FMTS[cmd_id]
        n = len(fmts)
        if len(applied) != n:
            b = _CMD_BASE.get(cmd_id)
            if b is None or len(applied) != b[0]:
                raise ValueError("applied values do not match the command")
            n = b[0]
            size = b[2]
        i = 0
        while i < n:  # offsets summed here, not stored per command (RAM on boards)
            f = fmts[i]
            struct.pack_into(f, buf, base, applied[i])
            base += struct.calcsize(f)
            i += 1
    else:
        i = 0
        while i < size:
            buf[base + i] = 0
            i += 1
    return defs.COMMAND_HEADER_SIZE + size


def pack_nack(buf, offset, cmd_seq, cmd_id, reason, text):
    """Pack a NACK payload at buf[offset:]; return its length. Text is cut to fit 200 B."""
    struct.pack_into(defs.NACK_FMT, buf, offset, cmd_seq, cmd_id, reason)
    data = text.encode() if isinstance(text, str) else text
    data = data[: defs.NACK_TEXT_MAX]
    start = offset + defs.NACK_HEADER_SIZE
    buf[start : start + len(data)] = data
    return defs.NACK_HEADER_SIZE + len(data)


def decode_nack(payload):
    cmd_seq, cmd_id, reason = struct.unpack_from(defs.NACK_FMT, payload, 0)
    return cmd_seq, cmd_id, reason, bytes(payload[defs.NACK_HEADER_SIZE :]).decode()


def pack_event(buf, offset, t_us, code, cause, index, value):
    struct.pack_into(defs.EVENT_FMT, buf, offset, t_us, code, cause, index, value)
    return defs.EVENT_SIZE


STATUS_SIZE = struct.calcsize(defs.STATUS_FMT)
if len(defs.STATUS_FIELDS) != 8:  # pack_status below spells the eight values out
    raise ImportError("pack_status does not match defs.STATUS_FIELDS")


def pack_status(buf, offset, values):
    """Pack STATUS at buf[offset:] from a sequence in STATUS_FIELDS order; return its length.

    The values are indexed one by one because `*values` would allocate on the board.
    """
    v = values
    struct.pack_into(defs.STATUS_FMT, buf, offset, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
    return STATUS_SIZE


def pack_log(buf, offset, level, text):
    data = text.encode() if isinstance(text, str) else text
    data = data[: defs.LOG_TEXT_MAX]
    buf[offset] = level
    buf[offset + 1 : offset + 1 + len(data)] = data
    return 1 + len(data)


# ---- HELLO -----------------------------------------------------------------------------
# protocol_version u8 | fw_version 3 x u8 | board_id str8 | unique_id str8 | n_streams u8 |
#   per stream: id u8 | name str8 | rate_hz f32 | enabled u8 | record_format str8 |
#               n_fields u8 | per field: name str8 | unit str8 | scale f32 | offset f32
# | n_limits u8 | per limit: name str8 | value f32
# str8 = u8 length + UTF-8 bytes


def _put_str8(buf, pos, s):
    """Write str8 `s` at buf[pos:] (buf None: only measure); return the position after."""
    b = s.encode()
    n = len(b)
    if n > 255:
        raise ValueError("string longer than 255 bytes")
    if buf is not None:
        buf[pos] = n
        buf[pos + 1 : pos + 1 + n] = b
    return pos + 1 + n


def _put_hello(info, buf):
    """Write the HELLO payload into buf (None: only measure); return its length."""
    p = 4
    if buf is not None:
        struct.pack_into("<BBBB", buf, 0, info["protocol_version"], *info["firmware_version"])
    p = _put_str8(buf, p, info["board_id"])
    p = _put_str8(buf, p, info["unique_id"])
    if buf is not None:
        buf[p] = len(info["streams"])
    p += 1
    for s in info["streams"]:
        if buf is not None:
            buf[p] = s["id"]
        p = _put_str8(buf, p + 1, s["name"])
        if buf is not None:
            struct.pack_into("<fB", buf, p, s["rate_hz"], 1 if s["enabled"] else 0)
        p = _put_str8(buf, p + 5, s["record_format"])
        if buf is not None:
            buf[p] = len(s["fields"])
        p += 1
        for f in s["fields"]:
            p = _put_str8(buf, p, f["name"])
            p = _put_str8(buf, p, f["unit"])
            if buf is not None:
                struct.pack_into("<ff", buf, p, f["scale"], f["offset"])
            p += 8
    limits = info.get("limits", {})
    if buf is not None:
        buf[p] = len(limits)
    p += 1
    for name in sorted(limits):
        p = _put_str8(buf, p, name)
        if buf is not None:
            struct.pack_into("<f", buf, p, limits[name])
        p += 4
    return p


def encode_hello(info):
    """HELLO payload from a dict shaped like `decode_hello`'s result. Measured first, then
    written into one buffer: on a 160 KB board heap a list of ~100 parts and their join
    needed more room at boot than is left."""
    buf = bytearray(_put_hello(info, None))
    _put_hello(info, buf)
    return buf


class _Cursor:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def unpack(self, fmt):
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals

    def u8(self):
        v = self.data[self.pos]
        self.pos += 1
        return v

    def str8(self):
        n = self.u8()
        s = bytes(self.data[self.pos : self.pos + n]).decode()
        if len(s.encode()) != n:
            raise ValueError("truncated string")
        self.pos += n
        return s


def decode_hello(payload):
    """Parse a HELLO payload into plain dicts/lists (raises ValueError when malformed)."""
    c = _Cursor(payload)
    try:
        pv, a, b, d = c.unpack("<BBBB")
        info = {
            "protocol_version": pv,
            "firmware_version": (a, b, d),
            "board_id": c.str8(),
            "unique_id": c.str8(),
            "streams": [],
            "limits": {},
        }
        for _ in range(c.u8()):
            sid = c.u8()
            name = c.str8()
            rate, enabled = c.unpack("<fB")
            fmt = c.str8()
            fields = []
            for _ in range(c.u8()):
                fname = c.str8()
                unit = c.str8()
                scale, offset = c.unpack("<ff")
                fields.append({"name": fname, "unit": unit, "scale": scale, "offset": offset})
            info["streams"].append(
                {
                    "id": sid,
                    "name": name,
                    "rate_hz": rate,
                    "enabled": bool(enabled),
                    "record_format": fmt,
                    "fields": fields,
                }
            )
        last = None
        for _ in range(c.u8()):
            lname = c.str8()
            if last is not None and lname <= last:
                raise ValueError("malformed HELLO: limits not sorted by name, or repeated")
            last = lname
            info["limits"][lname] = c.unpack("<f")[0]
    except (IndexError, struct.error) as e:
        raise ValueError("malformed HELLO: " + str(e))  # noqa: B904 (MicroPython warns on `from`)
    if c.pos != len(payload):
        raise ValueError("malformed HELLO: trailing bytes")
    return info
