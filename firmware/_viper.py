# ruff: noqa: F821  (viper types ptr8/ptr16/ptr32/uint are builtins of the viper emitter)
# MicroPython only: in-place byte/integer kernels whose values never box.
# Femtometre values (1550.1234 nm = 1 550 123 400 fm) exceed the 31-bit small int of 32-bit
# ports, so they are kept as two 16-bit halves in array("H") buffers (little-endian: the
# same bytes as an i32) and only ever combined inside viper code, in the 32-bit machine
# word. Every product below fits 32 bits signed (see the comments): viper multiplies in the
# machine word and a wider product wraps silently on a board.
import micropython


@micropython.viper
def copy_bytes(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    # forward copy: safe for overlapping ranges when doff <= soff
    i = 0
    while i < n:
        dst[doff + i] = src[soff + i]
        i += 1


@micropython.viper
def parse_peaks(line: ptr8, start: int, end: int, out: ptr16, max_out: int) -> int:
    # decimal numbers in nm separated by spaces -> femtometres as (lo, hi) halves; returns
    # the count, -1 on a malformed token. whole < 2**15 nm, so whole * 10**6 + frac < 2**31
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
                    if whole < 100000:
                        whole = whole * 10 + (c - 48)
                ndig += 1
            elif c == 46 and not seen_dot:
                seen_dot = 1
            else:
                break
            i += 1
        if ndig == 0 or whole >= 2000 or (
            i < end and line[i] != 32 and line[i] != 13 and line[i] != 9
        ):
            return -1
        if n < max_out:
            v = whole * 1000000 + frac  # < 2 000 000 000 < 2**31
            out[2 * n] = v & 0xFFFF
            out[2 * n + 1] = (v >> 16) & 0xFFFF
            n += 1
    return n


@micropython.viper
def map_windows(peaks: ptr16, npk: int, lo: ptr16, hi: ptr16, out: ptr16, ng: int) -> int:
    # for each grating g, the first peak inside [lo[g], hi[g]] -> out[g]; missing -> 0 and
    # bit g set in the returned status (all values positive i32 as halves)
    status = 0
    g = 0
    while g < ng:
        wl = int(lo[2 * g]) | (int(lo[2 * g + 1]) << 16)
        wh = int(hi[2 * g]) | (int(hi[2 * g + 1]) << 16)
        out[2 * g] = 0
        out[2 * g + 1] = 0
        found = 0
        k = 0
        while k < npk:
            v = int(peaks[2 * k]) | (int(peaks[2 * k + 1]) << 16)
            if v >= wl and v <= wh:
                out[2 * g] = peaks[2 * k]
                out[2 * g + 1] = peaks[2 * k + 1]
                found = 1
                break
            k += 1
        if not found:
            status |= 1 << g
        g += 1
    return status


@micropython.viper
def linear_fm(raws: ptr32, out: ptr16, off: ptr16, whole: ptr32, frac: ptr32, den: int, ng: int):
    # out[g] = off[g] + raws[g] * (whole[g] + frac[g] / den), rounded down.
    # raws < 2**16, whole < 2**14 (fm per count), frac < den <= 2**8: each product < 2**30,
    # where the single product raws * (whole * den + frac) would reach 2**34 and wrap.
    g = 0
    while g < ng:
        r = raws[g]
        v = (int(off[2 * g]) | (int(off[2 * g + 1]) << 16)) + r * whole[g] + (r * frac[g]) // den
        out[2 * g] = v & 0xFFFF
        out[2 * g + 1] = (v >> 16) & 0xFFFF
        g += 1
