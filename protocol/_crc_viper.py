# MicroPython only: table-driven CRC-32 in viper, no heap use per call.
# ruff: noqa: F821  (ptr8, ptr32 and uint are viper built-ins)
# The CRC never leaves viper code as a Python int: on 32-bit ports an int >= 2**30 is a
# heap-allocated big int, and three CRCs in four are that large. The routines below write
# it into the buffer (crc32_into) or compare it there (crc32_check, returning a bool);
# crc32_low8 returns only its low byte (a small int).
from array import array

import micropython


def _make_table():
    t = array("I", [0] * 256)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if (c & 1) else (c >> 1)
        t[n] = c
    return t


_TABLE = _make_table()


@micropython.viper
def _crc_into(buf: ptr8, start: int, end: int, table: ptr32, check: int) -> int:
    c = uint(0xFFFFFFFF)
    i = start
    while i < end:
        c = uint(table[(c ^ uint(buf[i])) & 0xFF]) ^ (c >> 8)
        i += 1
    c = c ^ uint(0xFFFFFFFF)
    if check == 2:  # the low byte only (the header check): a small int
        return int(c & 0xFF)
    if check:
        if (
            uint(buf[end]) == (c & 0xFF)
            and uint(buf[end + 1]) == ((c >> 8) & 0xFF)
            and uint(buf[end + 2]) == ((c >> 16) & 0xFF)
            and uint(buf[end + 3]) == ((c >> 24) & 0xFF)
        ):
            return 1
        return 0
    buf[end] = c & 0xFF
    buf[end + 1] = (c >> 8) & 0xFF
    buf[end + 2] = (c >> 16) & 0xFF
    buf[end + 3] = (c >> 24) & 0xFF
    return 1


def crc32_into(buf, start, end):
    """Write CRC-32 of buf[start:end] little-endian at buf[end:end + 4]."""
    _crc_into(buf, start, end, _TABLE, 0)


def crc32_check(buf, start, end):
    """True when buf[end:end + 4] holds the CRC-32 of buf[start:end]."""
    return _crc_into(buf, start, end, _TABLE, 1) == 1


def crc32_low8(buf, start, end):
    """Low byte of the CRC-32 of buf[start:end] (the frame header check)."""
    return _crc_into(buf, start, end, _TABLE, 2)
