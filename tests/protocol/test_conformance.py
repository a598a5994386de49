"""The emulated board (the real firmware on MicroPython) against protocol/README.md, from
the bytes: a reader and a command builder written from the page alone (struct + zlib, no
SDK code), and one check per statement of the page that the board can be seen to keep.
The section of each check is named in its message.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass

import pytest
import serial

from host_sdk.emulator import start_emulator

pytestmark = pytest.mark.timeout(300)

HELLO, STATUS, EVENT, ACK, NACK, LOG, SAMPLES, COMMAND = 1, 2, 3, 4, 5, 6, 0x10, 0x20
FLAG_DROPPED, FLAG_LATCHED, FLAG_BOOT = 1, 2, 4
# §8: cmd_id -> argument format
CMDS = {
    "heartbeat": (0x01, ""),
    "get_info": (0x02, ""),
    "config_stream": (0x03, "BBf"),
    "set_streaming": (0x04, "B"),
    "set_watchdog": (0x06, "I"),
    "get_status": (0x08, ""),
    "timesync": (0x09, "I"),
    "pulse_train": (0x12, "BfQQIfffQ"),
    "stop": (0x15, ""),
    "reset": (0x18, ""),
}


@dataclass
class Frame:
    type: int
    flags: int
    stream: int
    seq: int
    boot: int
    payload: bytes


def command(
    name: str, cmd_seq: int, *args: object, flags: int = 0, stream: int = 0, seq: int = 0
) -> bytes:
    cid, fmt = CMDS[name]
    payload = struct.pack("<HB", cmd_seq, cid) + struct.pack("<" + fmt, *args)
    head = bytearray(
        struct.pack("<BBHBBBBHH", 0xA5, 0x5A, 9 + len(payload), 2, COMMAND, flags, stream, seq, 0)
    )
    head.append(zlib.crc32(head[2:12]) & 0xFF)
    body = bytes(head[2:]) + payload
    return bytes(head[:2]) + body + struct.pack("<I", zlib.crc32(body))


class Reader:
    """§6.1, literally; asserts §2 on every frame it accepts."""

    def __init__(self, ser: serial.Serial) -> None:
        self.ser = ser
        self.buf = bytearray()
        self.frames: list[Frame] = []

    def pump(self) -> None:
        self.buf += self.ser.read(65536)
        b = self.buf
        while True:
            i = b.find(b"\xa5\x5a")
            if i < 0:
                del b[: max(0, len(b) - 1)]
                return
            del b[:i]
            if len(b) < 13:
                return
            length = b[2] | b[3] << 8
            if b[4] == 0 or zlib.crc32(b[2:12]) & 0xFF != b[12] or not 9 <= length <= 9 + 1024:
                del b[:1]
                continue
            if len(b) < 8 + length:
                return
            if zlib.crc32(b[2 : 4 + length]) != int.from_bytes(
                b[4 + length : 8 + length], "little"
            ):
                del b[:1]
                continue
            assert b[4] == 2, "§2 version"
            assert b[6] & 0xF8 == 0, "§3 reserved flags"
            f = Frame(
                b[5], b[6], b[7], b[8] | b[9] << 8, b[10] | b[11] << 8, bytes(b[13 : 4 + length])
            )
            assert f.boot != 0, "§2 boot id never 0"
            assert f.type == SAMPLES or f.stream == 0, "§2 stream 0 outside SAMPLES"
            self.frames.append(f)
            del b[: 8 + length]

    def until(self, cond, timeout: float = 120.0) -> list[Frame]:  # noqa: ANN001
        end = time.monotonic() + timeout
        beat = 0.0
        while not cond(self.frames):
            assert time.monotonic() < end, "timed out"
            if time.monotonic() > beat:  # feed the watchdog as a host does
                self.ser.write(command("heartbeat", 0xFFFF))
                beat = time.monotonic() + 0.2
            self.pump()
        return self.frames

    def reply(self, cmd_seq: int, after: int = 0) -> tuple[int, Frame]:
        def found(fr: list[Frame]) -> bool:
            return any(
                f.type in (ACK, NACK) and struct.unpack_from("<H", f.payload)[0] == cmd_seq
                for f in fr[after:]
            )

        fr = self.until(found)
        for k in range(after, len(fr)):
            f = fr[k]
            if f.type in (ACK, NACK) and struct.unpack_from("<H", f.payload)[0] == cmd_seq:
                return k, f
        raise AssertionError


def str8(p: bytes, o: int) -> tuple[str, int]:
    n = p[o]
    return p[o + 1 : o + 1 + n].decode(), o + 1 + n


def parse_hello(p: bytes) -> dict:
    """§5.1"""
    pv = p[0]
    o = 4
    board, o = str8(p, o)
    uid, o = str8(p, o)
    streams = {}
    n = p[o]
    o += 1
    for _ in range(n):
        sid = p[o]
        name, o = str8(p, o + 1)
        rate, en = struct.unpack_from("<fB", p, o)
        fmt, o = str8(p, o + 5)
        nf = p[o]
        o += 1
        fields = []
        for _ in range(nf):
            fname, o = str8(p, o)
            unit, o = str8(p, o)
            o += 8
            fields.append(fname)
        streams[name] = {"id": sid, "rate": rate, "enabled": en, "fmt": fmt, "fields": fields}
    limits = []
    nl = p[o]
    o += 1
    for _ in range(nl):
        ln, o = str8(p, o)
        o += 4
        limits.append(ln)
    assert o == len(p), "§5.1 the payload ends after the last limit"
    return {"pv": pv, "board": board, "streams": streams, "limits": limits}


def test_the_emulated_board_keeps_the_spec() -> None:
    with start_emulator("nak50_pulsed", speed="max", seed=11) as emu:
        ser = serial.Serial(emu.port, timeout=0.05)
        r = Reader(ser)
        ser.write(command("set_watchdog", 1, 600000))
        r.reply(1)

        # §8 get_info: a HELLO, then the ACK (§6.3: exactly one reply, same cmd_seq/cmd_id)
        mark = len(r.frames)
        ser.write(command("get_info", 2))
        k, ack = r.reply(2, mark)
        assert ack.type == ACK and ack.payload == struct.pack("<HB", 2, 0x02), "§5.5"
        hellos = [f for f in r.frames[mark:k] if f.type == HELLO]
        assert len(hellos) == 1, "§8 get_info sends a HELLO before its ACK"
        h = parse_hello(hellos[0].payload)
        assert h["pv"] == 2 and h["board"], "§5.1"
        assert h["limits"] == sorted(set(h["limits"])), "§5.1 limits sorted by name"
        for want in ("max_current_a", "compliance_v", "min_voltage_v", "min_watchdog_ms"):
            assert want in h["limits"], f"§5.1 limit {want}"
        fields = {n: s["fields"] for n, s in h["streams"].items()}
        assert fields["load"] == ["t_us", "counts", "status"], "§5.8 load fields"
        assert fields["elec"] == ["t_us", "voltage", "current", "state"], "§5.8 elec fields"
        assert fields["temp"] == ["t_us", "raw", "temp"], "§5.8 temp fields"
        assert fields["fbg"][:3] == ["t_us", "status", "g0"], "§5.8 fbg fields"
        sizes = {n: struct.calcsize(s["fmt"]) for n, s in h["streams"].items()}

        # §8 get_status: STATUS (26 bytes) before the ACK
        mark = len(r.frames)
        ser.write(command("get_status", 3))
        k, _ = r.reply(3, mark)
        # (a periodic STATUS, once a device second, may come in between too)
        st = [f for f in r.frames[mark:k] if f.type == STATUS]
        assert st and len(st[-1].payload) == 26, "§5.2 / §8 get_status"
        bad_rx0 = struct.unpack_from("<IIIIIBBf", st[0].payload)[3]

        # §6.3 retries: identical -> not applied again; same seq, other arguments -> applied
        ser.write(command("set_watchdog", 10, 3000))
        _, a1 = r.reply(10)
        ser.write(command("set_watchdog", 10, 4000))
        k2, a2 = r.reply(10, len(r.frames))
        assert a1.payload[3:] == struct.pack("<I", 3000) and a2.payload[3:] == struct.pack(
            "<I", 4000
        ), "§6.3 a changed-argument command with a reused cmd_seq is applied"
        ser.write(command("set_watchdog", 11, 600000))
        r.reply(11)
        pulse = ("pulse_train", 12, 0, 0.0005, 400000, 400000, 5, 0.0, 0.0, 0.0, 0)
        ser.write(command(*pulse))  # type: ignore[arg-type]
        _, p1 = r.reply(12)
        ser.write(command(*pulse))  # type: ignore[arg-type]
        _, p2 = r.reply(12, len(r.frames))
        assert p1.type == p2.type == ACK and p1.payload == p2.payload, "§6.3 retry re-sent"
        # §5.3/§7.1: one waveform_start, and its end says how many edges and why
        r.until(lambda fr: any(f.type == EVENT and f.payload[4] == 4 for f in fr))
        ev = [struct.unpack("<IBBHf", f.payload) for f in r.frames if f.type == EVENT]
        assert sum(e[1] == 2 for e in ev) == 1, "§6.3 a retried command is applied once"
        end = [e for e in ev if e[1] == 4][0]
        edges = sum(e[1] == 3 for e in ev)
        assert end[2] == 1 and end[3] == edges, "§7.1 waveform_end: cause completed, edges"

        # §5.4: reserved flags / stream / < 3 bytes: not executed, not answered, counted
        mark = len(r.frames)
        ser.write(command("set_watchdog", 20, 5000, flags=0x80))
        ser.write(command("set_watchdog", 21, 5000, stream=3))
        ser.write(command("get_status", 22))
        k, _ = r.reply(22, mark)
        replies = [f for f in r.frames[mark:k] if f.type in (ACK, NACK)]
        assert replies == [], "§5.4 no reply to a COMMAND with reserved flags or stream"
        st = [f for f in r.frames[mark:k] if f.type == STATUS][-1]
        assert struct.unpack_from("<IIIIIBBf", st.payload)[3] == bad_rx0 + 2, "§5.4 counted"

        # §7.3: wrong length, unknown id, out of range (NACK text at most 200 bytes)
        ser.write(command("set_watchdog", 23, 0))
        _, n = r.reply(23)
        assert n.type == NACK and n.payload[3] == 3 and len(n.payload) - 4 <= 200, "§8 0 ms"

        # §8 timesync: the device clock when the command was read
        ser.write(command("timesync", 24, 0))
        k, ts = r.reply(24)
        t_sync = struct.unpack_from("<I", ts.payload, 3)[0]
        later = [struct.unpack_from("<I", f.payload)[0] for f in r.frames[k:] if f.type == EVENT]
        assert ts.type == ACK and all(t >= t_sync for t in later), "§8 timesync t_us"

        # §5.8 SAMPLES at the default rates
        mark = len(r.frames)
        ser.write(command("set_streaming", 30, 1))
        r.until(lambda fr: sum(f.type == SAMPLES and f.stream == 3 for f in fr[mark:]) >= 3)
        ser.write(command("set_streaming", 31, 0))
        r.reply(31, mark)
        frames = r.frames[mark:]
        by_id = {s["id"]: (n, sizes[n]) for n, s in h["streams"].items()}
        nxt: dict[int, int] = {}
        for f in frames:
            if f.type != SAMPLES:
                continue
            name, rsize = by_id[f.stream]
            first, t_first, n, dropped = struct.unpack_from("<IIHI", f.payload)
            assert len(f.payload) == 14 + n * rsize, "§5.8 P = 14 + n R"
            assert n <= (512 - 14) // rsize, "§5.8 at most floor(498 / R) records"
            assert dropped == 0, "§5.8 board_dropped (the ideal board drops nothing)"
            if n:
                t0 = struct.unpack_from("<I", f.payload, 14)[0]
                assert t0 == t_first, "§5.8 t_first_us is the first record's t_us"
                t_last = struct.unpack_from("<I", f.payload, 14 + (n - 1) * rsize)[0]
                rate = h["streams"][name]["rate"]
                # §5.8: SAMPLE_FLUSH_US (200 ms), or the board definition's latency: the
                # emulated board at speed max sends its frames within 10 s of device time
                assert t_last - t0 <= 10_000_000 + 1e6 / rate, "§5.8 flushed within latency"
            if f.stream in nxt:
                assert first == nxt[f.stream], "§6.2 first_index continues"
            nxt[f.stream] = first + n
        assert any(f.type == EVENT and f.payload[4] == 8 for f in frames), "§7.1 streaming"

        # §6.2 sequence: +1 per frame, one counter for every type
        seqs = [f.seq for f in r.frames]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), (
            "§6.2 seq +1"
        )
        assert len({f.boot for f in r.frames}) == 1, "§2 one boot id per boot"

        # §8 reset: ACK, then a new boot: FLAG_BOOT on seq 0, another boot id, a boot event
        boot0 = r.frames[-1].boot
        mark = len(r.frames)
        ser.write(command("reset", 40))
        r.reply(40, mark)
        r.until(lambda fr: any(f.boot != boot0 for f in fr[mark:]))
        new = [f for f in r.frames[mark:] if f.boot != boot0]
        assert new[0].seq == 0 and new[0].flags & FLAG_BOOT, "§3 FLAG_BOOT on the first frame"
        r.until(lambda fr: any(f.type == EVENT and f.payload[4] == 1 for f in fr[mark:]))
        ser.close()
