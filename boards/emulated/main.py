"""Entry point of the emulated board (MicroPython unix port).

    micropython -X heapsize=160k boards/emulated/main.py [SCENARIO [SPEED [SEED]]]

with MICROPYPATH holding boards/emulated and the repository root (host_sdk.emulator sets
this up). Arguments override the STRESSRIG_EMU_* environment (see board.py). The link is
stdin/stdout; a RESET command exits with board.RESET_EXIT_CODE so the launcher restarts
the board, ENTER_REPL drops to the MicroPython REPL on the same stream.
"""

import micropython

micropython.kbd_intr(-1)  # as on a board: before anything else (firmware/main.py)

import gc  # noqa: E402
import sys  # noqa: E402

gc.collect()
_free0 = gc.mem_free()
import board  # noqa: E402  (imports the plant, the scenario and the fake parts)

gc.collect()
board._cfg["plant_live"] = _free0 - gc.mem_free()  # not the board's: see Hal.heap_free

# The loop sleeps at most this long between looks at the link. A real board wakes every 2 ms;
# the emulated board's sleep ends early when host input arrives (the virtual clock waits on
# the link), so a longer maximum costs no command latency and saves idle passes.
EMULATED_MAX_SLEEP_US = 500000

# Garbage collection every 128 KB allocated instead of when the heap is full. The plant's
# float garbage fills the gaps between the live objects, and a function whose frame is too
# big for the C stack (about 11 words) gets it from the heap: the search for a free run of
# blocks then walks past all the garbage made since the last collection. Measured with
# callgrind on the seed001 streams (10 Hz load, 1 Hz elec and temp, constant current): 5.4 M
# instructions per device second with collections only when the heap was full, 4.2 M at
# 64 KB, 3.7 M at 128 KB (a collection marks about 190 KB of live objects: collecting more
# often costs more than it saves). The firmware's own collections are unchanged.
gc.threshold(128 * 1024)

_args = sys.argv[1:]
board.configure(
    scenario=_args[0] if len(_args) > 0 and _args[0] else None,
    speed=float(_args[1]) if len(_args) > 1 else None,
    seed=int(_args[2]) if len(_args) > 2 else None,
)

from firmware.app import App  # noqa: E402

hal = board.make_hal()
app = App(board.DEFINITION, hal)
# the host lease of the virtual clock is 7/8 of the firmware's watchdog timeout
hal.clock.safety = app.safety
if hal.clock.pass_us:  # the cost model prices each pass of the loop as it begins
    _step = app.step
    _pass_begins = hal.clock.pass_begins

    def _priced_step():
        _pass_begins()
        return _step()

    app.step = _priced_step  # App.run calls self.step: the instance's attribute
app.run()
# ENTER_REPL returns here: on the unix port the process then ends (there is no REPL on a
# pipe); a reset exits inside hal.reset() with RESET_EXIT_CODE.
