# MicroPython only: table-driven CRC-32 in viper, no heap use per call.
# ruff: noqa: F821  (ptr8, ptr32 and uint are viper built-ins)
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
def _crc(buf: ptr8, start: int, end: int, table: ptr32) -> uint:
    c = uint(0xFFFFFFFF)
    i = start
    while i < end:
        c = uint(table[(c ^ uint(buf[i])) & 0xFF]) ^ (c >> 8)
        i += 1
    return c ^ uint(0xFFFFFFFF)


@micropython.viper
def _store(buf: ptr8, end: int, c: uint):
    buf[end] = c & 0xFF
    buf[end + 1] = (c >> 8) & 0xFF
    buf[end + 2] = (c >> 16) & 0xFF
    buf[end + 3] = (c >> 24) & 0xFF


@micropython.viper
def _matches(buf: ptr8, end: int, c: uint) -> bool:
    return (
        uint(buf[end]) == (c & 0xFF)
        and uint(buf[end + 1]) == ((c >> 8) & 0xFF)
        and uint(buf[end + 2]) == ((c >> 16) & 0xFF)
        and uint(buf[end + 3]) == ((c >> 24) & 0xFF)
    )


@micropython.native
def crc32_into(buf, start, end):
    """Write CRC-32 of buf[start:end] little-endian at buf[end:end + 4]."""
    _store(buf, end, _crc(buf, start, end, _TABLE))


@micropython.native
def crc32_check(buf, start, end):
    """True when buf[end:end + 4] holds the CRC-32 of buf[start:end]."""
    return _matches(buf, end, _crc(buf, start, end, _TABLE))
