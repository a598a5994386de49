"""Run a validated protocol on a rig: configure, then one waveform command per step, each
waited for through its waveform_end event (in device time, so an accelerated emulated board
runs an hour-long protocol in seconds)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from host_sdk.client import CommandRefused, Cutoffs, Rig, RigError
from host_sdk.press_hold import apply_step_press_hold, clear_press_hold
from host_sdk.protocols.board_check import check_against_board
from host_sdk.protocols.conditions import next_step
from host_sdk.protocols.fresh_cell import FreshCellPolicy, FreshCellStop, start_on_fresh_cell
from host_sdk.protocols.outcome import Outcome
from host_sdk.protocols.schema import Protocol, ProtocolError, Step, staircase_levels
from protocol import defs

__all__ = ["RunResult", "StepResult", "check_against_board", "run_protocol"]


@dataclass
class StepResult:
    index: int
    path: str
    kind: str
    label: str
    t_start_s: float
    t_end_s: float
    end_cause: str


@dataclass
class RunResult:
    steps: list[StepResult]
    completed: bool
    stopped_by: str | None = None  # a latched safety stop's cause, "boot", or "user"
    outcome: Outcome | None = None  # the full story: cause, step, device time


# board events that end a run: the causes of a latched stop, and a reboot
_ENDING_CAUSES = (
    defs.CAUSE_WATCHDOG,
    defs.CAUSE_OVER_TEMP,
    defs.CAUSE_OVER_FORCE,
    defs.CAUSE_OVER_CURRENT,
    defs.CAUSE_COMPLIANCE,
    defs.CAUSE_SENSOR_FAULT,
    defs.CAUSE_BOOT,
)
_LINK_LOST = object()  # _wait_end: the link went away for good


def _configure_streams(rig: Rig, streams: dict[str, dict[str, Any]]) -> None:
    for name, cfg in streams.items():
        info = rig.streams.get(name)
        if info is None:
            continue
        rate = float(cfg.get("rate_hz", info.rate_hz))
        rig.configure_stream(name, rate_hz=rate, enabled=bool(cfg.get("enabled", True)))


def _send(rig: Rig, step: Step) -> None:
    p = step.params
    cut = Cutoffs(**{k: float(v) for k, v in step.cutoff.items()})
    if step.kind in ("rest", "calibration_hold"):
        rig.rest(float(p["duration_s"]))
    elif step.kind == "constant":
        unit, value = step.current()
        kw = {"current_a": value} if unit == "a" else {"current_a_m2": value}
        rig.constant_current(cutoffs=cut, **kw)
    elif step.kind in ("pulse_train", "gitt"):
        unit, value = step.current()
        kw = {"amplitude_a": value} if unit == "a" else {"amplitude_a_m2": value}
        if step.kind == "pulse_train":
            rig.pulse_train(
                t_on_s=float(p["t_on_s"]),
                t_off_s=float(p["t_off_s"]),
                count=int(p["count"]),
                cutoffs=cut,
                **kw,
            )
        else:
            rig.gitt(
                t_pulse_s=float(p["t_pulse_s"]),
                t_rest_s=float(p["t_rest_s"]),
                count=int(p["count"]),
                cutoffs=cut,
                **kw,
            )
    elif step.kind == "staircase":
        sfx = "_a" if "start_a" in p else "_a_m2"
        rig.staircase(
            start=float(p["start" + sfx]),
            step=float(p["step" + sfx]),
            stop=float(p["stop" + sfx]),
            dwell_s=float(p["dwell_s"]),
            on_s=float(p["on_s"]),
            per_m2=sfx == "_a_m2",
            cutoffs=cut,
        )
    elif step.kind in ("adaptive_rest", "adaptive_pulses"):
        _send_adaptive(rig, step, cut)
    else:  # pragma: no cover - the schema rejects other kinds
        raise ProtocolError("<run>", [f"{step.path}.kind: cannot run {step.kind!r}"])


def _interlock(rig: Rig, protocol: Protocol, step: Step, armed: bool) -> bool:
    """Set the step's pressure interlock on the board (or clear the previous step's)."""
    from host_sdk.interlock import clear_interlock, set_pressure_interlock

    il = step.params.get("interlock")
    if il is None:
        if armed:
            clear_interlock(rig)
        return False
    set_pressure_interlock(
        rig,
        p_min_mpa=float(il["p_min_mpa"]),
        p_max_mpa=float(il["p_max_mpa"]),
        hysteresis_mpa=float(il["hysteresis_mpa"]),
        stack_area_m2=float(protocol.stack_area_m2 or 0.0),
        action=str(il["action"]),
    )
    return True


def _send_adaptive(rig: Rig, step: Step, cut: Cutoffs) -> None:
    from host_sdk.loops import Settle, adaptive_pulses, adaptive_rest

    p = step.params
    settle = Settle.from_table(p["settle"])
    if step.kind == "adaptive_rest":
        adaptive_rest(rig, settle)
        return
    unit, value = step.current()
    kw = {"amplitude_a": value} if unit == "a" else {"amplitude_a_m2": value}
    adaptive_pulses(
        rig, t_on_s=float(p["t_on_s"]), count=int(p["count"]), settle=settle, cutoffs=cut, **kw
    )


def run_protocol(
    rig: Rig,
    protocol: Protocol,
    *,
    recorder: Any = None,
    on_step: Callable[[int, Step], None] | None = None,
    stop: threading.Event | None = None,
    stall_timeout_s: float = 30.0,
    fresh_cell: FreshCellPolicy = "ask",
    ask: Callable[[str], str] | None = None,
) -> RunResult:
    """Configure the rig from the protocol and run its steps in order.

    A step ends with the board's waveform_end (completed or a cutoff); a latched safety stop,
    a board reboot or a lost link ends the run. Setting `stop` sends STOP and ends the run.
    A step with `fresh_cell` starts on a new cell: an emulated board resets its simulated
    cell; on a real rig `fresh_cell` says what to do ("ask" the operator through `ask`, or
    the terminal; "continue" with the same cell; "stop" the run there).
    `RunResult.outcome` says how it ended (and is handed to `recorder.set_outcome`). Raises
    RigError when device time stops advancing for `stall_timeout_s` or a step overruns its
    nominal duration.
    """
    fresh = (fresh_cell, ask)
    result = _run(rig, protocol, recorder, on_step, stop, stall_timeout_s, fresh)
    _clear_loops(rig, protocol)
    if recorder is not None and hasattr(recorder, "set_outcome"):
        recorder.set_outcome(result.outcome)
    return result


def _clear_loops(rig: Rig, protocol: Protocol) -> None:
    """The board's closed loops belonged to this protocol's steps, not to what comes next:
    clear the interlock, the derating and the press hold it used (the actuator stays where
    it got to)."""
    from host_sdk.derate import clear_derating
    from host_sdk.interlock import clear_interlock

    clears = {
        "interlock": clear_interlock,
        "derate": clear_derating,
        "press_hold": clear_press_hold,
    }
    for key, clear in clears.items():
        if rig.link_lost:
            return
        if any(key in s.params for s in protocol.steps):
            with contextlib.suppress(RigError):
                clear(rig)


def _run(
    rig: Rig,
    protocol: Protocol,
    recorder: Any,
    on_step: Callable[[int, Step], None] | None,
    stop: threading.Event | None,
    stall_timeout_s: float,
    fresh: tuple[FreshCellPolicy, Callable[[str], str] | None],
) -> RunResult:
    problems = list(dict.fromkeys(check_against_board(protocol, rig.hello)))  # unrolled copies
    if problems:
        raise ProtocolError(protocol.source, problems)
    if protocol.area_m2 is not None:
        rig.set_cell(
            protocol.area_m2,
            stack_area_m2=protocol.stack_area_m2,
            label=str(protocol.cell.get("label", "")),
        )
    sf = protocol.safety
    if "v_min_v" in sf and "v_max_v" in sf:
        rig.set_voltage_window(float(sf["v_min_v"]), float(sf["v_max_v"]))
    if "watchdog_s" in sf:
        rig.set_watchdog(float(sf["watchdog_s"]))
    _configure_streams(rig, protocol.streams)
    rig.set_streaming(True)
    first_mark = rig.event_mark()
    results: list[StepResult] = []
    armed = False  # a pressure interlock is set on the board
    derating = False  # a pressure-rate derating is set on the board
    holding = False  # a stack-pressure hold runs on the board
    acc: dict[Any, float] = {}  # charge of the `until` blocks so far (conditions.next_step)
    i = 0
    while i < len(protocol.steps):
        step = protocol.steps[i]
        where: dict[str, Any] = {"step_index": i, "step_path": step.path, "step_label": step.label}
        if step.streams:
            _configure_streams(rig, step.streams)
        armed = _interlock(rig, protocol, step, armed)
        if derating or "derate" in step.params:
            from host_sdk.derate import apply_step_derating

            dr = step.params.get("derate")
            derating = apply_step_derating(rig, dr, protocol.stack_area_m2, derating)
        ph = step.params.get("press_hold")  # a step without one stops the previous hold
        holding = apply_step_press_hold(rig, ph, protocol.stack_area_m2, holding)
        if on_step is not None:
            on_step(i, step)
        if step.fresh_cell:
            try:
                start_on_fresh_cell(rig, i, step, recorder, *fresh)
            except FreshCellStop as e:
                t = rig.device_time_s
                out = Outcome(False, "fresh_cell", str(e), t_dev_s=t, **where)
                return RunResult(results, False, "fresh_cell", out)
        t0 = rig.device_time_s
        if recorder is not None:
            text = f"step {i} {step.kind}" + (f" {step.label}" if step.label else "")
            if step.kind == "calibration_hold" and "load_n" in step.params:
                text += f" load_n={float(step.params['load_n']):.6g}"
            recorder.add_marker(t0, text)
        mark = rig.event_mark()
        try:
            _send(rig, step)
        except CommandRefused:
            # a latch (or a reboot) that came between two steps: the board refuses the
            # next waveform; the run ended there, by the board
            ended = _board_ending(rig, first_mark)
            if ended is None:
                raise
            results.append(_step_result(i, step, t0, ended.t_s, ended.cause_name, recorder))
            out = Outcome.board_stop(ended.cause_name, t_dev_s=ended.t_s, **where)
            return RunResult(results, False, ended.cause_name, out)
        ev = _wait_end(rig, step, mark, t0, stop, stall_timeout_s)
        if ev is None:  # user stop
            rig.stop()
            t = rig.device_time_s
            results.append(_step_result(i, step, t0, t, "host_stop", recorder))
            out = Outcome(False, "interrupted", "stop requested", t_dev_s=t, **where)
            return RunResult(results, False, "user", out)
        if ev is _LINK_LOST:
            t = rig.device_time_s
            results.append(_step_result(i, step, t0, t, "link_lost", recorder))
            out = Outcome.board_stop("link_lost", t_dev_s=t, **where)
            return RunResult(results, False, "link_lost", out)
        results.append(
            _step_result(i, step, _started(rig, mark, t0), ev.t_s, ev.cause_name, recorder)
        )
        if ev.code == defs.EV_STOP_LATCHED or ev.cause in _ENDING_CAUSES:
            out = Outcome.board_stop(ev.cause_name, t_dev_s=ev.t_s, **where)
            return RunResult(results, False, ev.cause_name, out)
        i, note = next_step(protocol, i, ev.cause_name, float(ev.value), acc)
        if note is not None and recorder is not None:
            recorder.add_marker(ev.t_s, note)
    n = len(results)
    t_end = results[-1].t_end_s if results else rig.device_time_s
    out = Outcome(True, "completed", f"all {n} steps ran", t_dev_s=t_end)
    return RunResult(results, True, None, out)


def _started(rig: Rig, mark: int, sent_at: float) -> float:
    """The board's own start of the step (its waveform_start event): the host's view of
    device time when it sent the command lags the board by up to a frame latency (2 s on
    a fast emulated board), so samples of the step would fall outside it."""
    for e in rig.events[mark:]:
        if e.code == defs.EV_WAVEFORM_START:
            return float(e.t_s)
    return sent_at


def _step_result(i: int, step: Step, t0: float, t1: float, cause: str, recorder: Any) -> StepResult:
    r = StepResult(i, step.path, step.kind, step.label, t0, t1, cause)
    if recorder is not None and hasattr(recorder, "add_step"):
        recorder.add_step(r)
    return r


def _board_ending(rig: Rig, after: int) -> Any:
    """The latch or reboot event among the rig's events after `after`, if any."""
    for ev in rig.events[after:]:
        if ev.code in (defs.EV_STOP_LATCHED, defs.EV_BOOT):
            return ev
    return None


