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
