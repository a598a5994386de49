"""Launch the emulated board: the real firmware on the MicroPython unix port, behind a pty.

    emu = start_emulator("nak50_pulsed", speed=50, seed=1)   # or speed="max", cpu="rp2040"
    ser = serial.Serial(emu.port)          # any serial client; or serial_for_url(emu.tcp_url)
    ...
    emu.inject(drop_rate=1e-4)             # link faults on the proxy, exact bookkeeping
    emu.set_sensor_fault(loadcell="glitch")
    emu.reset_board(); emu.unplug(2.0)
    emu.open_press(True); emu.apply_mass(2.0)  # known loads on the load cell (calibration)
    emu.device_time_s(), emu.achieved_speed()
    emu.stop()

How a byte travels, one module each: board_process (the MicroPython process) -> proxy (the
pump thread) -> ledger (what the board sent, what was lost) + link_faults (the damage) ->
outbox (held per host, flow control) -> host_ports (pty, TCP). `emulator` has the public
`Emulator`, `cli` the `stressrig emulate` command, `scenarios` the plant's scenario files.
"""

from host_sdk.emulator.board_process import RESET_EXIT_CODE
from host_sdk.emulator.cli import run_emulator_cli
from host_sdk.emulator.emulator import Emulator, start_emulator, start_emulator_from_url
from host_sdk.emulator.ledger import LinkLedger
from host_sdk.emulator.options import emulator_options_from_url, parse_speed
from host_sdk.emulator.scenarios import list_scenarios, load_scenario

__all__ = [
    "RESET_EXIT_CODE",
    "Emulator",
    "LinkLedger",
    "emulator_options_from_url",
    "list_scenarios",
    "load_scenario",
    "parse_speed",
    "run_emulator_cli",
    "start_emulator",
    "start_emulator_from_url",
]
