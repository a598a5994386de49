# Copied to the board as /main.py (next to board.py, firmware/ and protocol/).
# Ways back to the REPL (see firmware/README.md): Ctrl-C within boot_escape_ms of reset,
# the board's escape pin held at reset, a file /no_app, or CMD_ENTER_REPL at run time.
import time

import board


def _stay_in_repl():
    try:
        import os

        os.stat("/no_app")
        return True
    except OSError:
        pass
    f = getattr(board, "repl_escape_requested", None)
    if f is not None and f():
        return True
    # Ctrl-C still works here: mpremote (which sends Ctrl-C on connect) lands in the REPL
    time.sleep_ms(board.DEFINITION.get("boot_escape_ms", 1000))
    return False


if not _stay_in_repl():
    from firmware.app import run

    run(board)
