"""The emulated board: the real firmware drivers on fake machine objects backed by the plant.

Configuration (read at import from the environment, or set with `configure()` before
`make_hal()`):
    STRESSRIG_EMU_SCENARIO   scenario name (boards/emulated/scenarios/NAME.json) or a path
    STRESSRIG_EMU_SPEED      most device seconds per wall second (float, default 1; 0: as
                             fast as the host CPU allows). See clock.py: device time is
                             virtual and only ever held back by the wall clock
    STRESSRIG_EMU_CPU        cost model of the board's CPU: "ideal" (default) or "rp2040"
    STRESSRIG_EMU_HOLD_AT_US device time at which the world holds until released (-1: none)
    STRESSRIG_EMU_SEED       PRNG seed (int, default 0)
    STRESSRIG_EMU_CTRL_PORT  UDP port on 127.0.0.1 for run-time sensor faults (0: none)
    STRESSRIG_EMU_HX711      "pio" (rp2-style state machine, default) or "bitbang"
    STRESSRIG_EMU_DIR        this folder (when the modules are loaded precompiled elsewhere)
    STRESSRIG_EMU_PLANT_HEAP bytes of the process heap set aside for the plant and the fake
                             parts (launcher: -X heapsize = board heap + this); heap_free()
                             reports the board's share only
    STRESSRIG_EMU_STDIN_NONBLOCKING "1": stdin does not block (the launcher's pipe), so it is
                             read in one call instead of a byte per poll

The link is the MicroPython process's stdin/stdout (usb_cdc.py; the launcher puts a pty in
front).
`reset()` exits the process with RESET_EXIT_CODE; the launcher restarts it.

DEFINITION is derived from the scenario: the source range, the load-cell nominal span and
the thermistor's nominal constants are the board's calibration defaults; the scenario's
true values (the hidden truth) differ from them by what a real part's tolerance would.
"""

import gc
import json
import os
import sys

import micropython

import hw
import parts as pins_and_adcs
import press as press_model
from clock import VirtualClock, wall_us
from costs import cost_model
from hx711_chip import HX711Chip, StateMachine
from interrogator import InterrogatorUART
from usb_cdc import HostWaiter, UsbCdc

RESET_EXIT_CODE = 75
HERE = os.getenv("STRESSRIG_EMU_DIR") or (__file__.rsplit("/", 1)[0] if "/" in __file__ else ".")

_cfg = {"scenario": None, "speed": 1.0, "seed": 0, "ctrl_port": 0, "hx711": "pio",
        "cpu": "ideal", "hold_at_us": -1, "plant_heap": 0, "plant_live": 0}
SCENARIO = None
DEFINITION = None


def scenario_path(name):
    if "/" in name or name.endswith(".json"):
        return name
    return HERE + "/scenarios/" + name + ".json"


def load_scenario(name):
    with open(scenario_path(name)) as f:
        return json.load(f)


def _pm_per_ue(fb):
    """pm of Bragg shift per microstrain of the first sensing grating (0: none)."""
    for g in fb.get("gratings", []):
        if g.get("role", "sensing") == "sensing":
            return float(g["lambda0_nm"]) * (1.0 - float(fb.get("p_e", 0.22))) * 1e-3
    return 0.0


