"""Every number of the wire protocol, defined once.

The firmware (MicroPython) and the host SDK (CPython, through `construct` layouts derived
from the tables below) both import this module, so a change here changes both sides.
Layouts are `struct` format strings, little-endian, no padding.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# 2: integer us durations, LOAD_SATURATED, boot id + header check in every frame,
# cumulative board drops in SAMPLES, retries matched on the whole command, timesync
PROTOCOL_VERSION = const(2)

# ---- framing -------------------------------------------------------------------------
SYNC0 = const(0xA5)
SYNC1 = const(0x5A)
# sync0 sync1 length | version type flags stream seq boot | hcheck
HEADER_FMT = "<BBHBBBBHHB"
HEADER_SIZE = const(13)
LENGTH_OFFSET = const(2)  # the CRC covers bytes [LENGTH_OFFSET, 4 + length)
LENGTH_BASE = const(9)  # `length` counts version..hcheck (9 bytes) plus the payload
BOOT_OFFSET = const(10)  # u16 boot id: random per boot (never 0); 0 in host frames
HCHECK_OFFSET = const(12)  # low byte of the CRC-32 of bytes [2, 12): a bad header is
# rejected as soon as its 13 bytes are in, without waiting for the length it claims
CRC_SIZE = const(4)
FRAME_OVERHEAD = const(17)  # header + CRC
# Version 1 frames (10-byte header, LENGTH_BASE 6, no header check) are still delimited
# by sync + length + CRC-32, so either side can name the other's version in its error.
V1_LENGTH_BASE = const(6)
MAX_PAYLOAD = const(1024)
DEFAULT_SAMPLE_PAYLOAD = const(512)  # sample frames are flushed when this is full

# ---- message types -------------------------------------------------------------------
MSG_HELLO = const(0x01)
MSG_STATUS = const(0x02)
MSG_EVENT = const(0x03)
MSG_ACK = const(0x04)
MSG_NACK = const(0x05)
MSG_LOG = const(0x06)
MSG_SAMPLES = const(0x10)
MSG_COMMAND = const(0x20)

MESSAGE_NAMES = {
    MSG_HELLO: "HELLO",
    MSG_STATUS: "STATUS",
    MSG_EVENT: "EVENT",
    MSG_ACK: "ACK",
    MSG_NACK: "NACK",
    MSG_LOG: "LOG",
    MSG_SAMPLES: "SAMPLES",
    MSG_COMMAND: "COMMAND",
}

# ---- header flags --------------------------------------------------------------------
FLAG_DROPPED = const(0x01)  # samples of this stream were dropped just before this frame
FLAG_LATCHED = const(0x02)  # the board is in a latched stop (current off until cleared)
FLAG_BOOT = const(0x04)  # first frame since the board booted (sequence restarts at 0)
FLAGS_KNOWN = const(0x07)  # any other bit set: the frame is from a newer protocol; reject

# ---- sample frames -------------------------------------------------------------------
# payload: first_index u32 | t_first_us u32 | n_records u16 | board_dropped u32 | records
# board_dropped: samples of this stream the board dropped since boot before first_index
# (mod 2**32), so the host splits every index gap exactly into board drops and link losses
SAMPLES_HEADER_FMT = "<IIHI"
SAMPLES_HEADER_SIZE = const(14)
SAMPLE_FLUSH_US = const(200000)  # a partial sample frame is sent when its oldest record is
# this old (device time), so a slow stream still reaches the host within ~0.2 s

STREAM_LOAD = const(0)  # load-cell bridge ADC
STREAM_FBG = const(1)  # FBG interrogator peak wavelengths
STREAM_ELEC = const(2)  # cell voltage and current readback
STREAM_TEMP = const(3)  # thermistor
N_STREAMS = const(4)
STREAM_NAMES = ("load", "fbg", "elec", "temp")

# Default record layouts. The HELLO message is the authority: the host builds its dtypes
# from what the board announces; these are what the reference firmware announces.
# Every record starts with t_us (u32 device clock, wraps every 2**32 us = 71.6 min).
LOAD_RECORD_FMT = "<IiB"  # t_us, counts (signed 24-bit in i32), status
FBG_RECORD_FMT_PREFIX = "<IB"  # t_us, status (bit n: grating n lost); then i32 fm per grating
ELEC_RECORD_FMT = "<IiiB"  # t_us, voltage counts, current counts, state bits
TEMP_RECORD_FMT = "<IHi"  # t_us, raw ADC counts, temperature in milli-degC

# record status bits
LOAD_GLITCH = const(0x01)  # HX711 returned an all-ones/all-zeros glitch value
LOAD_NOT_READY = const(0x02)  # chip missing or not ready in time; counts repeat the last
LOAD_SATURATED = const(0x04)  # the ADC is at its full scale (0x7FFFFF / 0x800000): over-force
ELEC_OUTPUT_ON = const(0x01)
ELEC_PULSE_ON = const(0x02)
ELEC_COMPLIANCE = const(0x04)
ELEC_DERATED = const(0x08)  # the current flows scaled down by the pressure-rate derating
TEMP_OPEN = const(0x01)  # flagged through raw == 0 or 0xFFFF; temp_mdegc is then 0

# ---- commands ------------------------------------------------------------------------
# COMMAND payload: cmd_seq u16 | cmd_id u8 | arguments (format below)
# ACK payload:     cmd_seq u16 | cmd_id u8 | applied values (same format as the arguments)
# NACK payload:    cmd_seq u16 | cmd_id u8 | reason u8 | text (UTF-8, rest of payload)
COMMAND_HEADER_FMT = "<HB"
COMMAND_HEADER_SIZE = const(3)
NACK_FMT = "<HBB"  # cmd_seq, cmd_id, reason; then the text
NACK_HEADER_SIZE = const(4)
NACK_TEXT_MAX = const(200)  # longer texts are cut (bytes of UTF-8)

# current unit selector used by the waveform commands
UNIT_A = const(0)
UNIT_A_PER_M2 = const(1)

# cutoffs appended to every waveform command: v_min, v_max (V), max charge (C, 0 = none),
# max duration (us, 0 = none). Times are integer microseconds (u64): a float32 of seconds
# loses time above 2**24 us (16.8 s) on the board.
CUTOFF_FMT = "fffQ"
CUTOFF_FIELDS = ("v_min_v", "v_max_v", "max_charge_c", "max_duration_us")
# integer-microsecond fields of the commands (the host SDK shows them as seconds, `*_s`)
TIME_US_FIELDS = (
    "duration_us",
    "t_on_us",
    "t_off_us",
    "dwell_us",
    "on_us",
    "t_pulse_us",
    "t_rest_us",
    "max_duration_us",
    "min_rest_us",
    "max_rest_us",
    "hold_us",
    "window_us",
    "strain_window_us",
    "runaway_us",
)

CMD_HEARTBEAT = const(0x01)
CMD_GET_INFO = const(0x02)
CMD_CONFIG_STREAM = const(0x03)
CMD_SET_STREAMING = const(0x04)
CMD_SET_CELL = const(0x05)
CMD_SET_WATCHDOG = const(0x06)
CMD_SET_VOLTAGE_WINDOW = const(0x07)
CMD_GET_STATUS = const(0x08)
CMD_TIMESYNC = const(0x09)
CMD_REST = const(0x10)
CMD_CONSTANT = const(0x11)
CMD_PULSE_TRAIN = const(0x12)
CMD_STAIRCASE = const(0x13)
CMD_GITT = const(0x14)
CMD_STOP = const(0x15)
CMD_CLEAR_FAULT = const(0x16)
CMD_ENTER_REPL = const(0x17)
CMD_RESET = const(0x18)
# closed loops (issue 14); ids from 0x30 so other additions after 0x18 cannot collide
CMD_ADAPTIVE_REST = const(0x30)
CMD_ADAPTIVE_PULSES = const(0x31)
CMD_SET_INTERLOCK = const(0x32)
CMD_SET_DERATE = const(0x33)
CMD_SET_PRESS_HOLD = const(0x34)

# adaptive rest criterion (firmware/loops/adaptive_rest.py): the rest ends once |dV/dt|
# stayed at or below dvdt_v_per_s for hold_us, not before min_rest_us, at the latest at
# max_rest_us. dV/dt is the difference of the mean voltage over two consecutive windows of
# window_us (the estimator's baseline), so its delay is about 1.5 windows.
# Settle fields (both commands): min_rest_us, max_rest_us, hold_us, dvdt_v_per_s, window_us
# Strain fields (appended to both, and to SET_DERATE; issue 14): see STRAIN_* below.

# FBG strain-rate criteria (firmware/loops/strain_signal.py). The signal is the wavelength of
# `grating` (an index into the FBG record), less that of `ref_grating` scaled to it when one
# is given (temperature compensation; REF_NONE: none), in fm; pm_per_ue turns it into
# microstrain (0: the board calibration's fbg_pm_per_ue).
# Adaptive rests: strain_mode STRAIN_OFF (dV/dt only, as before), STRAIN_BOTH (the rest ends
# once both |dV/dt| and |de/dt| held their thresholds for hold_us: the safe choice),
# STRAIN_EITHER (whichever holds first) or STRAIN_ONLY (|de/dt| alone); |de/dt| from the
# mean strain over two consecutive windows of strain_window_us (0: window_us).
STRAIN_OFF = const(0)
STRAIN_BOTH = const(1)
STRAIN_EITHER = const(2)
STRAIN_ONLY = const(3)
REF_NONE = const(255)
STRAIN_SETTLE_FMT = "BBBffQ"
STRAIN_SETTLE_FIELDS = (
    "strain_mode",
    "grating",
    "ref_grating",
    "dedt_ue_per_s",
    "pm_per_ue",
    "strain_window_us",
)
# Derating: signal DERATE_LOAD (dF/dt, limit/resume_n_per_s) or DERATE_STRAIN (de/dt of the
# FBG signal above, limit/resume_ue_per_s); the same least-squares estimator over window_n
# readings of the signal's stream.
DERATE_LOAD = const(0)
DERATE_STRAIN = const(1)
STRAIN_DERATE_FMT = "BBBfff"
STRAIN_DERATE_FIELDS = (
    "signal",
    "grating",
    "ref_grating",
    "pm_per_ue",
    "limit_ue_per_s",
    "resume_ue_per_s",
)

# cmd_id: (name, argument format without "<", field names)
COMMANDS = {
    CMD_HEARTBEAT: ("heartbeat", "", ()),
    CMD_GET_INFO: ("get_info", "", ()),
    CMD_CONFIG_STREAM: ("config_stream", "BBf", ("stream", "enabled", "rate_hz")),
    CMD_SET_STREAMING: ("set_streaming", "B", ("on",)),
    CMD_SET_CELL: ("set_cell", "f", ("area_m2",)),
    CMD_SET_WATCHDOG: ("set_watchdog", "I", ("timeout_ms",)),
    CMD_SET_VOLTAGE_WINDOW: ("set_voltage_window", "ff", ("v_min_v", "v_max_v")),
    CMD_GET_STATUS: ("get_status", "", ()),
    # the ACK carries the device clock (u32 us, the samples' clock) when the board read it
    CMD_TIMESYNC: ("timesync", "I", ("t_us",)),
    CMD_REST: ("rest", "Q", ("duration_us",)),
    CMD_CONSTANT: ("constant", "Bf" + CUTOFF_FMT, ("unit", "current") + CUTOFF_FIELDS),
    CMD_PULSE_TRAIN: (
        "pulse_train",
        "BfQQI" + CUTOFF_FMT,
        ("unit", "amplitude", "t_on_us", "t_off_us", "count") + CUTOFF_FIELDS,
    ),
    CMD_STAIRCASE: (
        "staircase",
        "BfffQQ" + CUTOFF_FMT,
        ("unit", "start", "step", "stop", "dwell_us", "on_us") + CUTOFF_FIELDS,
    ),
    CMD_GITT: (
        "gitt",
        "BfQQI" + CUTOFF_FMT,
        ("unit", "amplitude", "t_pulse_us", "t_rest_us", "count") + CUTOFF_FIELDS,
    ),
    CMD_STOP: ("stop", "", ()),
    CMD_CLEAR_FAULT: ("clear_fault", "", ()),
    CMD_ENTER_REPL: ("enter_repl", "", ()),
    CMD_RESET: ("reset", "", ()),
    CMD_ADAPTIVE_REST: (
        "adaptive_rest",
        "QQQfQ" + STRAIN_SETTLE_FMT,
        ("min_rest_us", "max_rest_us", "hold_us", "dvdt_v_per_s", "window_us")
        + STRAIN_SETTLE_FIELDS,
    ),
    CMD_ADAPTIVE_PULSES: (
        "adaptive_pulses",
        "BfQIQQQfQ" + CUTOFF_FMT + STRAIN_SETTLE_FMT,
        ("unit", "amplitude", "t_on_us", "count", "min_rest_us", "max_rest_us", "hold_us")
        + ("dvdt_v_per_s", "window_us")
        + CUTOFF_FIELDS
        + STRAIN_SETTLE_FIELDS,
    ),
    # stack-force window in N (board calibration) with hysteresis; action 0 off, 1 suspend
    # (current off, timing paused, outside; resume inside the hysteresis band), 2 end the step
    CMD_SET_INTERLOCK: (
        "set_interlock",
        "Bfff",
        ("action", "f_min_n", "f_max_n", "hysteresis_n"),
    ),
    # current derating by stack-force rate (firmware/loops/derate.py): action 0 off, 1 on;
    # least-squares slope over window_n load readings; scaled by `scale` while |dF/dt| >
    # limit_n_per_s, back to full once it is < resume_n_per_s; or, with signal 1, by the
    # FBG strain rate (limit/resume_ue_per_s; the *_n_per_s fields are then unused)
    CMD_SET_DERATE: (
        "set_derate",
        "BHfff" + STRAIN_DERATE_FMT,
        ("action", "window_n", "limit_n_per_s", "resume_n_per_s", "scale") + STRAIN_DERATE_FIELDS,
    ),
    # stack-pressure hold (firmware/loops/press_hold.py): action 0 off (the actuator holds
    # where it is), 1 hold setpoint_mpa on stack_area_m2 with a PI loop on the load cell
    # moving the press's stepper; gains in um of travel per MPa of error (0 and 0: the
    # board's defaults); max_error_mpa, max_travel_um, rate_steps_per_s and runaway_us 0:
    # the board's limits. Refused on a board without a press actuator.
    CMD_SET_PRESS_HOLD: (
        "set_press_hold",
        "BfffffffQ",
        (
            "action",
            "setpoint_mpa",
            "stack_area_m2",
            "kp_um_per_mpa",
            "ki_um_per_mpa_s",
            "max_error_mpa",
            "max_travel_um",
            "rate_steps_per_s",
            "runaway_us",
        ),
    ),
}
# Commands whose last fields were appended later: such a command may also come with only its
# first n fields (a host from before them); the missing ones are then 0 (their "off"), and
# its ACK carries the same n fields, so an older host reads the reply it expects.
COMMAND_BASE_FIELDS = {CMD_ADAPTIVE_REST: 5, CMD_ADAPTIVE_PULSES: 13, CMD_SET_DERATE: 5}

# NACK reasons
NACK_UNKNOWN_COMMAND = const(1)
NACK_BAD_LENGTH = const(2)
NACK_OUT_OF_RANGE = const(3)
NACK_BUSY = const(4)
NACK_LATCHED = const(5)
NACK_NOT_CONFIGURED = const(6)
NACK_UNSUPPORTED = const(7)
NACK_BAD_STATE = const(8)
NACK_NAMES = {
    NACK_UNKNOWN_COMMAND: "unknown_command",
    NACK_BAD_LENGTH: "bad_length",
    NACK_OUT_OF_RANGE: "out_of_range",
    NACK_BUSY: "busy",
    NACK_LATCHED: "latched",
    NACK_NOT_CONFIGURED: "not_configured",
    NACK_UNSUPPORTED: "unsupported",
    NACK_BAD_STATE: "bad_state",
}

# ---- events --------------------------------------------------------------------------
# EVENT payload: t_us u32 | code u8 | cause u8 | index u16 | value f32
EVENT_FMT = "<IBBHf"
EVENT_SIZE = const(12)
EV_BOOT = const(1)
EV_WAVEFORM_START = const(2)  # index: command id that started it, value: first setpoint
EV_EDGE = const(3)  # current setpoint changed; index: pulse/step number, value: new A
EV_WAVEFORM_END = const(4)  # cause says why (completed or a cutoff)
EV_STOP_LATCHED = const(5)  # safety stop; current off until CLEAR_FAULT
EV_FAULT_CLEARED = const(6)
EV_SENSOR_FAULT = const(7)  # index: stream id, value: raw reading
EV_STREAMING = const(8)  # index: 1 on / 0 off
# an adaptive rest ended; the event's time is the board's decision. cause: settled (the
# dV/dt criterion held) or duration (max_rest reached); index: pulse number (0 for a
# single rest); value: the rest's length in ms. With a strain criterion the cause says which
# criterion ended it: settled (dV/dt) or strain_settled (de/dt); with both required, the one
# whose hold was completed last
EV_REST_END = const(9)
# the pressure interlock: index 1 left the window (cause pressure or sensor_fault), 0 back
# inside (cause pressure); value: the load-cell counts
EV_INTERLOCK = const(10)
# current derating: index 1 derated (cause pressure_rate or sensor_fault), 0 back to full
# (cause pressure_rate); value: the force-rate estimate in load-cell counts/s. On the strain
# signal the cause is strain_rate and the value the rate of the FBG signal in fm/s
EV_DERATE = const(11)
# stack-pressure hold: index 1 started (value: the setpoint in MPa), 0 stopped
# (cause host_stop, or the latched stop's cause; value: the actuator position in steps),
# 2 runaway (a latched stop follows; cause press_runaway, press_travel, sensor_fault or
# over_force; value: the error in load-cell counts at the decision)
EV_PRESS_HOLD = const(12)
# the press actuator's position in steps from power-on (value), sent while a hold runs when
# it moved a step and 0.25 s passed since the last one, or it moved 16 steps; index 0
EV_PRESS_POSITION = const(13)
EVENT_NAMES = {
    EV_BOOT: "boot",
    EV_WAVEFORM_START: "waveform_start",
    EV_EDGE: "edge",
    EV_WAVEFORM_END: "waveform_end",
    EV_STOP_LATCHED: "stop_latched",
    EV_FAULT_CLEARED: "fault_cleared",
    EV_SENSOR_FAULT: "sensor_fault",
    EV_STREAMING: "streaming",
    EV_REST_END: "rest_end",
    EV_INTERLOCK: "interlock",
    EV_DERATE: "derate",
    EV_PRESS_HOLD: "press_hold",
    EV_PRESS_POSITION: "press_position",
}

CAUSE_NONE = const(0)
CAUSE_COMPLETED = const(1)
CAUSE_V_MIN = const(2)
CAUSE_V_MAX = const(3)
CAUSE_CHARGE = const(4)
CAUSE_DURATION = const(5)
CAUSE_HOST_STOP = const(6)
CAUSE_WATCHDOG = const(7)
CAUSE_COMPLIANCE = const(8)
CAUSE_OVER_TEMP = const(9)
CAUSE_OVER_FORCE = const(10)
CAUSE_OVER_CURRENT = const(11)
CAUSE_SENSOR_FAULT = const(12)
CAUSE_BOOT = const(13)
CAUSE_SETTLED = const(14)  # an adaptive rest's dV/dt criterion held
CAUSE_PRESSURE = const(15)  # the stack force left the interlock window
CAUSE_PRESSURE_RATE = const(16)  # the stack force changed faster than the derating limit
CAUSE_STRAIN_SETTLED = const(17)  # an adaptive rest's de/dt (FBG strain) criterion held
CAUSE_STRAIN_RATE = const(18)  # the FBG strain changed faster than the derating limit
CAUSE_PRESS_RUNAWAY = const(19)  # the press hold's error stayed beyond its limit
CAUSE_PRESS_TRAVEL = const(20)  # the press hold ran out of actuator travel
CAUSE_NAMES = {
    CAUSE_NONE: "none",
    CAUSE_COMPLETED: "completed",
    CAUSE_V_MIN: "v_min",
    CAUSE_V_MAX: "v_max",
    CAUSE_CHARGE: "charge",
    CAUSE_DURATION: "duration",
    CAUSE_HOST_STOP: "host_stop",
    CAUSE_WATCHDOG: "watchdog",
    CAUSE_COMPLIANCE: "compliance",
    CAUSE_OVER_TEMP: "over_temp",
    CAUSE_OVER_FORCE: "over_force",
    CAUSE_OVER_CURRENT: "over_current",
    CAUSE_SENSOR_FAULT: "sensor_fault",
    CAUSE_BOOT: "boot",
    CAUSE_SETTLED: "settled",
    CAUSE_PRESSURE: "pressure",
    CAUSE_PRESSURE_RATE: "pressure_rate",
    CAUSE_STRAIN_SETTLED: "strain_settled",
    CAUSE_STRAIN_RATE: "strain_rate",
    CAUSE_PRESS_RUNAWAY: "press_runaway",
    CAUSE_PRESS_TRAVEL: "press_travel",
}

# ---- status --------------------------------------------------------------------------
# uptime_ms, frames_sent, samples_dropped, bad_frames_rx, heap_free, state, latched cause,
# current setpoint (A)
STATUS_FMT = "<IIIIIBBf"
STATUS_FIELDS = (
    "uptime_ms",
    "frames_sent",
    "samples_dropped",
    "bad_frames_rx",
    "heap_free",
    "state",
    "latched_cause",
    "setpoint_a",
)
STATE_IDLE = const(0)
STATE_RUNNING = const(1)
STATE_LATCHED = const(2)
STATE_NAMES = {STATE_IDLE: "idle", STATE_RUNNING: "running", STATE_LATCHED: "latched"}

# ---- log -----------------------------------------------------------------------------
# LOG payload: level u8 | UTF-8 text
LOG_TEXT_MAX = const(250)  # longer texts are cut (bytes of UTF-8)
LOG_DEBUG = const(10)
LOG_INFO = const(20)
LOG_WARNING = const(30)
LOG_ERROR = const(40)

import sys as _sys  # noqa: E402

if _sys.implementation.name == "micropython":
    # these name tables are for hosts: a board frees them (heap) and never reads them
    del MESSAGE_NAMES, NACK_NAMES, EVENT_NAMES, STATE_NAMES
del _sys
