"""Exact loss attribution (protocol/README.md §6.2), property-tested.

A board model (boots, sample indices from anywhere near 2**32, board drops between frames,
STATUS frames) and a link model (frames lost, duplicated, swapped with the next one, the
boot frame lost) against an oracle written from the spec: every combination must give
exactly the board drops, link losses, late samples, duplicates and reorders it should,
and the delivered records must be exactly those of the frames that arrived in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sdk.wire import Decoder, Gap, Reboot, SampleBlock, Status, encode_samples, encode_status
from host_sdk.wire.encoder import reference_hello
from protocol import defs

HELLO = reference_hello()
ELEC = HELLO.stream(defs.STREAM_ELEC)
STATUS = Status(1, 2, 3, 4, 5, 0, 0, 0.0)


@dataclass
class Frame:
    boot: int
    seq: int
    first: int  # unwrapped index (-1: a STATUS frame)
    n: int
    dropped: int  # cumulative board drops before `first`
    wire: bytes = field(repr=False)
    boot_frame: bool = False


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[Frame], bool]:
    """Frames of one or two boots, in sending order; whether the first is a boot frame."""
    frames: list[Frame] = []
    boots = draw(st.integers(1, 2))
    first_is_boot = draw(st.booleans())
    for b in range(boots):
        boot = 0x1000 + b
        fresh = b > 0 or first_is_boot
        index = 0 if fresh else draw(st.sampled_from([0, 12345, 2**32 - 40, 2**32 - 1]))
        seq = 0 if fresh else draw(st.sampled_from([0, 700, 0xFFF0]))
        dropped = 0 if fresh else draw(st.sampled_from([0, 5, 2**32 - 3]))
        for k in range(draw(st.integers(1, 14))):
            flags = defs.FLAG_BOOT if fresh and k == 0 else 0
            if draw(st.integers(0, 5)) == 0:
                w = encode_status(STATUS, seq=seq & 0xFFFF, flags=flags, boot=boot)
                frames.append(Frame(boot, seq, -1, 0, 0, w, bool(flags)))
            else:
                drop = draw(st.sampled_from([0, 0, 0, 1, 7]))
                index += drop
                dropped += drop
                n = draw(st.integers(1, 6))
                rec = np.zeros(n, ELEC.dtype)
                rec["t_us"] = np.arange(n)
                rec["voltage"] = np.arange(index, index + n) & 0x7FFFFFFF
                w = encode_samples(
                    2,
                    index & 0xFFFFFFFF,
                    rec,
                    seq=seq & 0xFFFF,
                    flags=flags | (defs.FLAG_DROPPED if drop else 0),
                    boot=boot,
                    board_dropped=dropped & 0xFFFFFFFF,
                )
                frames.append(Frame(boot, seq, index, n, dropped, w, bool(flags)))
                index += n
            seq += 1
    return frames, first_is_boot


@st.composite
def links(draw: st.DrawFn, frames: list[Frame]) -> list[Frame]:
    """What arrives: each frame lost, kept, or duplicated; some swapped with the next."""
    out: list[Frame] = []
    for f in frames:
        fate = draw(st.sampled_from(["ok", "ok", "ok", "lost", "dup"]))
        if fate != "lost":
            out.append(f)
        if fate == "dup":
            out.append(f)
    k = 0
    while k + 1 < len(out):
        # (never across a reboot: the board takes a while to boot, and a frame of an
        # unseen earlier boot arriving after a new boot's is indistinguishable from a reboot)
        if (
            out[k] is not out[k + 1]
            and out[k].boot == out[k + 1].boot
            and draw(st.integers(0, 4)) == 0
        ):
            out[k], out[k + 1] = out[k + 1], out[k]
            k += 2
        else:
            k += 1
    return out


def oracle(sent: list[Frame], arrived: list[Frame]) -> dict:
    """The spec, literally (§6.2)."""
    seen: set[tuple[int, int]] = set()
    top: dict[int, int] = {}  # boot -> highest seq arrived
    boots: list[int] = []
    fresh: dict[int, bool] = {}
    nxt: dict[int, int] = {}  # sample index expected next (unwrapped), current boot
    base: dict[int, int] = {}  # where index tracking began, per boot
    d_base: dict[int, int] = {}
    d_last: dict[int, int] = {}
    delivered: list[tuple[int, int]] = []
    res = {"dup": 0, "late_frames": 0, "late": 0, "frames_lost": 0, "stale": 0}
    seq_arrived: dict[int, set[int]] = {}
    seq_first: dict[int, int] = {}
    for f in arrived:
        if boots and f.boot != boots[-1] and f.boot in boots:
            res["stale"] += 1  # a late frame of an earlier boot
            continue
        if not boots or f.boot != boots[-1]:
            # a reader knows a boot's seq and indices start at 0 when it saw that boot
            # begin: another boot id after the first, or a first frame with FLAG_BOOT
            boots.append(f.boot)
            fresh[f.boot] = len(boots) > 1 or f.boot_frame
            seq_arrived[f.boot] = set()
        b = f.boot
        if (b, f.seq) in seen:
            res["dup"] += 1
            continue
        seen.add((b, f.seq))
        seq_first.setdefault(b, 0 if fresh[b] else f.seq)
        if f.seq < seq_first[b] or (b in top and f.seq < top[b]):
            res["late_frames"] += 1
        else:
            top[b] = f.seq
        seq_arrived[b].add(f.seq)
        if f.first < 0:
            continue
        if b not in nxt:
            nxt[b] = base[b] = 0 if fresh[b] else f.first
            d_base[b] = d_last[b] = 0 if fresh[b] else f.dropped
        if f.first >= nxt[b]:  # in order for its stream (by index)
            delivered.append((b, f.first, f.n))
            nxt[b] = f.first + f.n
            d_last[b] = f.dropped
        elif f.first >= base[b]:
            res["late"] += f.n
    res["board"] = sum(d_last[b] - d_base[b] for b in nxt)
    # a reader that joined a running board: drops before its first frame of the stream
    # (the u32 on the wire)
    res["board_before"] = sum(d_base[b] & 0xFFFFFFFF for b in nxt)
    spanned = sum(nxt[b] - base[b] for b in nxt)
    res["lost"] = spanned - sum(n for _, _, n in delivered) - res["board"] - res["late"]
    for b in boots:
        res["frames_lost"] += sum(
            1
            for f in sent
            if f.boot == b and seq_first[b] <= f.seq <= top[b] and f.seq not in seq_arrived[b]
        )
    # a reader that joins a running board unwraps indices from the first one it sees
    shift = {b: 0 for b in boots}
    if boots and not fresh[boots[0]] and boots[0] in base:
        shift[boots[0]] = base[boots[0]] - (base[boots[0]] & 0xFFFFFFFF)
    res["records"] = [(first - shift[b], n) for b, first, n in delivered]
    return res


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_losses_are_attributed_exactly_in_every_combination(data: st.DataObject) -> None:
    sent, _ = data.draw(sessions())
    arrived = data.draw(links(sent))
    want = oracle(sent, arrived)
    dec = Decoder(HELLO)
    out = []
    for f in arrived:
        out += dec.feed(f.wire)
    blocks = [m for m in out if isinstance(m, SampleBlock)]
    got_records = []
    for b in blocks:
        v = b.records["voltage"].astype(np.int64)
        assert (v == (np.arange(b.first_index, b.stop_index) & 0x7FFFFFFF)).all()
    # block boundaries differ from frames: compare the covered index sets
    for b in blocks:
        got_records.extend(range(b.first_index, b.stop_index))
    want_records = [i for first, n in want["records"] for i in range(first, first + n)]
    assert got_records == want_records
    assert dec.duplicate_frames == want["dup"]
    assert dec.reordered_frames == want["late_frames"]
    assert dec.board_dropped.get(2, 0) == want["board"]
    assert dec.board_dropped_before.get(2, 0) == want["board_before"]
    assert dec.board_dropped_told() == want["board"] + want["board_before"]
    assert dec.lost_samples.get(2, 0) == want["lost"]
    assert dec.late_samples.get(2, 0) == want["late"]
    assert dec.lost_frames == want["frames_lost"]
    gaps = [m for m in out if isinstance(m, Gap)]
    assert sum(g.board_count for g in gaps) == want["board"]
    assert sum(g.count - g.board_count for g in gaps) == want["lost"] + want["late"]
    assert dec.bad_frames == 0 and dec.stale_frames == want["stale"]
    assert sum(isinstance(m, Reboot) for m in out) == max(0, len({f.boot for f in arrived}) - 1)


def test_index_wrap_with_a_duplicate_and_a_reorder() -> None:
    """Past 2**32 the unwrapped index keeps growing; a duplicate after the wrap is dropped
    (not taken for a reboot), a reordered frame counted late."""
    rec = np.zeros(10, ELEC.dtype)
    f = [
        encode_samples(2, (2**32 - 15 + 10 * k) & 0xFFFFFFFF, rec, seq=k, boot=5) for k in range(5)
    ]
    dec = Decoder(HELLO)
    out = dec.feed(f[0] + f[1] + f[3] + f[2] + f[1] + f[4])
    blocks = [m for m in out if isinstance(m, SampleBlock)]
    assert [(b.first_index, len(b)) for b in blocks] == [(2**32 - 15, 20), (2**32 + 15, 20)]
    assert dec.duplicate_frames == 1 and dec.reordered_frames == 1
    assert dec.lost_samples[2] == 0 and dec.late_samples[2] == 10 and dec.lost_frames == 0
    assert dec.boots == 0 and not any(isinstance(m, Reboot) for m in out)
