# ruff: noqa: F821  (viper types ptr8/ptr32/uint are builtins of the viper emitter)
# MicroPython only: in-place byte helpers whose integers never box (values like
# 1550.1234 nm = 1 550 123 400 fm exceed the 31-bit small int of 32-bit ports).
import micropython


@micropython.viper
def copy_bytes(dst: ptr8, doff: int, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[doff + i] = src[i]
        i += 1


@micropython.viper
def parse_peaks(line: ptr8, start: int, end: int, out: ptr32, max_out: int) -> int:
    # decimal numbers in nm separated by spaces -> femtometres (i32); returns the count,
    # -1 on a malformed token
    n = 0
    i = start
    while i < end:
        c = line[i]
        if c == 32 or c == 13 or c == 9:
            i += 1
            continue
        whole = 0
        frac = 0
        scale = 1000000
        ndig = 0
        seen_dot = 0
        while i < end:
            c = line[i]
            if c >= 48 and c <= 57:
                if seen_dot:
                    if scale > 1:
                        scale = scale // 10
                        frac += (c - 48) * scale
                else:
                    whole = whole * 10 + (c - 48)
                ndig += 1
            elif c == 46 and not seen_dot:
                seen_dot = 1
            else:
                break
            i += 1
        if ndig == 0 or (i < end and line[i] != 32 and line[i] != 13 and line[i] != 9):
            return -1
        if n < max_out:
            out[n] = whole * 1000000 + frac
            n += 1
    return n


@micropython.viper
def map_windows(peaks: ptr32, npk: int, lo: ptr32, hi: ptr32, out: ptr32, ng: int) -> int:
    # for each grating g, the first peak inside [lo[g], hi[g]] -> out[g]; missing -> 0 and
    # bit g set in the returned status
    status = 0
    g = 0
    while g < ng:
        out[g] = 0
        found = 0
        k = 0
        while k < npk:
            v = peaks[k]
            if v >= lo[g] and v <= hi[g]:
                out[g] = v
                found = 1
                break
            k += 1
        if not found:
            status |= 1 << g
        g += 1
    return status


@micropython.viper
def linear_fm(raws: ptr32, out: ptr32, off: ptr32, slope_num: ptr32, slope_den: int, ng: int):
    # out[g] = off[g] + raws[g] * slope_num[g] // slope_den, all machine-word integers
    g = 0
    while g < ng:
        out[g] = off[g] + (raws[g] * slope_num[g]) // slope_den
        g += 1
