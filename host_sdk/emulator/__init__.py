"""Launch the emulated board: the real firmware on the MicroPython unix port, behind a pty.

    emu = start_emulator("nak50_pulsed", speed=50, seed=1)
    ser = serial.Serial(emu.port)          # any serial client; or serial_for_url(emu.tcp_url)
    ...
    emu.inject(drop_rate=1e-4)             # link faults on the proxy, exact bookkeeping
    emu.set_sensor_fault(loadcell="glitch")
    emu.reset_board(); emu.unplug(2.0)
    emu.stop()

See `launcher.py` for the proxy and `Emulator`'s full API.
"""

from host_sdk.emulator.launcher import (
    RESET_EXIT_CODE,
    Emulator,
    LinkLedger,
    list_scenarios,
    load_scenario,
    run_emulator_cli,
    start_emulator,
    start_emulator_from_url,
)

__all__ = [
    "RESET_EXIT_CODE",
    "Emulator",
    "LinkLedger",
    "list_scenarios",
    "load_scenario",
    "run_emulator_cli",
    "start_emulator",
    "start_emulator_from_url",
]
