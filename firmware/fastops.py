"""Allocation-free byte/integer helpers: viper where the port has the native emitter,
plain Python otherwise (correct everywhere; may box large ints on 32-bit ports)."""

try:
    from firmware._viper import copy_bytes, linear_fm, map_windows, parse_peaks  # noqa: F401
except (ImportError, SyntaxError, ValueError):

    def copy_bytes(dst, doff, src, n):
        mv = memoryview(src)
        if getattr(src, "itemsize", 1) != 1:  # array: copy its raw little-endian bytes
            import struct

            for k in range(n // 4):
                struct.pack_into("<i", dst, doff + 4 * k, src[k])
            return
        for i in range(n):
            dst[doff + i] = mv[i]

    def parse_peaks(line, start, end, out, max_out):
        n = 0
        i = start
        while i < end:
            c = line[i]
            if c in (32, 13, 9):
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
                    else:
                        whole = whole * 10 + (c - 48)
                    ndig += 1
                elif c == 46 and not seen_dot:
                    seen_dot = 1
                else:
                    break
                i += 1
            if ndig == 0 or (i < end and line[i] not in (32, 13, 9)):
                return -1
            if n < max_out:
                out[n] = whole * 1000000 + frac
                n += 1
        return n

    def map_windows(peaks, npk, lo, hi, out, ng):
        status = 0
        for g in range(ng):
            out[g] = 0
            for k in range(npk):
                if lo[g] <= peaks[k] <= hi[g]:
                    out[g] = peaks[k]
                    break
            else:
                status |= 1 << g
        return status

    def linear_fm(raws, out, off, slope_num, slope_den, ng):
        for g in range(ng):
            out[g] = off[g] + (raws[g] * slope_num[g]) // slope_den
