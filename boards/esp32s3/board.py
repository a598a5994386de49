"""ESP32-S3 stress-rig board (e.g. ESP32-S3-DevKitC-1).

The S3 has no DAC: the current setpoint is a 16-bit LEDC PWM (filtered), bipolar around
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
        "source": {"setpoint": "pwm", "pwm_freq_hz": 20000, "zero_code": 32768},
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
        "max_force_n": 5000.0,
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
    },
    "calibration": {
        "load_n_per_count": 0.0005,
        "load_offset_n": 0.0,
        "volts_per_count": 3.3 * 2 / 65535,
        "volts_offset_v": 0.0,
        "amps_per_count": 0.25 / 65535,
        "amps_offset_a": -0.125,
        "source_amps_per_lsb": 0.25 / 65536,
    },
    "streams": {
        "load": {"rate_hz": 80.0, "enabled": True},
        "fbg": {"rate_hz": 100.0, "enabled": True},
        "elec": {"rate_hz": 100.0, "enabled": True},
        "temp": {"rate_hz": 1.0, "enabled": True},
    },
    "boot_escape_ms": 1000,
}


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
            duty_u16=parts["source"]["zero_code"],
        )
        self.source = CurrentSource(
            pwm,
            en,
            _adc(machine, p["adc_voltage"]),
            _adc(machine, p["adc_current"]),
            cal["source_amps_per_lsb"],
            zero_code=parts["source"]["zero_code"],
            mode="pwm",
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

    def unique_id(self):
        return self._machine.unique_id()

    def heap_free(self):
        return self._gc.mem_free()

    def enter_repl(self):
        import micropython

        self.source.off()
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