def _definition(sc):
    src = sc.get("source") or {}
    i_max = float(src.get("max_current_a", 0.01))
    v_half = float(src.get("voltage_range_v", 5.0))
    lc = sc.get("loadcell") or {}
    th = sc.get("thermistor") or {}
    fb = sc.get("fbg") or {}
    gratings = fb.get("gratings", [])
    win_nm = float(fb.get("window_nm", 2.5))
    span_nom = float(lc.get("nominal_n_per_count", lc.get("span_n_per_count", 1e-3)))
    tare_nom = float(lc.get("nominal_tare_counts", 0.0))
    lim = sc.get("limits") or {}
    rates = sc.get("streams") or {}
    # over-force must be reachable: at most 95 % of the 24-bit full scale of the nominal span
    f_max = min(float(lim.get("max_force_n", 5000.0)), 0.95 * 0x7FFFFF * abs(span_nom))
    cpu = cost_model(_cfg["cpu"])
    # the CPU budget that config_stream enforces (0: no limit, the ideal board): a record
    # costs its ADC/FIFO reads plus a loop pass, each stream sample its own wake-up
    record_us = cpu.adc_read_us * 2 if cpu.adc_read_us else 0
    wake_us = cpu.pass_us

    def stream(name, rate, on=True):
        r = rates.get(name) or {}
        hz = float(r.get("rate_hz", rate)) or 1.0  # a stream that is not fitted keeps 1 Hz
        return {"rate_hz": hz, "enabled": bool(r.get("enabled", on))}

    d = {
        "board_id": "emulated",
        "firmware_target": "unix",
        "scenario": sc.get("name", "?"),
        "parts": {
            "loadcell": {"type": "hx711", "gain": 128, "rate_sps": int(lc.get("rate_sps", 80))},
            "fbg": {
                "mode": "uart",
                "n_gratings": len(gratings),
                "windows_fm": [
                    [
                        int(round((float(g["lambda0_nm"]) - win_nm) * 1e6)),
                        int(round((float(g["lambda0_nm"]) + win_nm) * 1e6)),
                    ]
                    for g in gratings
                ],
                "rate_hz": float(fb.get("rate_hz", 100.0)),
            },
            "source": {"setpoint": "pwm", "bipolar": True, "zero_code": 32768},
            "adc_voltage": {"bits": 16},
            "adc_current": {"bits": 16},
            "thermistor": {"type": "ntc", "divider": "ntc_low"},
        },
        "pins": {"hx711_dout": 2, "hx711_sck": 3, "uart_rx": 5, "uart_tx": 4, "source_pwm": 15,
                 "source_enable": 14, "adc_voltage": 26, "adc_current": 27, "adc_therm": 28},
        "limits": {
            "max_current_a": float(lim.get("max_current_a", i_max * 0.95)),
            "compliance_v": float(lim.get("compliance_v", v_half * 0.9)),
            "min_voltage_v": float(lim.get("min_voltage_v", -v_half * 0.9)),
            "max_temp_c": float(lim.get("max_temp_c", 60.0)),
            "max_force_n": f_max,
            "min_watchdog_ms": 100,
            "max_watchdog_ms": 600000,
            "default_watchdog_ms": 5000,
            "min_area_m2": 1e-6,
            "max_area_m2": 0.05,
            "max_duration_s": 1e7,
            "min_pulse_s": 0.001,
            "max_charge_c": 1e5,
            "min_rate_hz": 0.1,
            "max_rate_load_hz": 80.0,
            "max_rate_fbg_hz": float(fb.get("rate_hz", 100.0)),
            "max_rate_elec_hz": 5000.0,
            "max_rate_temp_hz": 100.0,
            "record_cost_us": record_us,
            "wake_cost_us": wake_us,
            # a scenario may lift the budget ("limits": {"max_cpu_fraction": 0}) to show what
            # an overloaded board does
            "max_cpu_fraction": float(
                lim.get("max_cpu_fraction", 0.6 if (record_us or wake_us) else 0.0)
            ),
        },
        "calibration": {
            "load_n_per_count": span_nom,
            "load_offset_n": -tare_nom * span_nom,
            "volts_per_count": 2.0 * v_half / 65536.0,
            "volts_offset_v": -v_half,
            "amps_per_count": i_max / 32768.0,
            "amps_offset_a": -i_max,
            "amps_per_lsb": i_max / 32768.0,
            "source_amps_per_lsb": i_max / 32768.0,
            "thermistor_beta": float(th.get("nominal_beta", th.get("beta", 3950.0))),
            "thermistor_r0_ohm": float(th.get("nominal_r0_ohm", th.get("r0_ohm", 10000.0))),
            "thermistor_t0_c": float(th.get("t0_c", 25.0)),
            "thermistor_r_series_ohm": float(th.get("r_series_ohm", 10000.0)),
            # the strain sensitivity of the first sensing grating (lambda0 (1 - p_e)), for
            # the strain-rate loops when the host gives none (issue 14)
            "fbg_pm_per_ue": _pm_per_ue(fb),
        },
        "streams": {
            "load": stream("load", float(lc.get("rate_sps", 80))),
            "fbg": stream("fbg", float(fb.get("rate_hz", 100.0)), bool(gratings)),
            "elec": stream("elec", 100.0),
            "temp": stream("temp", 1.0),
        },
        "stream_at_boot": False,
        "max_latency_us": _frame_latency_us(_cfg["speed"]),
    }
    _press(d, sc)
    return d


