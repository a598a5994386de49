"""The link ledger and the fault injector, without a board: synthetic streams built with the
host's wire encoder, damage noted before each chunk is fed (as the proxy does)."""

from __future__ import annotations

import gc
import tracemalloc
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from host_sdk.emulator import device_clock
from host_sdk.emulator import ledger as ledger_module
from host_sdk.emulator.ledger import LinkLedger
from host_sdk.emulator.link_faults import LinkFaults
from host_sdk.wire import encoder, synth
from host_sdk.wire.decoder import Decoder
from host_sdk.wire.messages import Gap, Status
from protocol import defs

ELEC_R = 13  # defs.ELEC_RECORD_FMT


def _samples(
    stream: int, first: int, n: int, t_us: int, *, size: int = ELEC_R, dt_us: int = 0, **kw: int
) -> bytes:
    """A SAMPLES frame of zero records but for the leading t_us of the first and the last
    record (all the ledger reads)."""
    records = bytearray(n * size)
    for k in (0, n - 1):
        records[k * size : k * size + 4] = ((t_us + k * dt_us) & 0xFFFFFFFF).to_bytes(4, "little")
    return encoder.encode_samples(
        stream, first, bytes(records), n_records=n, t_first_us=t_us & 0xFFFFFFFF, **kw
    )


