# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""The board's CPU budget for its streams: CONFIG_STREAM (and the boot defaults) are refused
when the enabled streams' estimated cost exceeds the board definition's max_cpu_fraction."""

from protocol import defs


def stream_cost_us(lim, rate_hz):
    """Estimated CPU us per second of one stream at rate_hz (each record its own wake-up)."""
    return rate_hz * (lim.get("record_cost_us", 0) + lim.get("wake_cost_us", 0))


def cpu_overload(lim, smp):
    """Text saying why the enabled streams exceed the board's CPU budget, else None."""
    frac = lim.get("max_cpu_fraction", 0)
    if not frac:
        return None
    total = 0.0
    for s in range(defs.N_STREAMS):
        if smp.fitted[s]:  # acquired whether sent or not (safety uses the readings)
            rate = 1000000 / smp.period_us[s]
            if s == defs.STREAM_FBG and smp.fbg_self_paced:
                # an interrogator on a UART sends its lines at its own pace, and every line
                # is read and parsed whatever the stream's rate: charged at the line rate
                rate = max(rate, lim.get("max_rate_fbg_hz", 0))
            total += stream_cost_us(lim, rate)
    if total <= frac * 1e6:
        return None
    return "the streams would need %.0f %% of the CPU (board budget %.0f %%: %g us a record, %g us a wake-up)" % (
        total / 1e4,
        frac * 100,
        lim.get("record_cost_us", 0),
        lim.get("wake_cost_us", 0),
    )
