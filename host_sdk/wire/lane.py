"""The decoder's fast lane: a tight loop over ordinary sample frames.

On a healthy link nearly every frame is an ordinary sample frame: an intact version-2
frame of the current boot with the next seq, of a known stream, whose records continue
the stream's index with no new board drops. `lane` takes such frames one after the other
with the fewest Python steps that still make every check of the per-frame path
(`Decoder._scan`): one struct unpack of the frame and sample headers, the header check and
CRC-32 (zlib), seq, boot, flags, record size, index continuity and `board_dropped`. It
stops before the first frame that is anything else (any other message, a resync or
reject, a gap, a duplicate or reordered frame, a new boot, a stream's first frame, an
incomplete frame) and the per-frame path takes that one, so both give identical messages
and counters (tests/protocol/test_wire_fastpath.py feeds both the same bytes).

A numpy version that checked a whole read's frames at once was tried and was no faster
at the board's frame sizes (about 130 frames per 64 KiB read): forty array operations a
batch cost as much as the Python checks they replace, and the frame walk and the CRC-32
stay per frame either way.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any

from host_sdk.wire.runs import Run
from protocol import defs

if TYPE_CHECKING:
    from host_sdk.wire.decoder import Decoder

# frame header from the sync word, then the sample header: 27 bytes. version+type and
# seq+boot are read as one number each, to be compared in one step
_HEADS = struct.Struct("<HHHBBIB" + defs.SAMPLES_HEADER_FMT[1:])
assert _HEADS.size == defs.HEADER_SIZE + defs.SAMPLES_HEADER_SIZE
# the CRC-32 of any bytes followed by their own CRC-32 (little-endian) is this constant, and
# only their own CRC gives it: one zlib call checks a frame without unpacking its CRC field
CRC_RESIDUE = 0x2144DF1C
assert zlib.crc32(b"\x01\x02" + zlib.crc32(b"\x01\x02").to_bytes(4, "little")) == CRC_RESIDUE
_SYNC = defs.SYNC0 | (defs.SYNC1 << 8)
_HCK = defs.HCHECK_OFFSET
_REC0 = defs.HEADER_SIZE + defs.SAMPLES_HEADER_SIZE  # first record byte of a sample frame
_LEN_REC0 = defs.LENGTH_BASE + defs.SAMPLES_HEADER_SIZE  # `length` of a 0-record frame
_UNKNOWN_FLAGS = ~defs.FLAGS_KNOWN & 0xFF
_MASK32 = 0xFFFFFFFF


def lane(
    dec: Decoder,
    buf: bytearray,
    mv: memoryview,
    pos: int,
    out: list[Any],
    runs: dict[int, Run],
) -> tuple[int, int]:
    """Take the ordinary sample frames from `pos` on, adding their records to `runs` (new
    runs also to `out`) and advancing the accounting. Returns (position after the last
    frame taken, frames taken); their bytes are all good bytes."""
    tr = dec.track
    boot = tr.boot
    nseq = tr.next_seq
    if boot is None or nseq is None:
        return pos, 0
    lim = len(buf) - _REC0
    n = len(buf)
    max_len = defs.LENGTH_BASE + dec.max_payload
    unpack = _HEADS.unpack_from
    crc32 = zlib.crc32
    size_of = dec.record_sizes_by_id.get
    dtypes = dec.dtypes
    next_index = tr.next_index
    expected = next_index.get
    run_of = runs.get
    last_dropped = tr.dropped
    vtype = defs.PROTOCOL_VERSION | (defs.MSG_SAMPLES << 8)
    boot16 = boot << 16
    taken = 0
    while pos <= lim:
        sync, length, vt, flags, stream, seqboot, hck, first, _, nrec, dropped = unpack(buf, pos)
        if (
            sync != _SYNC
            or seqboot != nseq | boot16
            or vt != vtype
            or flags & _UNKNOWN_FLAGS
            or length > max_len
        ):
            break
        end = pos + 4 + length
        if end + 4 > n:
            break
        rs = size_of(stream)
        exp = expected(stream)
        if (
            rs is None
            or exp is None
            or nrec * rs != length - _LEN_REC0
            or first != exp & _MASK32
            or dropped != last_dropped[stream]
        ):
            break
        h = crc32(mv[pos + 2 : pos + _HCK])
        if (h & 0xFF) != hck or crc32(mv[pos + _HCK : end + 4], h) != CRC_RESIDUE:
            break
        if nrec:
            next_index[stream] = exp + nrec
            run = run_of(stream)
            if run is None:
                run = Run(stream, exp, flags, nseq, dtypes[stream])
                runs[stream] = run
                out.append(run)
            elif flags:
                run.flags |= flags
            run.parts.append(mv[pos + _REC0 : end])
        nseq = (nseq + 1) & 0xFFFF
        taken += 1
        pos = end + 4
    tr.next_seq = nseq
    tr.seq_u += taken
    return pos, taken
