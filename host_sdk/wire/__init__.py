"""Host side of the wire protocol: layouts, message types, encoder and decoder.

    from host_sdk.wire import Decoder, encode_command
    dec = Decoder()
    for msg in dec.feed(port.read(4096)): ...

The byte-level specification is protocol/README.md.
"""

from host_sdk.wire.decoder import Decoder
from host_sdk.wire.encoder import (
    CommandError,
    command_payload,
    encode_ack,
    encode_command,
    encode_event,
    encode_frame,
    encode_hello,
    encode_log,
    encode_nack,
    encode_samples,
    encode_status,
    reference_hello,
    reference_streams,
)
from host_sdk.wire.hello_check import parse_hello
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
    Reboot,
    SampleBlock,
    Status,
    StreamInfo,
)

__all__ = [
    "Ack",
    "Command",
    "CommandError",
    "Decoder",
    "Event",
    "FieldInfo",
    "Gap",
    "Hello",
    "Log",
    "Message",
    "Nack",
    "RawSamples",
    "Reboot",
    "SampleBlock",
    "Status",
    "StreamInfo",
    "command_payload",
    "encode_ack",
    "encode_command",
    "encode_event",
    "encode_frame",
    "encode_hello",
    "encode_log",
    "encode_nack",
    "encode_samples",
    "encode_status",
    "parse_hello",
    "reference_hello",
    "reference_streams",
]
