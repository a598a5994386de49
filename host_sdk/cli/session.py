"""One recording session for `stressrig record` and `stressrig run`: stream (and run a
protocol), show live figures, stop on Ctrl-C, the end of the protocol, the --duration or a
board that stopped, and always close the recording with its outcome."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_sdk.protocols.outcome import Outcome

P_E = 0.22  # live strain only (uncompensated); the analysis uses the calibration


@dataclass
class SessionResult:
    outcome: Outcome
    summary: dict[str, Any] = field(default_factory=dict)  # printed as JSON on stdout


def _install_live(
    rig: Any, stack_area_m2: float | None, calibration: dict[str, Any] | None
) -> dict[str, str]:
    """Latest figures for the progress bar: voltage (V), stack pressure (MPa; force in N
    without a stack area; the calibration's load cell, else the board's nominal one), FBG
    strain (µε against the first reading, uncompensated)."""
    live: dict[str, str] = {}
    lc = (calibration or {}).get("load_cell") or {}
    streams = rig.streams

    def field_of(stream: str, units: tuple[str, ...]) -> Any:
        s = streams.get(stream)
        for f in s.fields if s is not None else ():
            if f.unit in units and f.name != "t_us":
                return f
        return None

    fv, fl, fb = field_of("elec", ("V",)), field_of("load", ("N",)), field_of("fbg", ("nm",))
    lam0: list[float] = []

    def cb(block: Any) -> None:
        last = block.records[-1]
        if block.stream == "elec" and fv is not None:
            live["V"] = f"{float(last[fv.name]) * fv.scale + fv.offset:.3f}"
        elif block.stream == "load" and fl is not None:
            raw = float(last[fl.name])
            if lc:
                force = (raw - float(lc["tare_counts"])) * float(lc["span_n_per_count"])
            else:
                force = raw * fl.scale + fl.offset
            if stack_area_m2:
                live["MPa"] = f"{force / stack_area_m2 / 1e6:.2f}"
            else:
                live["N"] = f"{force:.1f}"
        elif block.stream == "fbg" and fb is not None:
            lam = float(last[fb.name]) * fb.scale + fb.offset
            if not lam0 and lam > 0:
                lam0.append(lam)
            if lam0:
                live["µε"] = f"{(lam - lam0[0]) / lam0[0] / (1 - P_E) * 1e6:.1f}"

    rig.on_block(cb)
    return live


def _configure(rig: Any, streams: dict[str, dict[str, Any]]) -> None:
    for name, info in rig.streams.items():
        cfg = streams.get(name)
        rig.configure_stream(
            name,
            rate_hz=float((cfg or {}).get("rate_hz", info.rate_hz)),
            enabled=cfg is not None,
        )


def _first_incident(rec: Any, rig: Any) -> Outcome | None:
    """What the board did during a plain recording that a lab must know about."""
    if rig.link_lost:
        return Outcome.board_stop("link_lost", t_dev_s=rig.device_time_s)
    for inc in rec.incidents:
        if inc["kind"] == "latched":
            return Outcome.board_stop(inc["cause"], t_dev_s=inc["t_dev_s"])
        if inc["kind"] == "board_reset":
            return Outcome.board_stop("boot", t_dev_s=inc["t_dev_s"])
    return None


def record_session(
    rig: Any,
    out: Path,
    *,
    protocol: Any = None,
    duration_s: float | None = None,
    streams: dict[str, dict[str, Any]] | None = None,
    calibration: dict[str, Any] | None = None,
    cell: dict[str, Any] | None = None,
    reference_grating: str | None = None,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
    fresh_cell: str = "ask",
) -> SessionResult:
    """Record from an open rig (running `protocol` if given) until the protocol ends, the
    `duration_s` (wall) has passed, the board stops the run, or Ctrl-C."""
    from tqdm import tqdm

    from host_sdk.protocols import run_protocol
    from host_sdk.recording import Recorder

    if streams and protocol is None:
        _configure(rig, streams)
    rec = Recorder.attach(
        rig,
        out,
        protocol=protocol.to_dict() if protocol else None,
        calibration=calibration,
        meta=meta,
        cell=cell,
        reference_grating=reference_grating,
    )
    live = _install_live(rig, (cell or {}).get("stack_area_m2"), calibration)
    stop = threading.Event()
    state: dict[str, Any] = {}
    runner: threading.Thread | None = None
    if protocol is not None:

        def run() -> None:
            try:
                policy: Any = fresh_cell  # one of FRESH_CELL_POLICIES (argparse choices)
                state["result"] = run_protocol(
                    rig, protocol, recorder=rec, stop=stop, fresh_cell=policy
                )
            except Exception as e:  # noqa: BLE001 - reported to the user by the caller
                state["error"] = f"{type(e).__name__}: {e}"

        runner = threading.Thread(target=run, name="protocol", daemon=True)
        runner.start()
    else:
        rig.set_streaming(True)
    t0 = time.monotonic()
    bar = tqdm(
        total=duration_s,
        unit="s",
        disable=not progress,
        dynamic_ncols=True,
        # tqdm puts ", " before the postfix itself
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s{postfix}"
        if duration_s
        else "{desc} {elapsed}{postfix}",
        desc=str(out.name),
    )
    interrupted = ""
    try:
        while True:
            time.sleep(0.25)
            elapsed = time.monotonic() - t0
            lost = sum(rig.lost_samples.values())
            bar.set_postfix_str(
                f"t_dev={rig.device_time_s:.1f}s "
                + " ".join(f"{v}{k}" for k, v in dict(live).items())
                + f" lost={lost}",
                refresh=False,  # the refresh below draws it once
            )
            bar.n = min(elapsed, duration_s) if duration_s else elapsed
            bar.refresh()
            if duration_s is not None and elapsed >= duration_s:
                break
            if runner is not None and not runner.is_alive():
                break
            if runner is None and rig.link_lost:
                break
    except KeyboardInterrupt as e:
        interrupted = str(e) or "Ctrl-C"
    finally:
        # a second Ctrl-C must not leave the current on or the file unsealed
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop.set()
            if runner is not None:
                runner.join(timeout=30)
            bar.close()
            if not rig.link_lost:
                # the last samples can still be queued on the board's link when the run
                # ends: the file gets them before it is sealed (5 s of silence ends the wait)
                rig.wait_data(rig.device_time_s, stall_s=5.0)
            outcome = _outcome(state, rec, rig, protocol, duration_s, interrupted)
            rec.set_outcome(outcome)
            stats = {
                "lost_samples": rig.lost_samples,
                "reconnects": rig.reconnects,
                "board_reboots": rig.boots,
            }
            rec.close(**stats)
        finally:
            signal.signal(signal.SIGINT, previous)
    summary: dict[str, Any] = {"path": str(out), "records": dict(rec.records_written), **stats}
    if "result" in state:
        r = state["result"]
        summary["protocol"] = {
            "completed": r.completed,
            "stopped_by": r.stopped_by,
            "steps": [vars(s) for s in r.steps],
        }
    if "error" in state:
        summary["error"] = state["error"]
    summary["outcome"] = outcome.to_dict()
    return SessionResult(outcome, summary)


def _outcome(
    state: dict[str, Any],
    rec: Any,
    rig: Any,
    protocol: Any,
    duration_s: float | None,
    interrupted: str,
) -> Outcome:
    result = state.get("result")
    ran = result.outcome if result is not None else None
    where: dict[str, Any] = {}
    if ran is not None:
        where = {
            "step_index": ran.step_index,
            "step_path": ran.step_path,
            "step_label": ran.step_label,
        }
    t = rig.device_time_s
    if interrupted:
        cause = "terminated (SIGTERM)" if interrupted == "SIGTERM" else "Ctrl-C"
        return Outcome(False, "interrupted", cause, t_dev_s=t, **where)
    if "error" in state:
        return Outcome(False, "error", state["error"], t_dev_s=t)
    if ran is not None and ran.stopped_by == "interrupted":
        # the protocol was stopped by us: the --duration ran out first
        cause = f"recorded the --duration of {duration_s:g} s; the protocol was stopped"
        return Outcome(True, "duration", cause, t_dev_s=t, **where)
    if ran is not None:
        return ran
    incident = _first_incident(rec, rig)
    if incident is not None:
        return incident
    if protocol is None and duration_s is not None:
        return Outcome(True, "duration", f"recorded the --duration of {duration_s:g} s", t_dev_s=t)
    return Outcome(False, "error", "the protocol did not report how it ended", t_dev_s=t)


def no_stack_area_warning(rig: Any, streams: dict[str, dict[str, Any]] | None) -> bool:
    """True when the load cell will be recorded (so a missing stack area matters)."""
    if streams is not None:
        return "load" in streams
    load = rig.streams.get("load")
    return bool(load is not None and getattr(load, "enabled", True))


__all__ = ["SessionResult", "no_stack_area_warning", "record_session"]
