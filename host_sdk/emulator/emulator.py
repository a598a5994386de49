"""`Emulator`: a running emulated board, and the functions that start one.

The parts, in the order a byte from the board travels: board_process (the MicroPython
process) -> proxy (the pump thread) -> ledger (what the board sent) + link_faults (what the
link does to it) -> outbox (held for each host) -> host_ports (pty, TCP). Host bytes go the
other way, into the process's stdin.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from host_sdk.emulator.board_process import (
    DEFAULT_HEAP,
    BoardProcess,
    BoardSettings,
    free_udp_port,
    send_control,
)
from host_sdk.emulator.host_ports import TcpListener
from host_sdk.emulator.ledger import LinkLedger
from host_sdk.emulator.link_faults import LinkFaults
from host_sdk.emulator.options import emulator_options_from_url, parse_cpu, parse_speed
from host_sdk.emulator.proxy import Proxy
from host_sdk.emulator.scenarios import deep_merge, load_scenario, scenario_path


class Emulator:
    """A running emulated board. Use `start_emulator()` to make one."""

    def __init__(
        self,
        scenario: str,
        *,
        speed: float | str = 1.0,
        cpu: str = "ideal",
        seed: int = 0,
        tcp_port: int | None = None,
        tcp_host: str = "127.0.0.1",
        faults: dict[str, Any] | None = None,
        heap: str = DEFAULT_HEAP,
        hx711: str = "pio",
        workdir: str | None = None,
        overrides: dict[str, Any] | None = None,
        hold_at_s: float | None = None,
    ) -> None:
        self.speed: float = parse_speed(speed)  # math.inf for "max"
        self.cpu = parse_cpu(cpu)
        self.seed = int(seed)
        self.heap = heap
        self.hx711 = hx711
        self.scenario_name = scenario
        self.scenario: dict[str, Any] = load_scenario(scenario)
        self._tmp = Path(workdir or tempfile.mkdtemp(prefix="stressrig-emu-"))
        if overrides:
            # a derived scenario file, so the board reads exactly what `.scenario` says
            self.scenario = deep_merge(self.scenario, overrides)
            derived = self._tmp / "scenario.json"
            derived.write_text(json.dumps(self.scenario, indent=1))
            self.scenario_name = str(derived)
        self.port = str(self._tmp / "ttyEMU0")
        self.url = self.port
        self.log_path = str(self._tmp / "board.log")
        self.ctrl_port = free_udp_port()
        self.ledger = LinkLedger()
        self.faults = LinkFaults(self.seed)
        link_faults = dict((self.scenario.get("faults") or {}).get("link") or {})
        link_faults.update({k: v for k, v in (faults or {}).items() if k != "sensors"})
        self.faults.apply(link_faults)
        tcp = TcpListener(tcp_host, tcp_port) if tcp_port is not None else None
        self.tcp_port: int | None = tcp.port if tcp else None
        self.tcp_url: str | None = tcp.url if tcp else None
        settings = BoardSettings(
            scenario_file=str(scenario_path(self.scenario_name)),
            speed=self.speed,
            cpu=self.cpu,
            seed=self.seed,
            ctrl_port=self.ctrl_port,
            hx711=hx711,
            heap=heap,
            hold_at_us=-1 if hold_at_s is None else int(round(hold_at_s * 1e6)),
        )
        self._board = BoardProcess(settings, self.log_path)
        self._proxy = Proxy(self._board, self.ledger, self.faults, self.port, tcp)
        try:
            self._board.start()
        except BaseException:
            self._proxy.stop()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._proxy.start()
        sensors = dict((faults or {}).get("sensors") or {})
        if sensors:
            self.set_sensor_fault(**sensors)

    # ---- faults ----------------------------------------------------------------------------
    def inject(self, **fault: Any) -> None:
        """Link faults: drop_rate/flip_rate/insert_rate (per byte, board -> host),
        to_board_drop_rate, stall_every_s + stall_s (periodic), or stall=SECONDS (one stall
        now: the port stays open but nothing arrives; bytes are held, not lost, and the
        board waits once the proxy holds enough)."""
        with self._proxy.lock:
            self.faults.apply(fault)
        self._proxy.wake()

    def clear_faults(self) -> None:
        with self._proxy.lock:
            self.faults.clear()
        self._proxy.wake()
        self.set_sensor_fault(clear=True)

    def set_sensor_fault(self, **kw: Any) -> None:
        """Sensor faults in the plant, at run time: loadcell="not_ready"|"glitch"|"ok",
        loadcell_glitch_rate=0.01, fbg_lost=[0], fbg_out_of_window=[1], fbg_silent=True,
        thermistor="open"|"short"|"ok", ambient_c=30.0, clear=True (all off)."""
        send_control(self.ctrl_port, kw)

    # ---- the press: known loads on the load cell ------------------------------------------
    def apply_mass(self, kg: float) -> None:
        """Put `kg` of known mass on the load cell (0 removes it): the plant adds m·g to
        the force it reads, from the board's next look at the control channel (within
        20 ms of device time). What `stressrig calibrate load` uses on an emulated board."""
        if not kg >= 0.0:
            raise ValueError(f"mass must be a number of kg >= 0, not {kg!r}")
        send_control(self.ctrl_port, {"applied_mass_kg": float(kg)})

    def open_press(self, is_open: bool = True) -> None:
        """Open the press (True): the stack's force is off the load cell, which then reads
        only the masses put on it, as when a load cell is calibrated out of the press;
        False closes it again (the stack pressure of the scenario comes back)."""
        send_control(self.ctrl_port, {"press_open": bool(is_open)})

    def ramp_force(self, n_per_s: float, t0_s: float, t1_s: float) -> None:
        """The press ramps the load cell's force by `n_per_s` from device time `t0_s` to
        `t1_s`, then holds it (a pressure-rate step at a known time: give t0_s ahead of the
        board's clock, which looks at the control channel every 20 ms of device time)."""
        if not t1_s >= t0_s >= 0:
            raise ValueError(f"ramp from {t0_s!r} s to {t1_s!r} s: need 0 <= t0_s <= t1_s")
        t = [float(n_per_s), int(round(t0_s * 1e6)), int(round(t1_s * 1e6))]
        send_control(self.ctrl_port, {"force_ramp": t})

    # ---- the world's clock ------------------------------------------------------------------
    def hold(self, at_s: float) -> None:
        """Stop the world (the board's device time) when it reaches `at_s` of device time,
        until `release()`: e.g. to start a waveform at the same device time in every run."""
        send_control(self.ctrl_port, {"hold_at_us": int(round(at_s * 1e6))})

    def release(self) -> None:
        """Lift a hold (`hold()`, or `hold_at_s` at start)."""
        send_control(self.ctrl_port, {"release": True})

    # ---- the board and the port ------------------------------------------------------------
    def reset_board(self) -> None:
        """Hard reset: the MicroPython process is killed and started again."""
        with self._proxy.lock:
            self._proxy.reset_board()

    def unplug(self, seconds: float) -> None:
        """The port disappears (the pty is closed, the symlink removed, a TCP client
        disconnected) for `seconds`, then a new pty appears at the same path. The board
        keeps running; what it sends meanwhile is lost (and in the ledger)."""
        with self._proxy.lock:
            self._proxy.unplug(seconds)

    @property
    def plugged(self) -> bool:
        return self._proxy.pty is not None

    @property
    def pty_name(self) -> str | None:
        pty = self._proxy.pty
        return pty.slave_name if pty is not None else None

    @property
    def hosts(self) -> list[str]:
        """The host ports someone has open now ("pty", "tcp"); empty: board output is
        discarded (and counted lost), as a USB device's is with no host."""
        with self._proxy.lock:
            return self._proxy.hosts()

    @property
    def held_bytes(self) -> int:
        """Board bytes the proxy holds for the slowest connected host (flow control reads no
        more from the board past proxy.BACKLOG_LIMIT)."""
        with self._proxy.lock:
            return self._proxy.outbox.backlog()

    @property
    def restarts(self) -> int:
        return self._proxy.restarts

    @property
    def exit_codes(self) -> list[int]:
        return self._proxy.exit_codes

    # ---- device time -----------------------------------------------------------------------
    def device_time_s(self) -> float:
        """The board's device time since its last boot, from its own frames."""
        return self.ledger.device_time_s

    def achieved_speed(self, since_start: bool = False) -> float:
        """Device seconds per wall second over the last few wall seconds (or since the board
        first wrote); at most `speed`, less when the computer or a slow host holds it back.
        0.0 until there is something to measure."""
        with self._proxy.lock:
            meter = self._proxy.meter
            return meter.since_start() if since_start else meter.recent()

    # ---- life ------------------------------------------------------------------------------
    def wait_ready(self, timeout: float = 15.0) -> bool:
        """Wait until the board has written its first bytes (booted)."""
        return self._proxy.first_output.wait(timeout)

    def stop(self) -> None:
        self._proxy.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    scenario: str,
    *,
    speed: float | str = 1.0,
    cpu: str = "ideal",
    seed: int = 0,
    tcp_port: int | None = None,
    tcp_host: str = "127.0.0.1",
    faults: dict[str, Any] | None = None,
    heap: str = DEFAULT_HEAP,
    hx711: str = "pio",
    wait: bool = True,
    overrides: dict[str, Any] | None = None,
    hold_at_s: float | None = None,
) -> Emulator:
    """Start an emulated board; returns once it has booted (unless wait=False).

    `speed`: device seconds per wall second, or "max" (as fast as this computer runs it).
    `cpu`: "ideal" (the board's own work takes no device time) or "rp2040" (charged as an
    RP2040 would take). `overrides` are deep-merged into the scenario (e.g. lower
    acquisition rates of parts that convert whether or not their stream is sent:
    {"fbg": {"rate_hz": 1}}). `hold_at_s`: the first boot's device time stops there until
    `Emulator.release()`."""
    emu = Emulator(
        scenario,
        speed=speed,
        cpu=cpu,
        seed=seed,
        tcp_port=tcp_port,
        tcp_host=tcp_host,
        faults=faults,
        heap=heap,
        hx711=hx711,
        overrides=overrides,
        hold_at_s=hold_at_s,
    )
    if wait and not emu.wait_ready(20.0):
        log = Path(emu.log_path).read_text(errors="replace") if Path(emu.log_path).exists() else ""
        emu.stop()
        raise RuntimeError("emulated board did not boot:\n" + log[-2000:])
    return emu


def start_emulator_from_url(url: str) -> Emulator:
    """`emu://SCENARIO?speed=50&seed=1&hx711=bitbang&drop_rate=1e-4` -> a running Emulator
    (for transports that accept an emu:// URL). Parameters: speed (> 0 or max), cpu (ideal,
    rp2040), seed, tcp (port; 0: any free), hx711 (pio, bitbang), heap, load_sps, fbg_hz,
    drop_rate, flip_rate, insert_rate, to_board_drop_rate, stall_every_s, stall_s; anything
    else is a ValueError."""
    name, options = emulator_options_from_url(url)
    return start_emulator(name, **options)
