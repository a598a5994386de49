"""CRC-32 (IEEE 802.3, the one of zlib and binascii) over a range of a buffer.

On the board the CRC must cost no heap: slicing a memoryview allocates, and on 32-bit
ports a CRC returned as a Python int is a heap-allocated big int for three values in four.
So MicroPython uses a viper routine that reads the range in place and writes (or checks)
the CRC straight in the buffer, the value never leaving viper code. Ports without the
native emitter (the WebAssembly port, some builds) use a pure-Python table CRC that keeps
the value in two 16-bit halves, so it allocates nothing either (slower: fine for tests).
CPython uses zlib.
"""

try:
    from protocol._crc_viper import crc32_check, crc32_into, crc32_low8  # noqa: F401
except (ImportError, SyntaxError, ValueError):  # CPython, or a port without native code
    # (ValueError: a .mpy holding native code on a port that cannot load it)
    try:
        from zlib import crc32 as _zcrc32  # CPython (MicroPython's zlib has no crc32)
    except ImportError:
        _zcrc32 = None

    if _zcrc32 is not None:

        def crc32_into(buf, start, end):
            """Write CRC-32 of buf[start:end] little-endian at buf[end:end + 4]."""
            c = _zcrc32(memoryview(buf)[start:end]) & 0xFFFFFFFF
            buf[end] = c & 0xFF
            buf[end + 1] = (c >> 8) & 0xFF
            buf[end + 2] = (c >> 16) & 0xFF
            buf[end + 3] = (c >> 24) & 0xFF

        def crc32_low8(buf, start, end):
            """Low byte of the CRC-32 of buf[start:end] (the frame header check)."""
            return _zcrc32(memoryview(buf)[start:end]) & 0xFF

        def crc32_check(buf, start, end):
            """True when buf[end:end + 4] holds the CRC-32 of buf[start:end]."""
            c = _zcrc32(memoryview(buf)[start:end]) & 0xFFFFFFFF
            return (
                buf[end] == c & 0xFF
                and buf[end + 1] == (c >> 8) & 0xFF
                and buf[end + 2] == (c >> 16) & 0xFF
                and buf[end + 3] == (c >> 24) & 0xFF
            )

    else:
        from array import array

        # the reflected table split into 16-bit halves: every value stays a small int
        _LO = array("H", [0] * 256)
        _HI = array("H", [0] * 256)
        for _n in range(256):
            _lo = _n
            _hi = 0
            for _ in range(8):
                _odd = _lo & 1
                _lo = (_lo >> 1) | ((_hi & 1) << 15)
                _hi >>= 1
                if _odd:
                    _lo ^= 0x8320
                    _hi ^= 0xEDB8
            _LO[_n] = _lo
            _HI[_n] = _hi

        def _crc_halves(buf, start, end, out):
            lo = 0xFFFF
            hi = 0xFFFF
            tlo = _LO
            thi = _HI
            for i in range(start, end):
                k = (lo ^ buf[i]) & 0xFF
                lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tlo[k]
                hi = (hi >> 8) ^ thi[k]
            out[0] = lo ^ 0xFFFF
            out[1] = hi ^ 0xFFFF

        _OUT = array("H", [0, 0])

        def crc32_into(buf, start, end):
            """Write CRC-32 of buf[start:end] little-endian at buf[end:end + 4]."""
            o = _OUT
            _crc_halves(buf, start, end, o)
            buf[end] = o[0] & 0xFF
            buf[end + 1] = o[0] >> 8
            buf[end + 2] = o[1] & 0xFF
            buf[end + 3] = o[1] >> 8

        def crc32_low8(buf, start, end):
            """Low byte of the CRC-32 of buf[start:end] (the frame header check)."""
            o = _OUT
            _crc_halves(buf, start, end, o)
            return o[0] & 0xFF

        def crc32_check(buf, start, end):
            """True when buf[end:end + 4] holds the CRC-32 of buf[start:end]."""
            o = _OUT
            _crc_halves(buf, start, end, o)
            return (
                buf[end] == o[0] & 0xFF
                and buf[end + 1] == o[0] >> 8
                and buf[end + 2] == o[1] & 0xFF
                and buf[end + 3] == o[1] >> 8
            )
