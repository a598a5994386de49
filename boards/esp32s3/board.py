"""ESP32-S3 stress-rig board (e.g. ESP32-S3-DevKitC-1).

The S3 has no DAC: the current setpoint is an LEDC PWM (filtered; 11 bits at 20 kHz), bipolar around
mid-scale. Fitted: ADS1232 load-cell ADC bit-banged (DOUT GPIO4, SCLK GPIO5, PDWN GPIO6,
SPEED GPIO7), FBG interrogator in analog-output mode on ADC1 GPIO1/GPIO2 (two gratings),
source PWM GPIO10, enable GPIO11, cell voltage ADC GPIO8, current sense ADC GPIO9,
thermistor ADC GPIO3. Boot-time REPL escape: GPIO0 (BOOT button) held low after reset.
"""

DEFINITION = {
    "board_id": "esp32s3",
    "firmware_target": "xtensawin",
    "parts": {
        "loadcell": {"type": "ads1232", "gain": 128, "rate_sps": 80},
        "fbg": {
            "mode": "analog",
            "adcs": (1, 2),
            # interrogator output 0..3.3 V spans 1520..1560 nm on both channels
            "offset_fm": (1520000000, 1540000000),
            "fm_per_count": (40e6 / 65535, 40e6 / 65535),
        },
        # LEDC at 20 kHz: 11 bits (2048 levels), the u16 duty truncated; zero at level 1024
        "source": {
            "setpoint": "pwm",
            "pwm_freq_hz": 20000,
            "pwm_levels": 2048,
            "zero_code": 1024,
        },
        "voltage_adc": 8,
        "current_adc": 9,
        "thermistor": {
            "adc": 3,
            "beta": 3950.0,
            "r0_ohm": 10000.0,
            "t0_c": 25.0,
            "r_series_ohm": 10000.0,
        },
    },
    "pins": {
        "ads_dout": 4,
        "ads_sclk": 5,
        "ads_pdwn": 6,
        "ads_speed": 7,
        "source_pwm": 10,
        "source_enable": 11,
        "adc_voltage": 8,
        "adc_current": 9,
        "adc_thermistor": 3,
        "repl_escape": 0,
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
        "max_rate_fbg_hz": 200.0,
        "max_rate_elec_hz": 1000.0,
        "max_rate_temp_hz": 10.0,
        # CPU budget (REAL_BOARDS.md, measured for this firmware on the rp2 port): a record
        # costs about 680 us, a loop wake-up 520 us; config_stream refuses rates whose
        # estimated total, sum(rate * (record + wake-up)), is above max_cpu_fraction
        "record_cost_us": 680,
        "wake_cost_us": 520,
        "max_cpu_fraction": 0.6,
    },
    "calibration": {
        "load_n_per_count": 0.0005,
        "load_offset_n": 0.0,
        "volts_per_count": 3.3 * 2 / 65535,
        "volts_offset_v": 0.0,
        "amps_per_count": 0.25 / 65535,
        "amps_offset_a": -0.125,
        "source_amps_per_lsb": 0.25 / 2048,  # one LEDC level -> A
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
# stepper through a step/dir driver, pulses from plain GPIO (firmware/drivers/stepper.py:
# each move's pulses at once, a few tens of steps a load reading at most). A rig with the
# motorised press sets PRESS = PRESS_STEPPER; PRESS = None: set_press_hold is refused.
PRESS_STEPPER = {
    "driver": "gpio",
    "pins": {"press_step": 12, "press_dir": 13, "press_enable": 14},
    "en_active": 0,
    "limits": {
        "press_um_per_step": 0.3125,
        "press_max_rate_sps": 2000.0,
        "press_min_steps": -6400,
        "press_max_steps": 6400,
        "press_max_setpoint_mpa": 25.0,
        "press_max_error_mpa": 0.5,
        "press_max_travel_um": 500.0,
        "press_max_kp_um_per_mpa": 100.0,
        "press_max_ki_um_per_mpa_s": 1000.0,
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

WDT_TIMEOUT_MS = 8000  # as on the Pico (rp2 allows at most 8388 ms); the loop feeds it every second
REPL_ONCE_FILE = "/repl_once"  # main.py: stay in the REPL once (after ENTER_REPL)


class _Clock:
    def __init__(self):
        import time

        self.ticks_us = time.ticks_us
        self.ticks_diff = time.ticks_diff
        self.ticks_add = time.ticks_add
        self.sleep_us = time.sleep_us


def _adc(machine, pin):
    a = machine.ADC(machine.Pin(pin))
    a.atten(machine.ADC.ATTN_11DB)
    return a


class Hal:
    def __init__(self):
        import gc

        import machine

        from firmware.drivers.ads1232 import ADS1232
        from firmware.drivers.current_source import CurrentSource
        from firmware.drivers.fbg_analog import FbgAnalog
        from firmware.drivers.stdio_link import StdioLink
        from firmware.drivers.thermistor import Thermistor

        d = DEFINITION
        p = d["pins"]
        parts = d["parts"]
        cal = d["calibration"]
        self._gc = gc
        self._machine = machine
        self.clock = _Clock()
        en = machine.Pin(p["source_enable"], machine.Pin.OUT, value=0)
        pwm = machine.PWM(
            machine.Pin(p["source_pwm"]),
            freq=parts["source"]["pwm_freq_hz"],
            duty_u16=32768,
        )
        self.source = CurrentSource(
            pwm,
            en,
            _adc(machine, p["adc_voltage"]),
            _adc(machine, p["adc_current"]),
            cal["source_amps_per_lsb"],
            zero_code=parts["source"]["zero_code"],
            code_max=parts["source"]["pwm_levels"] - 1,
            mode="pwm",
            pwm_levels=parts["source"]["pwm_levels"],
        )
        lc = parts["loadcell"]
        self.loadcell = ADS1232(
            machine.Pin(p["ads_dout"], machine.Pin.IN),
            machine.Pin(p["ads_sclk"], machine.Pin.OUT),
            gain=lc["gain"],
            rate_sps=lc["rate_sps"],
            pin_pdwn=machine.Pin(p["ads_pdwn"], machine.Pin.OUT),
            pin_speed=machine.Pin(p["ads_speed"], machine.Pin.OUT),
            clock=self.clock,
        )
        fb = parts["fbg"]
        self.fbg = FbgAnalog(
            [_adc(machine, a) for a in fb["adcs"]], fb["offset_fm"], fb["fm_per_count"]
        )
        th = parts["thermistor"]
        self.thermistor = Thermistor(
            _adc(machine, p["adc_thermistor"]),
            th["beta"],
            th["r0_ohm"],
            th["t0_c"],
            th["r_series_ohm"],
        )
        self.link = StdioLink()
        self.press = None  # the press actuator (PRESS), for the stack-pressure hold
        if "press" in parts:
            from firmware.drivers.stepper import make_stepper

            self.press = make_stepper(d, self.clock, machine)
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
    import machine

    return (
        machine.Pin(DEFINITION["pins"]["repl_escape"], machine.Pin.IN, machine.Pin.PULL_UP).value()
        == 0
    )
