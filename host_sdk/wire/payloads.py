"""Payloads of the non-sample messages (EVENT, STATUS, ACK, COMMAND, NACK, LOG, HELLO)."""

from __future__ import annotations

import struct

from host_sdk.wire import layouts
from host_sdk.wire.hello_check import parse_hello
from host_sdk.wire.messages import Ack, Command, Event, Log, Message, Nack, Status
from protocol import defs

_EVENT = struct.Struct(defs.EVENT_FMT)
_STATUS = struct.Struct(defs.STATUS_FMT)
_NACK = struct.Struct(defs.NACK_FMT)
_CMD_HEADER = struct.Struct(defs.COMMAND_HEADER_FMT)
_CMD_ARGS = {cid: struct.Struct("<" + spec[1]) for cid, spec in defs.COMMANDS.items()}


def decode_payload(mtype: int, payload: memoryview | bytes) -> Message | None:
    """The message of a non-sample frame; None for an unknown type; ValueError (or
    another exception of the parsers) when the payload is malformed."""
    plen = len(payload)
    if mtype == defs.MSG_EVENT:
        if plen != _EVENT.size:
            raise ValueError("EVENT length")
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
            raise ValueError("STATUS length")
        return Status(*_STATUS.unpack_from(payload))
    if mtype == defs.MSG_ACK or mtype == defs.MSG_COMMAND:
        if plen < _CMD_HEADER.size:
            raise ValueError("command header")
        cmd_seq, cmd_id = _CMD_HEADER.unpack_from(payload)
        args = _CMD_ARGS.get(cmd_id)
        if args is None or plen != _CMD_HEADER.size + args.size:
            raise ValueError("command length")
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
            raise ValueError("NACK length")
        cmd_seq, cmd_id, reason = _NACK.unpack_from(payload)
        text = bytes(payload[_NACK.size :]).decode("utf-8", "replace")
        return Nack(cmd_seq, cmd_id, reason, defs.NACK_NAMES.get(reason, f"nack_{reason}"), text)
    if mtype == defs.MSG_LOG:
        if plen < 1:
            raise ValueError("LOG length")
        return Log(payload[0], bytes(payload[1:]).decode("utf-8", "replace"))
    if mtype == defs.MSG_HELLO:
        return parse_hello(bytes(payload))
    return None
