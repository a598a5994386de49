"""Entry point of the emulated board (MicroPython unix port).

    micropython -X heapsize=160k boards/emulated/main.py [SCENARIO [SPEED [SEED]]]

with MICROPYPATH holding boards/emulated and the repository root (host_sdk.emulator sets
this up). Arguments override the STRESSRIG_EMU_* environment (see board.py). The link is
stdin/stdout; a RESET command exits with board.RESET_EXIT_CODE so the launcher restarts
the board, ENTER_REPL drops to the MicroPython REPL on the same stream.
"""

import gc
import sys

gc.collect()
_free0 = gc.mem_free()
import board  # noqa: E402  (imports the plant, the scenario and the fake parts)

gc.collect()
board._cfg["plant_live"] = _free0 - gc.mem_free()  # not the board's: see Hal.heap_free

_args = sys.argv[1:]
board.configure(
    scenario=_args[0] if len(_args) > 0 and _args[0] else None,
    speed=float(_args[1]) if len(_args) > 1 else None,
    seed=int(_args[2]) if len(_args) > 2 else None,
)

from firmware.app import run  # noqa: E402

# The loop sleeps at most this long (device time) between looks at the link. A real
# board uses 2 ms; at `speed` x that would be 2/speed ms of wall time, and the VM would spend
# its time in idle loop iterations instead of the work, so keep ~0.2 ms of wall time.
_speed = board._cfg["speed"]
app = run(board, max_sleep_us=max(2000, int(200 * _speed)))
# ENTER_REPL returns here: on the unix port the process then ends (there is no REPL on a
# pipe); a reset exits inside hal.reset() with RESET_EXIT_CODE.
