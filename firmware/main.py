# Copied to the board as /main.py (next to board.py, firmware/ and protocol/).
# Ctrl-C is switched off before anything else runs: the host's binary frames contain 0x03
# bytes (7 % of GET_INFO frames), and one arriving while the board boots would raise
# KeyboardInterrupt here and leave the board at the REPL, never sending a HELLO.
# Ways back to the REPL (firmware/README.md): CMD_ENTER_REPL at run time; "repl" + Enter
# typed within boot_escape_ms of reset; the board's escape pin held at reset; a file
# /no_app (permanent) or /repl_once (next boot only, written by ENTER_REPL).
import micropython

micropython.kbd_intr(-1)

import board  # noqa: E402


def _flag(path, remove=False):
    import os

    try:
        os.stat(path)
    except OSError:
        return False
    if remove:
        os.remove(path)
    return True


def _escape_typed(ms):
    """True when "repl" + Enter arrives on the console within `ms` (no Ctrl-C needed;
    no protocol frame contains that text)."""
    import select
    import sys
    import time

    p = select.poll()
    p.register(sys.stdin, select.POLLIN)
    want = b"repl"
    got = 0
    t0 = time.ticks_ms()
    one = bytearray(1)
    while time.ticks_diff(time.ticks_ms(), t0) < ms:
        if not p.poll(10):
            continue
        if not sys.stdin.buffer.readinto(one):
            continue
        c = one[0]
        if got == len(want) and c in (10, 13):
            return True
        got = got + 1 if got < len(want) and c == want[got] else (1 if c == want[0] else 0)
    return False


def _stay_in_repl():
    if _flag("/repl_once", True) or _flag("/no_app"):
        return True
    f = getattr(board, "repl_escape_requested", None)
    if f is not None and f():
        return True
    return _escape_typed(board.DEFINITION.get("boot_escape_ms", 1000))


if _stay_in_repl():
    micropython.kbd_intr(3)
else:
    from firmware.app import run

    run(board)  # switches the output off on every way out, exceptions included
