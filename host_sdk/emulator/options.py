"""Checked emulator options: speed, cpu model, and what an emu:// URL may say."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from host_sdk.emulator.board_process import CPU_MODELS, heap_bytes
from host_sdk.emulator.link_faults import RATE_SETTINGS

DEFAULT_SCENARIO = "nak50_pulsed"


def parse_speed(value: float | str) -> float:
    """Device seconds per wall second: a positive number, or "max" (math.inf: the board
    runs its clock as fast as the computer runs it)."""
    if isinstance(value, str) and value.strip().lower() == "max":
        return math.inf
    try:
        speed = float(value)
    except (TypeError, ValueError):
        speed = math.nan
    if not speed > 0:  # also NaN
        raise ValueError(f"speed must be a number > 0 or 'max', not {value!r}")
    return speed


def speed_label(speed: float) -> str:
    return "max" if math.isinf(speed) else f"{speed:g}"


def parse_cpu(value: str) -> str:
    """How the board charges device time for its own work: "ideal" (none) or "rp2040"."""
    if value not in CPU_MODELS:
        raise ValueError(f"cpu must be one of {', '.join(CPU_MODELS)}, not {value!r}")
    return value


def _integer(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise ValueError("must be an integer") from None


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(v: str) -> int:
        n = int(v) if v.strip().lstrip("+-").isdigit() else lo - 1
        if not lo <= n <= hi:
            raise ValueError(f"must be an integer from {lo} to {hi}")
        return n

    return parse


def _float_in(lo: float, hi: float, lo_open: bool = False) -> Callable[[str], float]:
    def parse(v: str) -> float:
        try:
            x = float(v)
        except ValueError:
            x = math.nan  # fails the range check below
        if not ((lo < x) if lo_open else (lo <= x)) or not x <= hi:
            bound = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise ValueError(
                f"must be a number {bound}" + ("" if hi == math.inf else f", <= {hi:g}")
            )
        return x

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(v: str) -> str:
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v

    return parse


def _choice_int(*allowed: int) -> Callable[[str], int]:
    def parse(v: str) -> int:
        n = int(v) if v.strip().isdigit() else None
        if n not in allowed:
            raise ValueError(f"must be one of {', '.join(str(a) for a in allowed)}")
        return n

    return parse


def _heap(v: str) -> str:
    if heap_bytes(v) <= 0:
        raise ValueError("must be a size > 0 such as 160k")
    return v


# parameter -> parser (its ValueError says what is allowed)
URL_PARAMETERS: dict[str, Callable[[str], Any]] = {
    "speed": parse_speed,
    "cpu": parse_cpu,
    "seed": _integer,
    "tcp": _int_in(0, 65535),
    "hx711": _choice("pio", "bitbang"),
    "heap": _heap,
    "load_sps": _choice_int(10, 80),  # the HX711 converts at 10 or 80 SPS
    "fbg_hz": _float_in(0.0, math.inf, lo_open=True),
    **{k: _float_in(0.0, 1.0) for k in RATE_SETTINGS},
    "stall_every_s": _float_in(0.0, math.inf),
    "stall_s": _float_in(0.0, math.inf),
}


def emulator_options_from_url(url: str) -> tuple[str, dict[str, Any]]:
    """`emu://SCENARIO?speed=max&cpu=rp2040&seed=1&drop_rate=1e-4` -> (scenario, keyword
    arguments of start_emulator). Unknown parameters and bad values raise ValueError naming
    the parameter and what it accepts.

    Without `speed=` an emu:// board runs at speed "max": its device time is virtual, so a
    program that talks to it (the SDK, `stressrig run`) gets the experiment done as fast as
    this computer allows, and loses nothing however busy the computer is.

    `load_sps=10` and `fbg_hz=1` set the rates at which the emulated HX711 converts and
    the emulated interrogator sweeps (and the streams' default rates): those parts work
    whether or not their stream is sent, so lowering them lets a long experiment that
    does not need them run at a higher speed."""
    u = urlparse(url)
    if u.scheme != "emu":
        raise ValueError(f"not an emu:// URL: {url}")
    name = (u.netloc + u.path).strip("/") or DEFAULT_SCENARIO
    values: dict[str, Any] = {}
    for key, vals in parse_qs(u.query, keep_blank_values=True).items():
        parse = URL_PARAMETERS.get(key)
        if parse is None:
            raise ValueError(
                f"{url}: unknown emu:// URL parameter {key!r}; allowed: {', '.join(URL_PARAMETERS)}"
            )
        try:
            values[key] = parse(vals[-1])
        except ValueError as e:
            msg = str(e) if key in ("speed", "cpu") else f"{key} {e}"
            raise ValueError(f"{url}: emu:// URL parameter {key}={vals[-1]!r}: {msg}") from e
    values.setdefault("speed", math.inf)
    faults = {k: values.pop(k) for k in list(values) if k in (*RATE_SETTINGS, "stall_s")}
    if "stall_every_s" in values:
        faults["stall_every_s"] = values.pop("stall_every_s")
    overrides: dict[str, Any] = {}
    if "load_sps" in values:
        sps = values.pop("load_sps")
        overrides["loadcell"] = {"rate_sps": sps}
        overrides.setdefault("streams", {})["load"] = {"rate_hz": sps}
    if "fbg_hz" in values:
        hz = values.pop("fbg_hz")
        overrides["fbg"] = {"rate_hz": hz}
        overrides.setdefault("streams", {})["fbg"] = {"rate_hz": hz}
    if "tcp" in values:
        values["tcp_port"] = values.pop("tcp")
    if faults:
        values["faults"] = faults
    if overrides:
        values["overrides"] = overrides
    return name, values
