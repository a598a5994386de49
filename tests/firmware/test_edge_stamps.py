# ruff: noqa: UP031  (MicroPython snippets built with %-formatting)
"""An edge's event carries the time the output switched (on both VMs).

On the rp2 VM the pins switched 1-4 ms after the times EV_WAVEFORM_START and EV_EDGE carry:
the start event was built and written before the output switched, and a pass's edge was
stamped with the pass's start although reading the link (commands, the outbox's writes)
came first. Here every link read and write costs 2 ms of the fake clock, as a slow pass
does on a Pico."""

from protocol import defs

PULSES = """
import struct
from rig import Rig
from protocol import defs

r = Rig(rates=(80.0, 100.0, 100.0, 1.0), max_sleep_us=1000000)
app = r.app
clock = r.hal.clock
switches = []  # (raw ticks, duty) of each change of the PWM duty
pwm = app.source.out


class Recorder:
    def __init__(self, inner):
        self.inner = inner

    def duty_u16(self, d=None):
        if d is not None and d != self.inner.duty_u16():
            switches.append((clock.ticks_us(), d))
        return self.inner.duty_u16(d)


app.source.out = Recorder(pwm)
read, write = r.link.readinto, r.link.write


def slow_read(buf):
    clock.sleep_us(2000)
    return read(buf)


def slow_write(buf, n, off=0):
    clock.sleep_us(2000)
    return write(buf, n, off)


assert r.cmd(defs.CMD_SET_STREAMING, (1,))[0] == "ack"
r.run_s(0.1)
r.link.readinto, r.link.write = slow_read, slow_write
r.link.send_command(7, defs.CMD_PULSE_TRAIN, (0, 0.01, 20000, 30000, 3, 0.0, 0.0, 0.0, 0))
r.run_s(0.4)
r.link.readinto, r.link.write = read, write
app.step()
ref_raw, ref_dev = app.dc.raw, app.dc.wire_us()
evs = [(e[0], e[1]) for e in r.events() if e[1] in (defs.EV_WAVEFORM_START, defs.EV_EDGE)]
emit({"events": evs, "switches": [(ref_dev + clock.ticks_diff(t, ref_raw), d)
                                  for t, d in switches]})
"""


def test_pins_switch_at_the_time_their_events_carry(mp):
    (r,) = mp(PULSES)
    evs, sw = r["events"], r["switches"]
    codes = [c for _, c in evs]
    assert codes[:2] == [defs.EV_WAVEFORM_START, defs.EV_EDGE], codes
    assert codes.count(defs.EV_EDGE) == 6 and len(sw) == 6, (codes, sw)
    edges = [t for t, c in evs if c == defs.EV_EDGE]
    start = evs[0][0]
    assert abs(sw[0][0] - start) <= 500, "pins %d us after the start event" % (sw[0][0] - start)
    late = [s - e for (s, _), e in zip(sw, edges, strict=True)]
    assert all(abs(x) <= 500 for x in late), "pins after each edge event (us): %s" % late
