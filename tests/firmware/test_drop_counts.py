# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""What the board counts when the host stops reading (protocol/README.md §5.2, §6.2), on
both VMs: STATUS `samples_dropped` counts samples only and equals the sum of the streams'
last `board_dropped`; a control frame the board could not queue still takes its seq, so
the host sees exactly `control_dropped` frames missing."""


def test_a_host_that_stops_reading_sees_every_dropped_sample_and_frame(mp):
    (r,) = mp("""
import struct
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 100, 1000, 1), keep_samples=True)
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.run_s(0.5)
r.link.accept = 0  # the host stops reading: frames refused, the outbox fills
for k in range(150):  # with ACKs, until control frames no longer fit
    r.link.send_command(1000 + k, defs.CMD_HEARTBEAT, ())
    r.run_s(0.02)
r.link.accept = None
r.run_s(0.5)
r.cmd(defs.CMD_SET_STREAMING, (0,))
r.run_s(0.3)
r.cmd(defs.CMD_GET_STATUS)
r.run_s(0.1)
told = {}
status = None
for t, flags, stream, seq, p in r.link.frames:
    if t == defs.MSG_SAMPLES:
        told[stream] = struct.unpack_from("<I", p, 10)[0]
    elif t == defs.MSG_STATUS:
        status = struct.unpack_from(defs.STATUS_FMT, p, 0)
seqs = r.link.seqs
emit([r.app.link.control_dropped, r.app.sampler.dropped, status[2], sum(told.values()),
      seqs[0], seqs[-1], len(seqs), len(set(seqs)), r.link.bad_crc])
""")
    control, sampler, status, told, first, last, n, distinct, bad = r
    assert bad == 0 and distinct == n and first == 0 and last < 0xFFFF
    # the scenario drops both kinds (else it tests nothing)
    assert control > 0 and sampler > 0
    assert status == sampler == told  # samples only, and what the frames told
    assert (last + 1) - n == control  # each control frame dropped left its seq out


def test_slots_before_streaming_are_not_counted_dropped(mp):
    # a long pass just before SET_STREAMING (commands, a STATUS heap scan: 18-35 ms on a
    # Pico) left the grids two periods late; the first streaming pass counted the slots
    # that passed before streaming as dropped samples (rp2 VM: one elec sample at each start,
    # STATUS samples_dropped 1 in test_no_sample_missed_at_default_rates)
    (r,) = mp("""
from rig import Rig
from protocol import defs
r = Rig(rates=(80, 100, 100, 1), keep_samples=True)
r.run_s(0.3)
r.hal.clock.sleep_us(35000)
r.cmd(defs.CMD_SET_STREAMING, (1,))
r.run_s(0.5)
r.cmd(defs.CMD_SET_STREAMING, (0,))
r.run_s(0.1)
flagged = [f[2] for f in r.link.frames if f[0] == defs.MSG_SAMPLES and f[1] & defs.FLAG_DROPPED]
emit([r.app.sampler.dropped, flagged, r.link.samples])
""")
    dropped, flagged, samples = r
    assert dropped == 0 and flagged == []
    assert samples[2] >= 49  # elec at 100 Hz for 0.5 s: sampled from the start
