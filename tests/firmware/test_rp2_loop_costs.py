# ruff: noqa: UP031  (MicroPython snippets built with %-formatting)
"""Loop costs that only showed on the official rp2 image in the instruction-level RP2040
(hil_tests/rp2040), checked here on both VMs:

- gc.mem_free()/gc.mem_alloc() scan the whole allocation table (about 9 ms each with the
  Pico's 240 KiB heap). The loop called both on every pass while command garbage waited
  for a slack that the default streams never leave: 17 ms a pass, 30 passes a second,
  60 % of the samples missed for 30 s after any command.
- A host that resends GET_INFO faster than the link drains a HELLO (or whose GET_INFOs
  pile up while the board boots: 19 of them on the rp2 VM) got one HELLO per GET_INFO:
  the outbox filled with HELLOs, ACKs and STATUS frames were dropped, and each rebuild cost
  17 ms of the loop.
- STATUS's heap scan at 1 Hz while streaming skipped samples; a waveform command's ~10 ms
  of decoding delayed the output past the start event's time; a gap made while an older
  frame waited for the link reached the host unflagged ("lost on the link").
"""

import pytest

from protocol import defs

# The app's view of gc: counts the heap scans and the collections, collects for real, and
# can advance the fake clock by what a collection costs on a Pico (16 ms), so that what a
# pause does to the sample grid shows on the virtual clock.
GC_DOUBLE = """
import gc
import firmware.app as A


class GcDouble:
    def __init__(self, clock=None, pause_us=0):
        self.clock = clock
        self.pause_us = pause_us
        self.scans = 0
        self.collections = 0

    def collect(self):
        self.collections += 1
        gc.collect()
        if self.pause_us:
            self.clock.sleep_us(self.pause_us)

    def mem_free(self):
        self.scans += 1
        return gc.mem_free()

    def mem_alloc(self):
        self.scans += 1
        return gc.mem_alloc()


def elec_times(r, passes):
    # the clock at the start of each pass that recorded an elec sample
    out = []
    smp = r.app.sampler
    clock = r.hal.clock
    for _ in range(passes):
        t = clock.ticks_us()
        n = smp.index[2]
        r.app.step()
        if smp.index[2] != n:
            out.append(t)
    return out
"""


def test_the_loop_never_scans_the_heap_per_pass(mp):
    (r,) = mp(
        GC_DOUBLE
        + """
from rig import Rig

r = Rig(rates=(80.0, 100.0, 100.0, 1.0))
app = r.app
app.set_streaming(1)
counting = GcDouble()
A.gc = counting
app.note_garbage()  # a command left garbage: the loop waits for slack to collect it
steps = 0
for _ in range(600):
    app.step()
    steps += 1
A.gc = gc
emit({"steps": steps, "scans": counting.scans, "collections": counting.collections,
      "gc_due": app.gc_due, "heap_free": app.heap_free, "heap_low": app.heap_low})
"""
    )
    assert r["steps"] == 600
    # default streams: the loop never has 20 ms to spare, so the garbage waits (and no
    # collection); what must not happen is a heap scan per pass while it waits
    assert r["collections"] == 0 and r["gc_due"]
    assert r["scans"] == 0, "%d heap scans in %d loop passes" % (r["scans"], r["steps"])
    assert r["heap_free"] > r["heap_low"] > 0


def test_a_low_heap_at_status_still_forces_a_collection(mp):
    """The low-heap check now uses STATUS's reading: a heap found below 1/4 free there is
    collected at the next pass with garbage waiting, without waiting for slack."""
    (r,) = mp(
        """
from rig import Rig

r = Rig(rates=(80.0, 100.0, 100.0, 1.0))
app = r.app
app.set_streaming(1)
app.note_garbage()
n0 = app.gc_collections
app.heap_free = app.heap_low - 1  # as if STATUS had found the heap nearly full
app.step()
emit({"forced": app.gc_forced, "collected": app.gc_collections - n0, "due": app.gc_due})
"""
    )
    assert r == {"forced": 1, "collected": 1, "due": False}


