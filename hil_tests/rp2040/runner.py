"""The RP2040 process: the official MicroPython image on rp2040py, the project's firmware on its
filesystem, simulated parts on the board's pins, and the USB CDC on a pty.

    python -m hil_tests.rp2040.runner --image RPI_PICO-v1.28.0.uf2 --fs littlefs.img

Started by `hil_tests/rp2040/harness.py` (one process per board: the emulator holds the GIL
for 5 ms batches, so the SDK and pytest run in another process). Control channel: JSON lines
on stdin, one JSON reply per line on stdout (everything else the emulator prints goes to
stderr). The first line on stdout is `{"event": "ready", "pty": PATH, ...}` once the USB
device has enumerated.

Commands: `{"cmd": "state"}` (device time, CPU cycles, parts), `{"cmd": "log"}` (truth logs:
HX711 conversions and reads, interrogator newlines, source changes, all in emulator ns),
`{"cmd": "set", ...}` (cell/thermistor/interrogator parameters), `{"cmd": "reset"}` (RUN pin),
`{"cmd": "quit"}`.

Workarounds for two rp2040py 0.3.6 defects (the package is used unmodified):
1. USB host model (`usb/cdc.py` `_on_endpoint_read`): with nothing to send, the emulated host
   completes every armed bulk-OUT transfer with an empty packet 10 µs later, so the firmware
   services USB interrupts back to back. A real host NAKs until it has data: here the request
   is held and completed when the pty delivers bytes.
2. UART model (`peripherals/uart.py` `check_interrupts`): sets the TX interrupt flag on every
   call, so the firmware can never clear it and MicroPython (which enables the TX interrupt
   when a UART is created) is stuck in the UART ISR. Here TXRIS is raised the way the PL011
   does it, when the TX FIFO drains through its trigger level (the model's TX FIFO empties at
   once, so: after each byte written to UARTDR) and cleared by UARTICR.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ENDPOINT_ZERO = 0
UARTDR = 0x0
UARTTXINTR = 1 << 5
FS_LAYOUT = {"fs_start": 0xA0000, "fs_blockcount": 352, "fs_blocksize": 4096}
ROOT = Path(__file__).resolve().parents[2]


def board_definition() -> dict[str, Any]:
    """DEFINITION of boards/rp2040_pico/board.py: the pins and front end the parts follow."""
    import importlib.util

    path = ROOT / "boards" / "rp2040_pico" / "board.py"
    spec = importlib.util.spec_from_file_location("rp2040_pico_board", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.DEFINITION)


def _fix_usb_host(cdc: Any, clock: Any) -> dict[str, Any]:
    """Hold bulk-OUT requests until the host has bytes (defect 1). Returns the host side;
    `delivered` logs (emulator ns, bytes) of each bulk-OUT packet the device received."""
    usb = cdc.usb
    cdc_read = usb.on_endpoint_read
    host: dict[str, Any] = {
        "to_device": bytearray(),
        "held": None,
        "out_packets": 0,
        "delivered": deque(maxlen=2000),
    }

    def on_endpoint_read(endpoint: int, size: int) -> None:
        if endpoint != ENDPOINT_ZERO and endpoint == cdc._out_endpoint:
            buf: bytearray = host["to_device"]
            if buf:
                chunk = bytes(buf[:size])
                del buf[:size]
                host["out_packets"] += 1
                host["delivered"].append((clock.nanos, len(chunk)))
                usb.endpoint_read_done(endpoint, chunk)
            else:
                host["held"] = (endpoint, size)  # NAK until there is something to send
            return
        cdc_read(endpoint, size)

    def send(data: bytes) -> None:
        host["to_device"] += data
        held = host["held"]
        if held is not None:
            host["held"] = None
            on_endpoint_read(*held)

    cdc_reset = usb.on_reset

    def on_reset() -> None:  # the device left the bus: what was in flight is gone
        host["held"] = None
        host["to_device"].clear()
        if cdc_reset is not None:
            cdc_reset()

    usb.on_endpoint_read = on_endpoint_read
    usb.on_reset = on_reset
    host["send"] = send
    return host


def _fix_uart_tx_interrupt(uart: Any) -> dict[str, int]:
    """TXRIS only when the TX FIFO drains through its level, cleared by UARTICR (defect 2)."""
    counters = {"tx_bytes": 0}

    def check_interrupts() -> None:
        uart.rp2040.set_interrupt(uart.irq, bool(uart._interrupt_status & uart._interrupt_mask))

    write = uart.write_uint32

    def write_uint32(offset: int, value: int) -> None:
        write(offset, value)
        if offset == UARTDR:
            counters["tx_bytes"] += 1
            uart._interrupt_status |= UARTTXINTR
            check_interrupts()

    uart.check_interrupts = check_interrupts
    uart.write_uint32 = write_uint32
    return counters


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        from rp2040py.boards import BOARDS, FlashLayout
        from rp2040py.device.base_device import BaseDevice
        from rp2040py.device.load_flash import load_micropython_flash_image
        from rp2040py.utils.logging import LogLevel

        from hil_tests.rp2040.parts import Cell, Hx711, Interrogator

        layout = FlashLayout(**FS_LAYOUT)
        spec = dataclasses.replace(
            BOARDS["pico"], image=Path(args.image), layout=layout, firmware=None
        )
        self.device = BaseDevice(board=spec, log_level=LogLevel.ERROR)
        self.mcu = self.device.mcu
        load_micropython_flash_image(args.fs, self.mcu, layout)
        self.host = _fix_usb_host(self.device.cdc, self.mcu.clock)
        self.uart_tx = [_fix_uart_tx_interrupt(u) for u in self.mcu.uart]
        d = board_definition()
        pins, parts = d["pins"], d["parts"]
        self.hx711 = Hx711(
            self.mcu,
            dout=pins["hx711_dout"],
            sck=pins["hx711_sck"],
            rate_pin=pins["hx711_rate"],
            drift=args.hx711_drift,
        )
        windows = parts["fbg"]["windows_fm"]
        self.interrogator = Interrogator(
            self.mcu,
            uart=pins["fbg_uart"],
            rate_hz=args.interrogator_hz,
            peaks_nm=tuple((lo + hi) / 2e6 for lo, hi in windows),
        )
        self.cell = Cell(  # the wiring from board.py; the analog hardware is the Pico board's
            self.mcu,
            pwm_pin=pins["source_pwm"],
            enable_pin=pins["source_enable"],
            adc_voltage=parts["voltage_adc"],
            adc_current=parts["current_adc"],
            adc_thermistor=parts["thermistor"]["adc"],
        )
        self.resets = 0
        self.reset_ns: list[int] = []  # device time of each hard reset (the WDT's included)
        self.bytes_to_host = 0
        self.bytes_from_host = 0
        self.tail = b""  # the last bytes sent to the host (a traceback, a REPL prompt)
        self._out = b""
        self._master = -1
        self._writing = False
        self._quit: asyncio.Future[None] | None = None
        hard_reset = self.device.hard_reset

        def counted_reset(**kw: Any) -> None:
            self.resets += 1
            self.reset_ns.append(int(self.mcu.clock.nanos))
            hard_reset(**kw)

        self.device.hard_reset = counted_reset  # type: ignore[method-assign]
        if args.pwm_pin_alarms_off:
            self._pwm_alarms_off(pins["source_pwm"])

    def _pwm_alarms_off(self, pin: int) -> None:
        """Stop the source PWM slice's per-period alarms (3 Python callbacks per PWM period,
        300 000 per device second at 100 kHz). Registers, duty and the current model are
        unchanged; only the pin waveform, which nothing here observes, stops toggling."""
        ch = self.mcu.pwm.channels[(pin >> 1) & 7]
        for alarm in (ch.alarm_a, ch.alarm_b, ch.alarm_bottom):
            alarm.enable = False

    # ---- pty ------------------------------------------------------------------------------
    def _open_pty(self, loop: asyncio.AbstractEventLoop) -> str:
        import pty
        import tty

        master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        loop.add_reader(master, self._on_pty_readable)
        self.device.cdc.on_serial_data = self._to_host
        return os.ttyname(slave)

    def _on_pty_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return
        if data:
            self.bytes_from_host += len(data)
            self.host["send"](data)

    def _to_host(self, data: bytes | bytearray) -> None:
        self.bytes_to_host += len(data)
        self.tail = (self.tail + bytes(data))[-4096:]
        self._out += bytes(data)
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._out:
                n = os.write(self._master, self._out)
                self._out = self._out[n:]
        except BlockingIOError:
            pass
        except OSError:
            self._out = b""
        if self._out and not self._writing:
            loop.add_writer(self._master, self._flush)
            self._writing = True
        elif not self._out and self._writing:
            loop.remove_writer(self._master)
            self._writing = False

    # ---- control --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "t_ns": self.mcu.clock.nanos,
            "cycles": int(self.mcu.core.cycles),
            "resets": self.resets,
            "bytes_to_host": self.bytes_to_host,
            "bytes_from_host": self.bytes_from_host,
            "out_packets": self.host["out_packets"],
            "uart_tx_bytes": self.uart_tx[0]["tx_bytes"],
            "hx711": self.hx711.state(),
            "interrogator": self.interrogator.state(),
            "cell": self.cell.state(),
        }

    def log(self) -> dict[str, Any]:
        return {
            "hx711_ready": list(self.hx711.ready_ns),
            "hx711_read": list(self.hx711.read_ns),
            "newline": list(self.interrogator.newline_ns),
            "source": list(self.cell.changes),
            "reset_ns": list(self.reset_ns),
            "to_device": list(self.host["delivered"]),
            "tail": self.tail.decode("latin-1"),
        }

    def handle(self, line: str, reply: Any) -> None:
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            out: dict[str, Any] = {"id": msg.get("id"), "ok": True}
            if cmd == "state":
                out["state"] = self.state()
            elif cmd == "log":
                out["log"] = self.log()
            elif cmd == "set":
                for key in ("temp_c", "open_thermistor", "r_ohm"):
                    if key in msg:
                        setattr(self.cell, key, msg[key])
                if "interrogator_hz" in msg:
                    self.interrogator.rate_hz = float(msg["interrogator_hz"])
                if "hx711_drift" in msg:
                    self.hx711.drift = float(msg["hx711_drift"])
                out["state"] = self.state()
            elif cmd == "reset":  # the RUN pin: a chip reset, flash kept, USB re-enumerates
                self.device.hard_reset()
                out["state"] = self.state()
            elif cmd == "quit":
                if self._quit is not None and not self._quit.done():
                    self._quit.set_result(None)
            else:
                out = {"id": msg.get("id"), "ok": False, "error": f"unknown command {cmd!r}"}
        except Exception as e:  # noqa: BLE001 - a bad control line must not stop the board
            out = {"ok": False, "error": repr(e)}
        reply(out)

    async def main(self, ctl_out: Any) -> None:
        loop = asyncio.get_running_loop()
        self._quit = loop.create_future()
        lock = threading.Lock()

        def reply(obj: dict[str, Any]) -> None:
            with lock:
                ctl_out.write(json.dumps(obj) + "\n")
                ctl_out.flush()

        path = self._open_pty(loop)
        t0 = time.monotonic()
        await self.device.astart(timeout=120.0)
        reply(
            {
                "event": "ready",
                "pty": path,
                "t_ns": self.mcu.clock.nanos,
                "wall_s": time.monotonic() - t0,
            }
        )

        def quit_now() -> None:
            if self._quit is not None and not self._quit.done():
                self._quit.set_result(None)

        def read_stdin() -> None:
            for line in sys.stdin:
                if line.strip():
                    loop.call_soon_threadsafe(self.handle, line, reply)
            loop.call_soon_threadsafe(quit_now)  # the harness went away: stop

        threading.Thread(target=read_stdin, daemon=True, name="runner-ctl").start()
        await self._quit
        self.device.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", required=True, help="MicroPython RPI_PICO .uf2")
    ap.add_argument("--fs", required=True, help="littlefs image (352 x 4096 B)")
    ap.add_argument("--interrogator-hz", type=float, default=100.0)
    ap.add_argument("--hx711-drift", type=float, default=0.005, help="crystal error, +: fast")
    ap.add_argument(
        "--pwm-pin-alarms-off",
        action="store_true",
        help="do not simulate the GP15 PWM pin waveform (speed; the duty is still read)",
    )
    args = ap.parse_args(argv)
    # stdout is the control channel: everything else printed goes to stderr
    ctl_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    runner = Runner(args)
    asyncio.run(runner.main(ctl_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
