# ruff: noqa: B905  (MicroPython: zip() has no strict=)
"""MicroPython-side test harness: the real firmware App on the fake HAL and virtual clock.

r = Rig()                      # App booted; HELLO/EV_BOOT already in r.link.frames
r.cmd(CMD_CONSTANT, (0, 0.05, 0, 0, 0, 0))   -> ("ack", applied) / ("nack", reason, text)
r.run_s(2.5)                   # steps the loop until the virtual clock moved 2.5 s
r.events()                     # [(t_us, code, cause, index, value)] sent so far
"""

import struct

import fakehal

from firmware.app import App
from protocol import defs, messages


class Rig:
    def __init__(
        self,
        rates=None,
        max_sleep_us=2000,
        keep_samples=False,
        link=None,
        definition=None,
        watchdog_ms=600000,
        hal_setup=None,
    ):
        d = definition or fakehal.DEFINITION
        if rates is not None:
            d = dict(d)
            d["streams"] = {}
            for name, r in zip(defs.STREAM_NAMES, rates):
                d["streams"][name] = {"rate_hz": r, "enabled": True}
        self.link = link if link is not None else fakehal.FakeLink(keep_samples)
        self.hal = fakehal.FakeHal(self.link)
        if hal_setup is not None:  # fit other parts before the App sees the HAL
            hal_setup(self.hal)
        self.app = App(d, self.hal, max_sleep_us)
        self.seq = 100
        self.ev = []
        if watchdog_ms:  # the boot default (5 s) would latch long tests that send nothing
            assert self.cmd(defs.CMD_SET_WATCHDOG, (watchdog_ms,))[0] == "ack"

    def now_us(self):
        """Device time (wire u32 as a Python int)."""
        return self.app.dc.wire_us()

    def step(self):
        return self.app.step()

    def run_s(self, seconds):
        clock = self.hal.clock
        start = clock.ticks_us()
        end = int(seconds * 1e6)
        while clock.ticks_diff(clock.ticks_us(), start) < end:
            if not self.app.step():
                return False
        return True

    def cmd(self, cmd_id, args=(), seq=None):
        """Send a command; integer-microsecond fields given as floats are seconds."""
        names = defs.COMMANDS[cmd_id][2]
        args = tuple(
            int(round(v * 1000000)) if (n in defs.TIME_US_FIELDS and isinstance(v, float)) else v
            for n, v in zip(names, args)
        )
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.link.send_command(seq, cmd_id, args)
        self.app.step()
        return self.reply(seq)

    def reply(self, seq):
        frames = self.link.frames
        for k in range(len(frames) - 1, -1, -1):  # the reply is near the end
            f = frames[k]
            t = f[0]
            p = f[4]
            if t in (defs.MSG_ACK, defs.MSG_NACK):
                s, cid = struct.unpack_from("<HB", p, 0)
                if s != seq:
                    continue
                frames.pop(k)
                if t == defs.MSG_ACK:
                    fmt = messages.command_format_for(cid, len(p))
                    return ("ack", struct.unpack_from(fmt, p, 3))
                return ("nack", p[3], bytes(p[4:]).decode())
        return None

    def events(self, code=None):
        keep = []
        for f in self.link.frames:
            if f[0] == defs.MSG_EVENT:
                self.ev.append(struct.unpack(defs.EVENT_FMT, f[4]))
            else:
                keep.append(f)
        self.link.frames = keep
        return [e for e in self.ev if code is None or e[1] == code]

    def statuses(self):
        return [
            struct.unpack(defs.STATUS_FMT, f[4])
            for f in self.link.frames
            if f[0] == defs.MSG_STATUS
        ]
