# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""A command refused: the NACK reason and a text naming the field, the value and the allowed
range (never clipped), and the range check every command uses."""

from protocol import defs


class Refuse(Exception):
    def __init__(self, reason, text):
        self.reason = reason
        self.text = text


def _num(x):
    return x == x and x not in (float("inf"), float("-inf"))


def check_range(name, value, lo, hi, unit=""):
    """Refuse unless lo <= value <= hi (and finite)."""
    if not _num(value) or value < lo or value > hi:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "%s=%g %s outside allowed range [%g, %g] %s" % (name, value, unit, lo, hi, unit),
        )


def s_to_us(x):
    """Seconds (a board limit, float) -> integer us without a float product above 2**24
    (float32 on the board): whole seconds in integers, the fraction rounded."""
    whole = int(x)
    return whole * 1000000 + int(round((x - whole) * 1e6))
