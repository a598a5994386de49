"""Allocation-free byte/integer kernels: viper where the port has the native emitter, plain
Python otherwise (the WebAssembly port; correct and allocation-free on 32-bit ports too).

Values that may exceed 2**30 (femtometres) live as 16-bit halves in array("H") buffers,
little-endian, i.e. the bytes of an i32: a pure-Python kernel never builds a big int from
them. `halves(values)` makes such a buffer, `value_at(h, k)` reads one back (allocates on
32-bit ports when large: not for hot paths).
"""

from array import array


def halves(values):
    """array("H") of the (lo, hi) halves of each i32 in `values`."""
    h = array("H", [0] * (2 * len(values)))
    for k in range(len(values)):
        v = values[k] & 0xFFFFFFFF
        h[2 * k] = v & 0xFFFF
        h[2 * k + 1] = v >> 16
    return h


def value_at(h, k):
    """The signed i32 stored as halves at index k."""
    v = h[2 * k] | (h[2 * k + 1] << 16)
    return v - 0x100000000 if v & 0x80000000 else v


try:
    from firmware._viper import copy_bytes, linear_fm, map_windows, parse_peaks  # noqa: F401
except (ImportError, SyntaxError, ValueError):

    def copy_bytes(dst, doff, src, soff, n):
        """dst[doff:doff + n] = bytes of src from byte soff (src: bytearray or array "H")."""
        if isinstance(src, array):  # halves: two bytes per item, little-endian
            for i in range(n):
                k = soff + i
                h = src[k >> 1]
                dst[doff + i] = (h >> 8) if k & 1 else (h & 0xFF)
            return
        for i in range(n):
            dst[doff + i] = src[soff + i]

    def parse_peaks(line, start, end, out, max_out):
        n = 0
        i = start
        while i < end:
            c = line[i]
            if c == 32 or c == 13 or c == 9:
                i += 1
                continue
            whole = frac = ndig = seen_dot = 0
            scale = 1000000
            while i < end:
                c = line[i]
                if 48 <= c <= 57:
                    if seen_dot:
                        if scale > 1:
                            scale //= 10
                            frac += (c - 48) * scale
                    elif whole < 100000:
                        whole = whole * 10 + (c - 48)
                    ndig += 1
                elif c == 46 and not seen_dot:
                    seen_dot = 1
                else:
                    break
                i += 1
            if ndig == 0 or whole >= 2000 or (i < end and line[i] not in (32, 13, 9)):
                return -1
            if n < max_out:
                # whole * 10**6 + frac as halves: 10**6 = 15 * 65536 + 16960
                lo = whole * 16960 + frac
                out[2 * n] = lo & 0xFFFF
                out[2 * n + 1] = whole * 15 + (lo >> 16)
                n += 1
        return n

    def map_windows(peaks, npk, lo, hi, out, ng):
        status = 0
        for g in range(ng):
            out[2 * g] = 0
            out[2 * g + 1] = 0
            lh = lo[2 * g + 1]
            ll = lo[2 * g]
            hh = hi[2 * g + 1]
            hl = hi[2 * g]
            for k in range(npk):
                ph = peaks[2 * k + 1]
                pl = peaks[2 * k]
                if (ph > lh or (ph == lh and pl >= ll)) and (ph < hh or (ph == hh and pl <= hl)):
                    out[2 * g] = pl
                    out[2 * g + 1] = ph
                    break
            else:
                status |= 1 << g
        return status

    def linear_fm(raws, out, off, whole, frac, den, ng):
        for g in range(ng):
            r = raws[g]
            d = r * whole[g] + (r * frac[g]) // den  # < 2**30: a small int
            lo = off[2 * g] + (d & 0xFFFF)
            out[2 * g] = lo & 0xFFFF
            out[2 * g + 1] = (off[2 * g + 1] + (d >> 16) + (lo >> 16)) & 0xFFFF
