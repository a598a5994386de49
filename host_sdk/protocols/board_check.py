"""Before a run: what in a protocol this board cannot do (currents and stream rates beyond
the limits its HELLO announces, a press hold it has no actuator or limits for)."""

from __future__ import annotations

from typing import Any

from host_sdk.protocols.press_hold_schema import press_hold_board_problems
from host_sdk.protocols.schema import Protocol, Step

__all__ = ["check_against_board"]


def _amps(step: Step, prefix: str, area_m2: float | None) -> float:
    if f"{prefix}_a" in step.params:
        return abs(float(step.params[f"{prefix}_a"]))
    return abs(float(step.params[f"{prefix}_a_m2"])) * float(area_m2 or 0.0)


def check_against_board(protocol: Protocol, hello: Any) -> list[str]:
    """Problems running this protocol on this board (currents, rates beyond its limits)."""
    limits = dict(getattr(hello, "limits", {}) or {})
    errors: list[str] = []
    imax = limits.get("max_current_a", limits.get("current_max_a"))
    area = protocol.area_m2
    for s in protocol.steps:
        if imax is None or s.kind not in (
            "constant",
            "pulse_train",
            "gitt",
            "staircase",
            "adaptive_pulses",
        ):
            continue
        prefixes = ("start", "stop") if s.kind == "staircase" else ("current",)
        for prefix in prefixes:
            amps = _amps(s, prefix, area)
            if amps > float(imax) * (1 + 1e-6):
                key = next(k for k in s.params if k.startswith(prefix + "_a"))
                errors.append(
                    f"{s.path}.{key}: {s.params[key]!r} is {amps:.4g} A; allowed on board "
                    f"{hello.board_id}: up to {float(imax):.4g} A"
                    + (f" ({float(imax) / area:.4g} A/m² on {area:g} m²)" if area else "")
                )
    for name, cfg in protocol.streams.items():
        rmax = limits.get(f"max_rate_{name}_hz")
        if rmax is not None and "rate_hz" in cfg and float(cfg["rate_hz"]) > float(rmax) * 1.0001:
            errors.append(
                f"streams.{name}.rate_hz: {cfg['rate_hz']!r} Hz; allowed on board "
                f"{hello.board_id}: up to {float(rmax):g} Hz"
            )
    for s in protocol.steps:
        if "press_hold" in s.params:
            errors += press_hold_board_problems(s.path, s.params["press_hold"], limits)
    return errors
