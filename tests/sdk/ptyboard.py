"""Run a FakeBoard behind a pty in its own process: `python -m tests.sdk.ptyboard` prints
the pty path, then serves until killed. Used by bench/bench_sdk.py to stream an exact
sample rate to a client without counting the board's CPU time in the client's process."""

from __future__ import annotations

import os
import select
import sys
import time
import tty

from tests.sdk.fakeboard import FakeBoard


def serve() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    print(os.ttyname(slave), flush=True)
    board = FakeBoard(unique_id="ptyboard")
    while True:
        r, _, _ = select.select([master], [], [], 0.002)
        if r:
            board.receive(os.read(master, 65536))
        board.tick()
        with board.lock:
            data = bytes(board.out)
            board.out.clear()
        view = memoryview(data)
        while view:
            n = os.write(master, view)
            view = view[n:]
        time.sleep(0.001)


if __name__ == "__main__":
    try:
        serve()
    except KeyboardInterrupt:
        sys.exit(0)
