"""Raspberry Pi Pico (RP2040) stress-rig board.

Fitted: HX711 load-cell ADC on PIO0/SM0 (DOUT GP16, SCK GP17, RATE GP18), FBG interrogator
on UART0 (TX GP0, RX GP1, 115200 8N1, "#P" peak lines, two gratings), current source with
a filtered 16-bit PWM setpoint on GP15 (bipolar around mid-scale), enable GP14, cell
voltage on ADC0 (GP26, through a /2 divider), current sense on ADC1 (GP27, bipolar around
mid-scale), NTC thermistor on ADC2 (GP28). Boot-time REPL escape: GP22 held low at reset.

machine/rp2 are imported inside make_hal() so the file compiles anywhere with mpy-cross.
"""

DEFINITION = {
    "board_id": "rp2040_pico",
    "firmware_target": "armv6m",
    "parts": {
        "loadcell": {"type": "hx711", "gain": 128, "rate_sps": 80, "pio": True},
        "fbg": {
            "mode": "uart",
            "baud": 115200,
            "windows_fm": ((1527000000, 1533000000), (1547000000, 1553000000)),
        },
        # rp2 PWM: counter top = 125 MHz / 100 kHz = 1250 real levels (0.2 mA each), zero at
        # mid-scale (level 625); the firmware quantises to these levels and ACKs them
        "source": {
            "setpoint": "pwm",
            "pwm_freq_hz": 100000,
            "pwm_levels": 1250,
            "zero_code": 625,
        },
        "voltage_adc": 0,
        "current_adc": 1,
        "thermistor": {
            "adc": 2,
            "beta": 3950.0,
            "r0_ohm": 10000.0,
            "t0_c": 25.0,
            "r_series_ohm": 10000.0,
        },
    },
    "pins": {
        "hx711_dout": 16,
        "hx711_sck": 17,
        "hx711_rate": 18,
        "fbg_uart": 0,
        "fbg_tx": 0,
        "fbg_rx": 1,
        "source_pwm": 15,
        "source_enable": 14,
        "adc_voltage": 26,
        "adc_current": 27,
        "adc_thermistor": 28,
        "repl_escape": 22,
    },
    "limits": {
        "max_current_a": 0.1,
        "compliance_v": 5.0,
        "min_voltage_v": -1.0,
        "max_temp_c": 60.0,
        "max_force_n": 4000.0,  # 8 000 000 counts: inside the 24-bit full scale (8 388 607)
        "min_watchdog_ms": 100,
        "max_watchdog_ms": 600000,
        "default_watchdog_ms": 5000,
        "min_area_m2": 1e-6,
        "max_area_m2": 0.01,
        "max_duration_s": 1e6,
        "min_pulse_s": 0.001,
        "max_charge_c": 1e5,
        "min_rate_hz": 0.1,
        "max_rate_load_hz": 80.0,
        "max_rate_fbg_hz": 100.0,
        "max_rate_elec_hz": 1000.0,
        "max_rate_temp_hz": 10.0,
        # CPU budget: config_stream refuses rates whose estimated total, sum(rate * (record
        # + wake-up)), is above max_cpu_fraction. Measured on the rp2 VM (bench_rp2040.py,
        # 2026-12-01, default streams, 10 s): 1606 us of RP2040 time per sample with about
        # one loop pass per sample (a record ~700 us: acquisition, packing, its share of a
        # frame; a pass ~900 us: clock, link, safety), CPU 0.45, 1-3 samples missed in 10 s.
        # The old 680 + 520 us at 0.6 let elec run at 319 Hz with the others on, an estimated
        # 0.80 of the CPU. 0.5 (the target) allows elec up to 131 Hz with the other
        # default streams on, or ~310 records/s in all (the interrogator's lines are charged
        # at their 100/s whatever the FBG stream's rate: each is parsed). Measured at that
        # limit (2026-12-02, RP2040_BENCH_ELEC_HZ=131 python bench/bench_rp2040.py, 10 s):
        # CPU 0.445, 1425 us/sample, 0 samples missed, 0 B/sample.
        "record_cost_us": 700,
        "wake_cost_us": 900,
        "max_cpu_fraction": 0.5,
    },
    "calibration": {
        "load_n_per_count": 0.0005,
        "load_offset_n": 0.0,
        "volts_per_count": 3.3 * 2 / 65535,  # ADC 0..3.3 V behind a /2 divider
        "volts_offset_v": 0.0,
        "amps_per_count": 0.25 / 65535,  # +-0.125 A over the ADC range, zero at mid-scale
        "amps_offset_a": -0.125,
        "source_amps_per_lsb": 0.25 / 1250,  # one PWM level -> A, zero at level 625
    },
    "streams": {
        "load": {"rate_hz": 80.0, "enabled": True},
        "fbg": {"rate_hz": 100.0, "enabled": True},
        "elec": {"rate_hz": 100.0, "enabled": True},
        "temp": {"rate_hz": 1.0, "enabled": True},
    },
    "boot_escape_ms": 1000,
}