def _wait_end(
    rig: Rig,
    step: Step,
    mark: int,
    t0: float,
    stop: threading.Event | None,
    stall_timeout_s: float,
) -> Any:
    nominal = step.nominal_duration_s()
    if step.kind == "staircase":
        nominal = staircase_levels(step) * float(step.params["dwell_s"])
    limit = None if nominal is None else t0 + nominal * 1.05 + 5.0
    last_t, last_wall = rig.device_time_s, time.monotonic()
    while True:
        # a reboot ends the waveform without a waveform_end: wait for the boot event too
        ev = rig.wait_event(
            (defs.EV_WAVEFORM_END, defs.EV_STOP_LATCHED, defs.EV_BOOT), after=mark, timeout_s=0.25
        )
        if ev is not None:
            if ev.code == defs.EV_WAVEFORM_END and ev.cause in (defs.CAUSE_V_MIN, defs.CAUSE_V_MAX):
                # the safety window ends the waveform with the same cause as a cutoff, then
                # latches in the same breath: a latch that follows is the real ending
                latch = rig.wait_event((defs.EV_STOP_LATCHED,), after=mark, timeout_s=0.3)
                if latch is not None:
                    return latch
            return ev
        if stop is not None and stop.is_set():
            return None
        if rig.link_lost:
            return _LINK_LOST
        now_t = rig.device_time_s
        if now_t != last_t:
            last_t, last_wall = now_t, time.monotonic()
        elif time.monotonic() - last_wall > stall_timeout_s:
            raise RigError(
                f"{step.path} ({step.kind}): device time stopped at {now_t:.3f} s "
                f"for {stall_timeout_s:.0f} s; is the board streaming?"
            )
        if limit is not None and now_t > limit:
            rig.stop()
            raise RigError(
                f"{step.path} ({step.kind}): no waveform_end after "
                f"{now_t - t0:.1f} s of device time (nominal {nominal:.1f} s)"
            )