@pytest.mark.xfail(
    reason="the one-HELLO-per-burst rule is off: with it, a fresh emulated board left about "
    "1 GET_INFO in 5 without any reply under two busy loops (cause not found); issue 10",
    strict=False,
)
def test_get_info_burst_gets_one_hello_and_every_ack(mp):
    r = mp(
        """
from rig import Rig
from protocol import defs

r = Rig()
link = r.link
link.take()
link.accept = 64  # a USB CDC write takes one packet at a time
seqs = list(range(500, 512))
for s in seqs:  # GET_INFOs queued while the board was busy (booting)
    link.send_command(s, defs.CMD_GET_INFO, ())
r.run_s(0.5)
hellos = len(link.take(defs.MSG_HELLO))
acks = link.take(defs.MSG_ACK)
acked = sorted(int(f[4][0] | (f[4][1] << 8)) for f in acks)
emit({"hellos": hellos, "acked": acked, "dropped": r.app.link.control_dropped,
      "pending": r.app.link.hello_pending()})
# later, with the link idle, a GET_INFO gets its own HELLO again
link.send_command(600, defs.CMD_GET_INFO, ())
r.run_s(0.1)
emit({"hellos": len(link.take(defs.MSG_HELLO))})
"""
    )
    first, later = r
    assert first["acked"] == list(range(500, 512))
    assert first["dropped"] == 0
    # a HELLO answers every GET_INFO that arrives while it is still queued; the ACKs pump
    # the outbox, so it leaves during the burst and a later GET_INFO of it gets a second one
    assert 1 <= first["hellos"] <= 2, "%d HELLOs for 12 GET_INFOs" % first["hellos"]
    assert not first["pending"]
    assert later["hellos"] == 1


def test_waveform_starts_on_a_fresh_clock_reading(mp):
    """A waveform command takes ~10 ms to decode and check on a Pico (rp2 VM). The start
    was anchored to the clock reading taken at the top of the loop pass, so the output
    switched on that much after EV_WAVEFORM_START's time and the first phase was short
    (a 50 ms pulse measured 46 ms on the pins). Here the command costs 15 ms of device time:
    the output must switch at the time the start event carries."""
    (r,) = mp(
        """
from rig import Rig
from protocol import defs

r = Rig()
app = r.app
clock = r.hal.clock
apply = app.commands.apply


def slow_apply(cmd_id, a):
    out = apply(cmd_id, a)
    clock.sleep_us(15000)  # decoding + range checks on a Pico
    return out


app.commands.apply = slow_apply
pin = r.hal.source.pin_enable
seen = []
set_pin = pin.value


def value(v=None):
    if v == 1:
        seen.append((clock.ticks_diff(clock.ticks_us(), app.dc.raw), app.dc.t30))
    return set_pin(v)


pin.value = value
a = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 0.05, 0.05, 1, 0, 0, 0, 0))
r.run_s(0.3)
starts = r.events(defs.EV_WAVEFORM_START)
edges = r.events(defs.EV_EDGE)
emit({"ack": a[0], "seen": seen, "start_t": starts[0][0] & 0x3FFFFFFF,
      "off_t": [e[0] & 0x3FFFFFFF for e in edges if e[4] == 0.0]})
"""
    )
    assert r["ack"] == "ack"
    stale_us, t30_on = r["seen"][0]
    assert stale_us == 0, "output switched %d us after the clock reading it was timed by" % stale_us
    assert r["start_t"] == t30_on
    # the pulse's end is 50 ms after its start event
    assert r["off_t"][0] - r["start_t"] == 50000


def test_a_gap_is_flagged_on_the_frame_after_it(mp):
    """Samples skipped while an older frame waits for the link (refused, pending) must be
    reported by FLAG_DROPPED on the first frame after the gap. Seen on the rp2 VM as
    "samples lost on the USB link": the flag went out on the pending frame (before the gap),
    was cleared by sending it, and the frame after the gap came without it."""
    r = mp(
        """
from rig import Rig
from protocol import defs

r = Rig(rates=(80.0, 100.0, 100.0, 1.0), keep_samples=True)
app = r.app
smp = app.sampler
link = r.link
app.set_streaming(1)
r.run_s(0.3)
link.accept = 0  # the host stops reading: the next elec frame is refused and kept
n = 0
while not smp.pending[2] and n < 2000:
    app.step()
    n += 1
skipped0 = smp.dropped
r.hal.clock.sleep_us(45000)  # the loop is late by 4 elec periods
app.step()
link.accept = None
r.run_s(0.6)
app.set_streaming(0)
r.run_s(0.1)
for f in link.frames:
    if f[0] == defs.MSG_SAMPLES and f[2] == 2:
        p = f[4]
        first = (p[0] | (p[1] << 8) | (p[2] << 16) | ((p[3] & 0x3F) << 24))
        emit([f[3], first, p[8] | (p[9] << 8), f[1] & defs.FLAG_DROPPED])
emit({"pending_reached": n < 2000, "skipped": smp.dropped - skipped0})
"""
    )
    info = r[-1]
    frames = sorted(r[:-1])  # by link seq
    assert info["pending_reached"] and info["skipped"] >= 4
    gaps = 0
    for prev, cur in zip(frames, frames[1:], strict=False):
        if cur[1] != prev[1] + prev[2]:
            gaps += 1
            assert cur[3], "elec records %d..%d missing, the next frame is not flagged" % (
                prev[1] + prev[2],
                cur[1] - 1,
            )
    assert gaps >= 1


