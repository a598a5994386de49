"""`stressrig emulate` (also `python -m host_sdk.emulator`): run an emulated board until
Ctrl-C. Prints the serial path (and the TCP URL) on stdout, one per line, for scripts, and a
status line on stderr every few seconds."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from host_sdk.emulator.board_process import CPU_MODELS, DEFAULT_HEAP, PLANT_HEAP_BYTES
from host_sdk.emulator.emulator import Emulator, start_emulator
from host_sdk.emulator.options import parse_speed, speed_label
from host_sdk.emulator.scenarios import list_scenarios

EPILOG = """\
examples:
  stressrig emulate --scenario nak50_pulsed --speed 50 --seed 1
  stressrig emulate --speed max --cpu rp2040 --tcp 5555     # as fast as it goes, RP2040 costs
  stressrig emulate --list
then open the printed path like a serial port, e.g.
  stressrig info --port /tmp/stressrig-emu-XXXX/ttyEMU0
The same board from a URL, without this command: --port emu://nak50_pulsed?speed=max&cpu=rp2040

Flow control: when the host reads slower than the board writes, the board waits (its
device clock pauses); nothing is lost while a host has the port open. With no host, the
board's output is discarded, as a USB serial device's is.
"""


def _speed(value: str) -> float:
    try:
        return parse_speed(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stressrig emulate",
        description="Run the emulated board (the real firmware on the MicroPython unix port, "
        "with a simulated cell) behind a pty, and optionally a TCP port.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenario",
        default="nak50_pulsed",
        help="the simulated cell: " + ", ".join(list_scenarios()),
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="N|max",
        help="device seconds per wall second (default 1), or 'max': the board's clock runs as "
        "fast as this computer can run the firmware. It is an upper bound: the status line "
        "shows the speed achieved",
    )
    p.add_argument(
        "--cpu",
        default="ideal",
        choices=CPU_MODELS,
        help="how the firmware's own computing counts in device time: 'ideal' (default; it "
        "takes none) or 'rp2040' (as long as on an RP2040, so loop latency and missed "
        "sampling slots look like a real board's)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the plant's sensor noise and of the link faults: the same seed gives the "
        "same sensor data (default 0)",
    )
    p.add_argument("--tcp", type=int, default=None, metavar="PORT", help="also listen on TCP")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="TCP bind address")
    p.add_argument(
        "--hx711",
        default="pio",
        choices=["pio", "bitbang"],
        help="firmware driver for the load-cell ADC: the RP2040 PIO state machine (default) "
        "or bit-banged GPIO",
    )
    p.add_argument(
        "--heap",
        default=DEFAULT_HEAP,
        help=f"MicroPython heap for the firmware, as on the board (default {DEFAULT_HEAP}); "
        f"the plant gets {PLANT_HEAP_BYTES // 1024}k on top",
    )
    p.add_argument(
        "--status-every",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between status lines on stderr (device time, achieved vs requested "
        "speed, bytes delivered, host connected); 0: none",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return p


def status_line(emu: Emulator) -> str:
    led = emu.ledger
    hosts = "+".join(emu.hosts) or "none (output discarded)"
    return (
        f"emulated board: device time {emu.device_time_s():.1f} s | speed "
        f"{emu.achieved_speed():.3g}x now, {emu.achieved_speed(since_start=True):.3g}x since "
        f"start (requested {speed_label(emu.speed)}) | delivered "
        f"{led.bytes_delivered / 1e6:.2f} MB, {emu.held_bytes / 1024:.0f} KiB held | host: {hosts}"
    )


def run_emulator_cli(args: list[str] | argparse.Namespace | None = None) -> int:
    """`stressrig emulate ...`: start the board, print its device path, run until Ctrl-C."""
    ns = args if isinstance(args, argparse.Namespace) else build_parser().parse_args(args)
    if getattr(ns, "list", False):
        for name in list_scenarios():
            print(name)
        return 0
    emu = start_emulator(
        ns.scenario,
        speed=ns.speed,
        cpu=getattr(ns, "cpu", "ideal"),
        seed=ns.seed,
        tcp_port=ns.tcp,
        tcp_host=getattr(ns, "bind", "127.0.0.1"),
        heap=getattr(ns, "heap", DEFAULT_HEAP),
        hx711=getattr(ns, "hx711", "pio"),
    )
    print(emu.port, flush=True)
    if emu.tcp_url:
        print(emu.tcp_url, flush=True)
    print(
        f"emulated board: scenario {ns.scenario}, speed {speed_label(emu.speed)}, cpu "
        f"{emu.cpu}, seed {ns.seed} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )

    def _term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    every = float(getattr(ns, "status_every", 5.0) or 0.0)
    next_status = time.monotonic() + every
    try:
        while True:
            time.sleep(0.2)
            if every > 0 and time.monotonic() >= next_status:
                next_status += every
                print(status_line(emu), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
