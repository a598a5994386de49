"""When the loop switches a running waveform's phase boundaries (its edges).

A pass of the loop reads the link, samples the due streams and sends frames: 1-8 ms on a
Pico. An edge that waited for any of that switched the pins that much after the time its
EV_EDGE carries, so an edge is switched at the earliest point of the pass where it is due,
at a fresh clock reading, and the loop's sleep aims at the next edge from the clock as it
is when the sleep begins. `EdgeTiming` is the App's base class (firmware/app.py); its
methods run at every pass and keep their frames small (tests/firmware/test_hot_frames.py).
"""

from protocol import defs

# a waveform boundary this close is waited for before sampling: a 50 ms pulse measured
# 52.5-54.5 ms on the rp2 VM's pins when the pass before its end sampled and sent a frame
EDGE_GUARD_US = 3000


class EdgeTiming:
    def _edge_before_link(self, now):
        """A phase boundary already due as the pass begins switches before the outbox is
        pumped and commands are read (1-3 ms under the emulated rp2040's prices, and the
        edge was that late), unless the watchdog is due: its latch comes first."""
        if self.safety.watchdog_fired(self.clock, now):
            return now
        return self._edge_if_due(now)

    def _edges_first(self, now):
        """A running waveform, before sampling: the watchdog, then the edges."""
        safety = self.safety
        if not safety.latched and safety.watchdog_fired(self.clock, now):
            # before sampling: the loop woke at the watchdog's deadline, and this pass's
            # sampling (up to ~8 ms on a Pico) would make the latch that much late
            self.latch(defs.CAUSE_WATCHDOG)
        if self.waveform.running:
            # edges first: sampling a pass's due streams takes 1-5 ms on a Pico (FBG lines,
            # frames to the link), and a phase change after it switched the pins that much
            # after the time its EV_EDGE carries
            now = self._edge_time(now)
            self.waveform.tick(now, 0)
        return now

    def _edge_time(self, now):
        """The time to switch a phase boundary at: the clock read again when one is due
        (reading the link, commands and the outbox's writes, took 1-4 ms on the rp2 VM,
        and an edge stamped with the pass's start switched that much after its event's
        time); one due within EDGE_GUARD_US is waited for (the samples are that much
        later, inside their slot)."""
        clock = self.clock
        t = self.waveform.next_tick(now)
        if t is None:
            return now
        d = clock.ticks_diff(t, clock.ticks_us())
        if d <= 0:
            return self.dc.update()
        # (not longer than half the shortest sample period: at 1 kHz elec the 3 ms wait
        # skipped samples at every edge on the emulated board)
        if d <= EDGE_GUARD_US and d < self.sampler.min_period_us() >> 1:
            clock.sleep_us(d)
            return self.dc.update()
        return now

    def _edge_if_due(self, now):
        # a phase boundary due by the clock now (one that fell during this pass's sampling,
        # up to ~5 ms on a Pico when a frame is sealed and sent): switch now, not after the
        # rest of the pass
        wfm = self.waveform
        t = wfm.next_tick(now)
        if t is not None and self.clock.ticks_diff(self.clock.ticks_us(), t) >= 0:
            now = self.dc.update()
            wfm.tick(now, 0)
        return now

    def _waveform_wait(self, now, wait):
        t = self.waveform.next_tick(now)
        if t is not None:
            # from the clock now, not the pass's start: the sleep starts now, and a pass
            # that parsed interrogator lines (~2.6 ms under the emulated rp2040's prices)
            # switched the next edge that much late (the samples keep the start's reading:
            # their due re-polls then ran back to back, see step())
            clock = self.clock
            d = clock.ticks_diff(t, clock.ticks_us())
            if d < wait:
                wait = d
            # the watchdog is a deadline too: a silent host is latched on time, not at the
            # next sample
            d = self.safety.watchdog_wait_us(self.clock, now)
            if d < wait:
                wait = d
        return wait