def test_status_scans_the_heap_only_when_not_streaming(mp):
    """STATUS's heap_free is a heap scan (~9 ms on a Pico, about one 100 Hz sample period):
    at 1 Hz while streaming it made the default streams skip samples every second on the rp2
    VM. While streaming, STATUS repeats the last measurement."""
    (r,) = mp(
        """
from rig import Rig

r = Rig(rates=(80.0, 100.0, 100.0, 1.0))
app = r.app
hal = r.hal
free = hal.heap_free
calls = [0]


def counted():
    calls[0] += 1
    return free()


hal.heap_free = counted
r.run_s(3.0)
idle = calls[0]
app.set_streaming(1)
r.run_s(3.0)
streaming = calls[0] - idle
emit({"idle": idle, "streaming": streaming, "reported": app.heap_free})
"""
    )
    assert r["idle"] >= 2, r
    assert r["streaming"] == 0, r
    assert r["reported"] > 0


# The waveform's first two event codes, and each EV_EDGE's time after EV_WAVEFORM_START (us).
EDGE_TIMES = """
from protocol import defs


def edge_times(r):
    evs = [e for e in r.events() if e[1] in (defs.EV_WAVEFORM_START, defs.EV_EDGE)]
    clock = r.hal.clock
    at = [clock.ticks_diff(e[0], evs[0][0]) for e in evs if e[1] == defs.EV_EDGE]
    return [e[1] for e in evs[:2]], at
"""


def test_edges_switch_before_the_pass_samples(mp):
    """Sampling the due streams takes 1-7 ms of a loop pass on a Pico (FBG lines, frames to
    the link). The waveform's phase changes ran after it, so the pins switched that long
    after the time their EV_EDGE carries (6.7 ms on the rp2 VM). Reading the link comes
    before the edges and writing EV_WAVEFORM_START came before the output switched (1-4 ms
    on the rp2 VM). Here sampling costs 5 ms of device time per pass and every link read
    and write 2 ms: every edge, the first included, must switch the pins at the clock
    reading its events carry, and EV_WAVEFORM_START still comes before the first EV_EDGE."""
    (r,) = mp(
        EDGE_TIMES
        + """
from rig import Rig
from protocol import defs

r = Rig()
app = r.app
clock = r.hal.clock
smp = app.sampler
poll = smp.poll


def slow_poll(now):
    out = poll(now)
    clock.sleep_us(5000)
    return out


smp.poll = slow_poll
read, write = r.link.readinto, r.link.write


def slow_read(buf):
    clock.sleep_us(2000)
    return read(buf)


def slow_write(buf, n, off=0):
    clock.sleep_us(2000)
    return write(buf, n, off)


r.link.readinto, r.link.write = slow_read, slow_write
pin = r.hal.source.pin_enable
late = []
set_pin = pin.value


def value(v=None):
    if v is not None:
        late.append(clock.ticks_diff(clock.ticks_us(), app.dc.raw))
    return set_pin(v)


pin.value = value
a = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 0.05, 0.05, 3, 0, 0, 0, 0))
r.run_s(0.5)
first, at = edge_times(r)
emit({"ack": a[0], "late": late, "edges": len(at), "first": first, "at": at})
"""
    )
    assert r["ack"] == "ack" and r["edges"] >= 5
    assert r["first"] == [defs.EV_WAVEFORM_START, defs.EV_EDGE]
    assert max(r["late"]) == 0, "pins switched up to %d us after their edge's time" % max(r["late"])
    assert r["at"] == [0, 50000, 100000, 150000, 200000, 250000]


def test_a_long_pass_does_not_make_the_next_edge_late(mp):
    """The loop sleeps from where a pass ends, but the sleep was measured from the pass's
    start: a pass that took 3.5 ms (parsing interrogator lines costs ~2.6 ms under the
    emulated rp2040's prices) switched the next edge 3.5 ms late, on every pulse (the
    emulator bench's edge p99 was 3.3 ms). Here elec at 50 Hz wakes the loop 4 ms before
    each pulse's end (outside the edge guard), its pass costs 3.5 ms, and the board sleeps
    without periodic wake-ups: every edge must carry its commanded time."""
    (r,) = mp(
        EDGE_TIMES
        + """
import fakehal
from rig import Rig
from protocol import defs

d = dict(fakehal.DEFINITION)
d["streams"] = {n: {"rate_hz": 50.0, "enabled": n == "elec"} for n in defs.STREAM_NAMES}
r = Rig(definition=d, max_sleep_us=1000000)
clock = r.hal.clock
smp = r.app.sampler
poll = smp.poll


def slow_poll(now):
    out = poll(now)
    if smp.fresh & 4:
        clock.sleep_us(3500)
    return out


smp.poll = slow_poll
assert r.cmd(defs.CMD_SET_STREAMING, (1,))[0] == "ack"
a = r.cmd(defs.CMD_PULSE_TRAIN, (0, 0.02, 0.024, 0.026, 3, 0, 0, 0, 0))
r.run_s(0.5)
emit({"ack": a[0], "at": edge_times(r)[1]})
"""
    )
    assert r["ack"] == "ack"
    assert r["at"] == [0, 24000, 50000, 74000, 100000, 124000]