def _feed_in(led: LinkLedger, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        led.feed(data[i : i + chunk])


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_frames_are_classified_as_they_complete(chunk: int) -> None:
    a = _samples(2, 0, 10, 0)
    b = _samples(2, 10, 10, 100_000)
    c = _samples(2, 20, 10, 200_000)
    d = _samples(2, 30, 10, 300_000)
    text = b"boot \xa5\x5a\x10\x00 noise\n"  # a sync word in text is not a frame (CRC)
    wire = text + a + b + c + d
    oa = len(text)
    ob, oc, od = oa + len(a), oa + len(a) + len(b), oa + len(a) + len(b) + len(c)
    led = LinkLedger()
    led.note_flipped(3)  # in the text: harms no frame
    led.note_dropped(oa)  # a's first byte
    led.note_inserted(ob)  # between a and b: b arrives intact
    led.note_inserted(oc + 5)  # inside c
    led.note_flipped(od + len(d) - 1)  # d's last byte (its CRC)
    _feed_in(led, wire, chunk)
    assert led.frames_seen == 4
    assert led.sent_samples() == {2: 40}
    assert led.lost_samples() == {2: 30}
    assert led.lost_ranges(2) == [(0, 10), (20, 10), (30, 10)]
    assert led.damaged_offsets() == [3, oa, od + len(d) - 1]
    assert (led.bytes_dropped, led.bytes_flipped, led.bytes_inserted) == (1, 2, 2)


def test_discarded_bytes_lose_every_frame_they_touch() -> None:
    frames = [_samples(0, 10 * k, 10, 0, size=9) for k in range(5)]
    offs = [sum(len(f) for f in frames[:k]) for k in range(6)]
    wire = b"".join(frames)
    led = LinkLedger()
    # the board wrote these chunks while no host had the port: from inside frame 1 to inside
    # frame 3, in two chunks (contiguous discards merge into one range)
    cut1, cut2, cut3 = offs[1] + 5, offs[2] + 3, offs[3] + 20
    led.feed(wire[:cut1])
    led.note_discarded(cut1, cut2)
    led.feed(wire[cut1:cut2])
    led.note_discarded(cut2, cut3)
    led.feed(wire[cut2:cut3])
    led.feed(wire[cut3:])
    assert led.lost_ranges(0) == [(10, 10), (20, 10), (30, 10)]
    assert list(led.unplugged) == [(cut1, cut3)]
    assert led.bytes_discarded == cut3 - cut1


def test_lose_tail_counts_frames_handed_to_a_host_that_left() -> None:
    frames = [_samples(3, 50 * k, 50, 0, size=10) for k in range(4)]
    wire = b"".join(frames)
    f0, f1 = len(frames[0]), len(frames[1])
    led = LinkLedger()
    led.feed(wire[: f0 + f1 + 7])  # frames 0, 1 complete; frame 2 has begun
    assert led.lost_samples() == {}
    led.lose_tail(cut=f0 + 3, flushed=f1 + 4)  # the host read up to 3 bytes into frame 1
    assert led.lost_ranges(3) == [(50, 50)]
    led.note_discarded(led.bytes_out, len(wire))  # no host any more
    led.feed(wire[f0 + f1 + 7 :])
    assert led.lost_ranges(3) == [(50, 50), (100, 50), (150, 50)]
    assert led.bytes_flushed == f1 + 4


def test_device_clock_from_frames_unwraps_and_restarts_at_boot() -> None:
    led = LinkLedger()
    t = 0
    seq = 0
    for _ in range(3 * 4295):  # 3 wraps of the u32 µs clock, one EVENT per second
        t += 1_000_000
        led.feed(encoder.encode_event(t & 0xFFFFFFFF, defs.EV_EDGE, seq=seq & 0xFFFF))
        seq += 1
    assert led.device_time_s == pytest.approx(t * 1e-6)
    # a sample frame whose first record is older does not move the clock back; its last
    # record (every record starts with t_us) is what counts
    rec = bytearray(10 * ELEC_R)
    rec[9 * ELEC_R : 9 * ELEC_R + 4] = ((t + 90_000) & 0xFFFFFFFF).to_bytes(4, "little")
    led.feed(
        encoder.encode_samples(
            2, 0, bytes(rec), n_records=10, t_first_us=(t - 5_000_000) & 0xFFFFFFFF
        )
    )
    assert led.device_time_s == pytest.approx((t + 90_000) * 1e-6)
    st = Status((t // 1000 + 1000) & 0x3FFFFFFF, 0, 0, 0, 0, 0, 0, 0.0)
    led.feed(encoder.encode_status(st))  # STATUS uptime_ms (30 bits, as the firmware sends)
    assert led.device_time_s == pytest.approx(t * 1e-6 + 1.0)
    total = led.clock.total_us
    led.feed(encoder.encode_event(500_000, defs.EV_BOOT, flags=defs.FLAG_BOOT))
    assert led.device_time_s == pytest.approx(0.5)
    assert led.clock.total_us == total + 500_000


def test_speed_meter() -> None:
    m = device_clock.SpeedMeter(window_s=2.0, min_interval_s=0.0)
    assert m.recent() == 0.0
    for k in range(11):  # 10 device s per wall s for 5 s, then stopped for 5 s
        m.sample(k * 0.5, min(k, 10) * 5.0 if k <= 10 else 50.0)
    for k in range(11, 21):
        m.sample(k * 0.5, 50.0)
    assert m.recent() == pytest.approx(0.0)
    assert m.since_start() == pytest.approx(5.0)


def test_fault_injector_and_decoder_agree_with_the_ledger() -> None:
    """Random drops, flips and insertions over a minute of synthetic board output: the
    decoder's link gaps are exactly the ledger's lost samples, range for range."""
    session = synth.session(60.0, seed=4)
    wire = session.wire
    led = LinkLedger()
    faults = LinkFaults(seed=9)
    dec = Decoder()
    gaps: list[Gap] = []
    start, stop = len(wire) // 4, 3 * len(wire) // 4  # every stream has been seen by then
    for i in range(0, len(wire), 4096):
        if start <= i < stop:
            faults.apply({"drop_rate": 3e-5, "flip_rate": 3e-5, "insert_rate": 3e-5})
        else:
            faults.clear()
        chunk = wire[i : i + 4096]
        out = faults.damage(chunk, led.bytes_out, led)
        led.feed(chunk)
        gaps += [m for m in dec.feed(out) if isinstance(m, Gap)]
    lost = led.lost_samples()
    assert sum(lost.values()) > 0 and dec.bad_frames > 0
    for s in lost:
        found = sorted((g.first_index, g.count) for g in gaps if g.stream == s)
        assert found == _merge(led.lost_ranges(s)), s
    assert {g.stream for g in gaps} <= set(lost)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, n in sorted(ranges):
        if out and out[-1][0] + out[-1][1] == a:
            out[-1][1] += n
        else:
            out.append([a, n])
    return [(a, n) for a, n in out]


# ---- a day of board output in constant memory ----------------------------------------------

# the emulated board's default rates (boards/emulated/board.py): (id, rate Hz, record size)
DAY_STREAMS = (
    (defs.STREAM_LOAD, 10.0, 9),
    (defs.STREAM_FBG, 100.0, 13),  # two gratings
    (defs.STREAM_ELEC, 100.0, 13),
    (defs.STREAM_TEMP, 1.0, 10),
)
_RATE_SIZE = {s: (rate, size) for s, rate, size in DAY_STREAMS}
MAX_RANGES = 300


@dataclass
class _Truth:
    sent: dict[int, int] = field(default_factory=dict)
    lost: dict[int, int] = field(default_factory=dict)
    ranges: dict[int, deque[tuple[int, int]]] = field(default_factory=dict)
    frames: int = 0


def _boot_minutes(
    boot_s: int, boot_flag_first: bool
) -> Iterator[list[tuple[bytes, int, int, int]]]:
    """One boot's output, a device minute at a time: [(frame, stream, first_index, n)]
    (stream -1 for STATUS frames), in sending order."""
    caps = {
        s: (defs.DEFAULT_SAMPLE_PAYLOAD - defs.SAMPLES_HEADER_SIZE) // r for s, _, r in DAY_STREAMS
    }
    next_frame = {s: 0 for s, _, _ in DAY_STREAMS}
    seq = 0
    for minute in range(boot_s // 60):
        t_end = (minute + 1) * 60_000_000
        items: list[tuple[int, int, int, int]] = []  # (t_send, stream, k, 0)
        for s, rate, _r in DAY_STREAMS:
            cap = caps[s]
            while True:
                k = next_frame[s]
                t_send = int((k * cap + cap - 1) * 1e6 / rate)
                if t_send >= t_end:
                    break
                items.append((t_send, s, k, 0))
                next_frame[s] = k + 1
        items += [(sec * 1_000_000, -1, sec, 0) for sec in range(minute * 60 + 1, minute * 60 + 61)]
        items.sort()
        out = []
        for _t, s, k, _ in items:
            flags = defs.FLAG_BOOT if (seq == 0 and boot_flag_first) else 0
            if s < 0:
                st = Status(k * 1000 & 0x3FFFFFFF, seq, 0, 0, 50_000, 0, 0, 0.0)
                out.append((encoder.encode_status(st, seq=seq & 0xFFFF, flags=flags), -1, 0, 0))
            else:
                rate, size = _RATE_SIZE[s]
                cap = caps[s]
                t_first = int(k * cap * 1e6 / rate)
                frame = _samples(
                    s,
                    k * cap,
                    cap,
                    t_first,
                    size=size,
                    dt_us=int(1e6 / rate),
                    seq=seq & 0xFFFF,
                    flags=flags,
                )
                out.append((frame, s, k * cap, cap))
            seq += 1
        yield out


@pytest.mark.timeout(900)
def test_a_day_of_output_in_constant_memory_with_exact_counts() -> None:
    """24 h of device time at the emulated board's default rates (two 12 h boots), with
    byte faults, an hour with no host and a restart: the ledger's counts are exact, and its
    memory does not grow. Memory is traced (tracemalloc, slow) over the last 4 hours only:
    what the ledger allocated since hour 20 and still holds is the same at hour 24 as at
    hour 21, when its bounded windows had already turned over."""
    led = LinkLedger(max_lost_ranges=MAX_RANGES)
    truth = _Truth()
    boot_s = 12 * 3600
    held: dict[int, int] = {}
    minute_no = 0
    try:
        for boot in range(2):
            if boot:
                led.new_boot()
            for minute in _boot_minutes(boot_s, boot_flag_first=True):
                no_host = 180 <= minute_no < 240  # hour 3: nobody has the port open
                _feed_minute(led, minute, truth, no_host)
                minute_no += 1
                if minute_no == 20 * 60:
                    tracemalloc.start()
                elif minute_no in (21 * 60, 24 * 60):
                    gc.collect()
                    held[minute_no // 60] = _ledger_memory()
    finally:
        tracemalloc.stop()
    assert led.sent_samples() == truth.sent
    assert led.lost_samples() == truth.lost
    assert sum(truth.lost.values()) > 0
    for s in truth.ranges:
        assert led.lost_ranges(s) == list(truth.ranges[s])
        assert len(led.lost_ranges(s)) <= MAX_RANGES
    assert led.frames_seen == truth.frames and led.boots == 2
    assert led.device_time_s == pytest.approx(boot_s, abs=2.0)  # since the restart
    assert led.clock.total_us * 1e-6 == pytest.approx(2 * boot_s, abs=4.0)
    # the unbounded ledger kept ~455 B per frame: ~30 MB more over those 3 hours
    assert held[24] - held[21] < 256 * 1024, held
    assert held[24] < 4 * 1024 * 1024, held


def _ledger_memory() -> int:
    snap = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(True, ledger_module.__file__),
            tracemalloc.Filter(True, device_clock.__file__),
        ]
    )
    return sum(stat.size for stat in snap.statistics("filename"))


def _feed_minute(
    led: LinkLedger, minute: list[tuple[bytes, int, int, int]], truth: _Truth, no_host: bool
) -> None:
    """Feed one minute in 64 KiB chunks, noting faults first (as the proxy does); the
    truth follows from where the faults fell."""
    wire = b"".join(f for f, _, _, _ in minute)
    base = led.bytes_out
    damage: list[tuple[int, int]] = []  # (offset, kind) kind 0 drop, 1 flip, 2 insert
    lost_spans: list[tuple[int, int]] = []
    offs = []
    pos = base
    for i, (frame, _s, _a, _n) in enumerate(minute):
        offs.append(pos)
        n_frame = truth.frames + i
        if n_frame % 997 == 0:
            damage.append((pos + len(frame) // 2, 0))
        if n_frame % 1499 == 0:
            damage.append((pos, 2))  # at the frame's start: harmless
        if n_frame % 1999 == 0:
            damage.append((pos + 3, 2))
        if n_frame % 2503 == 0:
            damage.append((pos + len(frame) - 1, 1))
        pos += len(frame)
    damage.sort()
    di = 0
    for c in range(0, len(wire), 65536):
        a, b = base + c, base + min(len(wire), c + 65536)
        if no_host:
            led.note_discarded(a, b)
            lost_spans.append((a, b))
            while di < len(damage) and damage[di][0] < b:
                di += 1  # a discarded chunk goes through no fault injector
        else:
            while di < len(damage) and damage[di][0] < b:
                off, kind = damage[di]
                (led.note_dropped, led.note_flipped, led.note_inserted)[kind](off)
                # a dropped or flipped byte spans [off, off + 1); an insertion is a point
                lost_spans.append((off, off + 1) if kind < 2 else (off, off))
                di += 1
        led.feed(wire[c : c + 65536])
    for (frame, s, first, n), start in zip(minute, offs, strict=True):
        end = start + len(frame)
        hit = any(
            (lo < end and hi > start) if hi > lo else (start < lo < end) for lo, hi in lost_spans
        )
        if s >= 0:
            truth.sent[s] = truth.sent.get(s, 0) + n
            if hit:
                truth.lost[s] = truth.lost.get(s, 0) + n
                truth.ranges.setdefault(s, deque(maxlen=MAX_RANGES)).append((first, n))
    truth.frames += len(minute)