def _press(d, sc):
    """The optional press actuator (scenario "press": {"actuator": ...}; press.py): a
    stepper on step/dir/enable pins through the PIO program, and the hold loop's limits."""
    pc = sc.get("press") or {}
    act = pc.get("actuator")
    if not act:
        return
    hl = pc.get("hold_limits") or {}
    upm = float(act["um_per_step"])
    lo_um, hi_um = act.get("travel_um", [-2000.0, 2000.0])
    d["parts"]["press"] = {"type": "stepper", "driver": "pio", "sm_freq_hz": 1000000}
    d["pins"].update({"press_step": 10, "press_dir": 11, "press_enable": 12})
    d["limits"].update({
        "press_um_per_step": upm,
        "press_max_rate_sps": float(act.get("max_rate_sps", 2000.0)),
        "press_min_steps": int(lo_um / upm),
        "press_max_steps": int(hi_um / upm),
        "press_max_setpoint_mpa": float(hl.get("max_setpoint_mpa", 30.0)),
        "press_max_error_mpa": float(hl.get("max_error_mpa", 1.0)),
        "press_max_travel_um": float(hl.get("max_travel_um", 500.0)),
        "press_max_kp_um_per_mpa": float(hl.get("max_kp_um_per_mpa", 1000.0)),
        "press_max_ki_um_per_mpa_s": float(hl.get("max_ki_um_per_mpa_s", 1000.0)),
        "press_default_kp_um_per_mpa": float(hl.get("default_kp_um_per_mpa", 10.0)),
        "press_default_ki_um_per_mpa_s": float(hl.get("default_ki_um_per_mpa_s", 50.0)),
        "press_runaway_s": float(hl.get("runaway_s", 2.0)),
        "press_max_runaway_s": float(hl.get("max_runaway_s", 300.0)),
    })


# A sample frame goes out when it is full or when its first record is this old (firmware
# default: 200 ms). That latency is for whoever watches in wall time, so the emulated board
# scales it with its speed, up to 10 s of device time (at speed max: 10 s): at a few
# thousand device seconds per wall second, frames of 2 load records sealed every 200 ms of
# device time were most of the host's and the launcher's work, for a latency of 0.1 ms of
# wall time. The samples are the same; only their grouping into frames changes. STATUS
# still comes every second of device time, so the host sees the device clock advance as
# often. A 20 000 s rest of seed 001's streams (load 10, elec 1, temp 1 Hz): 15.1 s of wall
# time and 18.0 s of CPU with a 2 s cap, 11.4 s and 15.2 s with 10 s.
_LATENCY_US = 200000
_LATENCY_MAX_US = 10000000


def _frame_latency_us(speed):
    if speed <= 0:  # max
        return _LATENCY_MAX_US
    us = int(_LATENCY_US * speed) if speed > 1 else _LATENCY_US
    return us if us < _LATENCY_MAX_US else _LATENCY_MAX_US


def configure(scenario=None, speed=None, seed=None, ctrl_port=None, hx711=None, cpu=None,
              hold_at_us=None):
    """Choose the scenario and run parameters; rebuilds SCENARIO and DEFINITION."""
    if cpu is not None:
        cost_model(cpu)  # refuse an unknown model here, before anything runs
        _cfg["cpu"] = cpu
    if hold_at_us is not None:
        _cfg["hold_at_us"] = int(hold_at_us)
    global SCENARIO, DEFINITION
    if scenario is not None:
        _cfg["scenario"] = scenario
    if speed is not None:
        _cfg["speed"] = float(speed)
    if seed is not None:
        _cfg["seed"] = int(seed)
    if ctrl_port is not None:
        _cfg["ctrl_port"] = int(ctrl_port)
    if hx711 is not None:
        _cfg["hx711"] = hx711
    sc = _cfg["scenario"]
    SCENARIO = sc if isinstance(sc, dict) else load_scenario(sc or "nak50_pulsed")
    DEFINITION = _definition(SCENARIO)
    return DEFINITION


def _env(name, default):
    v = os.getenv(name)
    return default if v is None or v == "" else v


configure(
    _env("STRESSRIG_EMU_SCENARIO", "nak50_pulsed"),
    float(_env("STRESSRIG_EMU_SPEED", "1")),
    int(_env("STRESSRIG_EMU_SEED", "0")),
    int(_env("STRESSRIG_EMU_CTRL_PORT", "0")),
    _env("STRESSRIG_EMU_HX711", "pio"),
    _env("STRESSRIG_EMU_CPU", "ideal"),
    int(_env("STRESSRIG_EMU_HOLD_AT_US", "-1")),
)
_cfg["plant_heap"] = int(_env("STRESSRIG_EMU_PLANT_HEAP", "0"))


