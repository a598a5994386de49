"""CRC-32 (IEEE 802.3, the one of zlib and binascii) over a range of a buffer.

On the board the CRC must cost no heap: slicing a memoryview allocates, and on 32-bit
ports `binascii.crc32` returns a boxed int for three values in four. So MicroPython uses a
viper routine that reads the range in place and writes the CRC straight into the buffer.
CPython uses zlib.
"""

try:
    from protocol._crc_viper import crc32_check, crc32_into  # noqa: F401
except (ImportError, SyntaxError):  # CPython, or a port built without the native emitter
    try:
        import zlib

        _crc32 = zlib.crc32
    except ImportError:
        import binascii

        _crc32 = binascii.crc32

    def crc32_into(buf, start, end):
        """Write CRC-32 of buf[start:end] little-endian at buf[end:end + 4]."""
        c = _crc32(memoryview(buf)[start:end]) & 0xFFFFFFFF
        buf[end] = c & 0xFF
        buf[end + 1] = (c >> 8) & 0xFF
        buf[end + 2] = (c >> 16) & 0xFF
        buf[end + 3] = (c >> 24) & 0xFF

    def crc32_check(buf, start, end):
        """True when buf[end:end + 4] holds the CRC-32 of buf[start:end]."""
        c = _crc32(memoryview(buf)[start:end]) & 0xFFFFFFFF
        return (
            buf[end] == c & 0xFF
            and buf[end + 1] == (c >> 8) & 0xFF
            and buf[end + 2] == (c >> 16) & 0xFF
            and buf[end + 3] == (c >> 24) & 0xFF
        )