# Optional press actuator for the stack-pressure hold (firmware/loops/press_hold.py): a
# stepper on the press screw through a step/dir driver (A4988, TMC2209), step pulses from
# the PIO program in firmware/drivers/stepper.py on state machine 1 (the HX711 has 0).
# A rig with the motorised press sets PRESS = PRESS_STEPPER (adjusting the numbers to its
# screw, microsteps and load path); PRESS = None: no actuator, set_press_hold is refused.
PRESS_STEPPER = {
    "driver": "pio",
    "pins": {"press_step": 10, "press_dir": 11, "press_enable": 12},
    "en_active": 0,  # the driver's ENABLE is active low
    "limits": {
        "press_um_per_step": 0.3125,  # 1 mm lead screw, 200 steps x 16 microsteps
        "press_max_rate_sps": 2000.0,
        "press_min_steps": -6400,  # +-2 mm from where the press stood at power-on
        "press_max_steps": 6400,
        "press_max_setpoint_mpa": 25.0,
        "press_max_error_mpa": 0.5,  # |error| beyond this for press_runaway_s: latched stop
        "press_max_travel_um": 500.0,  # per hold
        "press_max_kp_um_per_mpa": 100.0,
        "press_max_ki_um_per_mpa_s": 1000.0,
        # for a 2 N/um load path on a 9 mm die (host_sdk.press_hold.gains_for_stiffness)
        "press_default_kp_um_per_mpa": 12.0,
        "press_default_ki_um_per_mpa_s": 60.0,
        "press_runaway_s": 2.0,
        "press_max_runaway_s": 300.0,
    },
}
PRESS = None


if PRESS:  # imported only then: the host's tools read DEFINITION on CPython
    from firmware.drivers.stepper import fit_press

    fit_press(DEFINITION, PRESS)

WDT_TIMEOUT_MS = 8000  # rp2 maximum 8388 ms; the loop feeds it at least every second
REPL_ONCE_FILE = "/repl_once"  # main.py: stay in the REPL once (after ENTER_REPL)


class _Clock:
    def __init__(self):
        import time

        self.ticks_us = time.ticks_us
        self.ticks_diff = time.ticks_diff
        self.ticks_add = time.ticks_add
        self.sleep_us = time.sleep_us


class Hal:
    """The HAL object of boards/README.md for the Pico."""

    def __init__(self):
        import gc

        import machine
        import rp2

        from firmware.drivers.current_source import CurrentSource
        from firmware.drivers.fbg_uart import FbgUart
        from firmware.drivers.hx711 import HX711, hx711_pio_program
        from firmware.drivers.stdio_link import StdioLink
        from firmware.drivers.thermistor import Thermistor

        d = DEFINITION
        p = d["pins"]
        parts = d["parts"]
        cal = d["calibration"]
        self._gc = gc
        self._machine = machine
        self.clock = _Clock()
        # current source first: output stage off before anything else
        en = machine.Pin(p["source_enable"], machine.Pin.OUT, value=0)
        pwm = machine.PWM(machine.Pin(p["source_pwm"]))
        pwm.freq(parts["source"]["pwm_freq_hz"])
        self.source = CurrentSource(
            pwm,
            en,
            machine.ADC(p["adc_voltage"]),
            machine.ADC(p["adc_current"]),
            cal["source_amps_per_lsb"],
            zero_code=parts["source"]["zero_code"],
            code_max=parts["source"]["pwm_levels"],
            mode="pwm",
            pwm_levels=parts["source"]["pwm_levels"],
        )
        dout = machine.Pin(p["hx711_dout"], machine.Pin.IN, machine.Pin.PULL_UP)
        sck = machine.Pin(p["hx711_sck"], machine.Pin.OUT, value=0)
        sm = rp2.StateMachine(0, hx711_pio_program(), freq=1000000, sideset_base=sck, in_base=dout)
        sm.active(1)
        lc = parts["loadcell"]
        self.loadcell = HX711(
            pin_dout=dout,
            pin_sck=sck,
            gain=lc["gain"],
            rate_sps=lc["rate_sps"],
            pin_rate=machine.Pin(p["hx711_rate"], machine.Pin.OUT),
            sm=sm,
            clock=self.clock,
        )
        uart = machine.UART(
            p["fbg_uart"],
            baudrate=parts["fbg"]["baud"],
            tx=machine.Pin(p["fbg_tx"]),
            rx=machine.Pin(p["fbg_rx"]),
            timeout=0,
            rxbuf=1024,
        )
        self.fbg = FbgUart(uart, parts["fbg"]["windows_fm"])
        th = parts["thermistor"]
        self.thermistor = Thermistor(
            machine.ADC(p["adc_thermistor"]),
            th["beta"],
            th["r0_ohm"],
            th["t0_c"],
            th["r_series_ohm"],
        )
        self.link = StdioLink()
        self.press = None  # the press actuator (PRESS), for the stack-pressure hold
        if "press" in parts:
            from firmware.drivers.stepper import make_stepper

            self.press = make_stepper(d, self.clock, machine, rp2)
        # hardware watchdog, fed by every loop pass: a hung firmware resets the board (the
        # current source comes up off). It cannot be stopped once started: see enter_repl.
        self.wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)

    def unique_id(self):
        return self._machine.unique_id()

    def heap_free(self):
        return self._gc.mem_free()

    def enter_repl(self):
        import micropython

        self.source.off()
        if self.wdt is not None:
            # the running WDT would reset the board in the REPL: reset now, and main.py
            # stays in the REPL on the next boot (one-shot flag), with no WDT started
            with open(REPL_ONCE_FILE, "w") as f:
                f.write("1")
            self._machine.reset()
        micropython.kbd_intr(3)

    def reset(self):
        self.source.off()
        self._machine.reset()


def make_hal():
    return Hal()


def repl_escape_requested():
    """True when GP22 is held low at boot (main.py then stays in the REPL)."""
    import machine

    return (
        machine.Pin(DEFINITION["pins"]["repl_escape"], machine.Pin.IN, machine.Pin.PULL_UP).value()
        == 0
    )