def test_garbage_is_collected_before_streaming_not_during_it(mp):
    """The commands that configure the streams leave garbage. With the default streams the
    loop never has 20 ms to spare, so that garbage used to wait for the 30 s deadline and
    then stall the loop 16-20 ms inside a sample period (rp2 VM: two elec samples 20 ms
    apart while streaming). Now it is collected while nothing is streamed (once the host's
    commands paused for 50 ms: the next command of a burst is not held up), or as
    streaming starts, and the stream's samples stay on their grid. That pause, plus the rest of the
    command's pass (its ACK and event: 4 ms a write here), must not make the first
    streaming pass skip a slot whatever the grid's phase (rp2 VM: one load and one elec
    sample dropped at the start)."""
    (r,) = mp(
        GC_DOUBLE
        + """
from rig import Rig
from protocol import defs

drops = []
for phase_us in range(0, 10000, 1000):
    # sleeps as long as the deadlines allow, as on a board (the Rig's default 2 ms cap hid
    # a pass that overslept by the time its command took)
    r = Rig(rates=(80.0, 100.0, 100.0, 1.0), max_sleep_us=1000000)
    app = r.app
    pausing = GcDouble(r.hal.clock, 16000)
    A.gc = pausing
    app.note_garbage()  # a CONFIG_STREAM, not streaming yet
    r.run_s(0.04)
    soon = pausing.collections  # the host may send more at once: not yet
    r.run_s(0.02)
    idle = pausing.collections - soon
    r.run_s(0.5 + phase_us / 1e6)
    app.note_garbage()  # the SET_STREAMING command's own garbage
    write = r.link.write

    def slow_write(buf, n, off=0, clock=r.hal.clock, write=write):
        clock.sleep_us(4000)
        return write(buf, n, off)

    r.link.write = slow_write
    assert r.cmd(defs.CMD_SET_STREAMING, (1,))[0] == "ack"
    r.link.write = write
    at_start = pausing.collections
    ts = elec_times(r, 3000)
    A.gc = gc
    drops.append(app.sampler.dropped)
# from the second sample on: the first is taken by whichever pass follows the command's
# reply (up to the Rig's 2 ms sleep late), the grid runs from the slot it was due at
gaps = [r.hal.clock.ticks_diff(ts[i + 1], ts[i]) for i in range(1, len(ts) - 1)]
emit({"soon": soon, "idle": idle, "at_start": at_start - soon - idle,
      "during": pausing.collections - at_start, "n": len(ts), "max_gap": max(gaps),
      "min_gap": min(gaps), "due": app.gc_due, "dropped": drops})
"""
    )
    assert r["soon"] == 0, "collected while the host may still be sending a burst"
    assert r["idle"] == 1, "garbage made while not streaming waits for slack"
    assert r["at_start"] == 1 and r["during"] == 0 and not r["due"]
    assert r["n"] > 20 and r["dropped"] == [0] * 10
    assert 9000 <= r["min_gap"] and r["max_gap"] <= 11000, r


def test_a_pass_that_collected_does_not_sleep_its_stale_wait(mp):
    """A collection at slack used to be followed by the sleep planned before it: every
    sample behind it came 16 ms late (the slot then looks like a pause of the loop)."""
    (r,) = mp(
        GC_DOUBLE
        + """
from rig import Rig

r = Rig(rates=(10.0, 10.0, 10.0, 1.0), max_sleep_us=1000000)
app = r.app
app.set_streaming(1)
pausing = GcDouble(r.hal.clock, 16000)
A.gc = pausing
elec_times(r, 50)
app.note_garbage()  # a command while streaming: collected at the next 20 ms of slack
ts = elec_times(r, 200)
A.gc = gc
gaps = [r.hal.clock.ticks_diff(ts[i + 1], ts[i]) for i in range(len(ts) - 1)]
emit({"collections": pausing.collections, "n": len(ts), "max_gap": max(gaps)})
"""
    )
    assert r["collections"] == 1 and r["n"] > 10
    assert r["max_gap"] <= 100000 + 1000, r