class Hal:
    """The HAL object of boards/README.md."""

    def __init__(self, hardware, link):
        self.hw = hardware
        self.clock = hardware.clock
        self.link = link
        self.loadcell = None
        self.fbg = None
        self.source = None
        self.thermistor = None
        self.press = None  # the press actuator's stepper, when the scenario has one
        self._uid = b""
        self._heap_at = None
        self._heap_wall = 0
        self._heap_free = 0

    def unique_id(self):
        return self._uid

    def heap_free(self):
        # the plant and the fake parts share the process heap but are not on the board:
        # report what a BOARD_HEAP-sized board would have left. The plant's float garbage
        # fills the heap between collections, so measure after a collection, at most once
        # every 10 s of device time and once a second of wall time (at speed max, one every
        # 10 device seconds made STATUS 9 % of the loop's time on the seed001 streams, nearly
        # all of it this collection). The collection costs no device time: a real board has
        # no emulator garbage to collect.
        now = self.clock.t
        wall = wall_us()
        if self._heap_at is None or (
            now - self._heap_at >= 10000000 and wall - self._heap_wall >= 1000000
        ):
            self._heap_at = now
            self._heap_wall = wall
            gc.collect()
            f = gc.mem_free() - (_cfg["plant_heap"] - _cfg["plant_live"])
            self._heap_free = f if f > 0 else 0
        return self._heap_free

    def enter_repl(self):
        micropython.kbd_intr(3)

    def reset(self):
        self.source.off()
        sys.exit(RESET_EXIT_CODE)


def make_hal(link=None):
    """Build the drivers on the fake hardware; `link` defaults to stdin/stdout."""
    from firmware.drivers.current_source import CurrentSource
    from firmware.drivers.fbg_uart import FbgUart
    from firmware.drivers.hx711 import HX711
    from firmware.drivers.thermistor import Thermistor

    sc = SCENARIO
    d = DEFINITION
    parts = d["parts"]
    cal = d["calibration"]
    gc.collect()
    free0 = gc.mem_free()
    cost = cost_model(_cfg["cpu"])
    clock = VirtualClock(_cfg["speed"], cost, _cfg["hold_at_us"])
    hwo = hw.Hardware(sc, clock, cost, _cfg["seed"], _cfg["ctrl_port"])
    gc.collect()
    _cfg["plant_live"] += free0 - gc.mem_free()
    if link is None:
        link = UsbCdc(clock, cost)
        clock.io = HostWaiter(hwo.control)
    hal = Hal(hwo, link)
    # load cell: HX711 through the PIO state machine or bit-banged pins
    chip = HX711Chip(hwo, parts["loadcell"]["rate_sps"])
    hwo.hx711 = chip
    if _cfg["hx711"] == "bitbang":
        dout, sck = chip.pins(d["pins"]["hx711_dout"], d["pins"]["hx711_sck"])
        hal.loadcell = HX711(pin_dout=dout, pin_sck=sck, gain=128,
                             rate_sps=parts["loadcell"]["rate_sps"], clock=hwo.clock)
    else:
        sm = StateMachine(chip)
        sm.active(1)
        hal.loadcell = HX711(sm=sm, gain=128, rate_sps=parts["loadcell"]["rate_sps"],
                             clock=hwo.clock)
    # FBG interrogator on a UART
    fb = parts["fbg"]
    if fb["n_gratings"]:
        uart = InterrogatorUART(hwo, fb["rate_hz"])
        hwo.uart = uart
        hal.fbg = FbgUart(uart, [tuple(w) for w in fb["windows_fm"]])
    # current source: bipolar PWM setpoint, enable pin, voltage and current ADCs
    hal.source = CurrentSource(
        pins_and_adcs.PWM(hwo),
        pins_and_adcs.EnablePin(hwo, d["pins"]["source_enable"]),
        pins_and_adcs.ADC(hwo, hwo.read_voltage_u16),
        pins_and_adcs.ADC(hwo, hwo.read_current_u16),
        cal["amps_per_lsb"],
        zero_code=32768,
        code_max=65535,
        mode="pwm",
    )
    hal.thermistor = Thermistor(
        pins_and_adcs.ADC(hwo, hwo.read_thermistor_u16),
        beta=cal["thermistor_beta"],
        r0_ohm=cal["thermistor_r0_ohm"],
        t0_c=cal["thermistor_t0_c"],
        r_series_ohm=cal["thermistor_r_series_ohm"],
    )
    pp = parts.get("press")
    if pp and hwo.plant.press is not None:
        from firmware.drivers.stepper import Stepper

        pins = d["pins"]
        dir_pin = pins_and_adcs.Pin(pins["press_dir"])
        sm = press_model.StepperSM(hwo, hwo.plant.press, dir_pin, pp["sm_freq_hz"])
        hwo.press_sm = sm
        sm.active(1)
        hal.press = Stepper(hwo.clock, dir_pin, sm=sm, en_pin=pins_and_adcs.Pin(pins["press_enable"]),
                            sm_freq=pp["sm_freq_hz"])
    s = (_cfg["seed"] * 2654435761 + 12345) & 0xFFFFFFFF
    hal._uid = bytes([0xE7, 0x11, (s >> 24) & 255, (s >> 16) & 255, (s >> 8) & 255, s & 255])
    return hal
