"""Stack-pressure holds (issue 14): the pressure the board held against its setpoint and the
pressure the cell would have reached with the press fixed (seed 001's open-loop rise).

Per hold (from its press_hold start event to its stop): the setpoint, the error of the
held pressure (p99, max, mean; from 1 s after the start, the loop's approach left out), the
actuator's travel (from where it stood when the first hold began), and the open-loop
rise the press absorbed, held pressure - k x / A, with
the load path's stiffness k from the step's press_hold table (`stiffness_n_per_um`), else the
emulated scenario's press. The setpoint is in the board's load-cell calibration; it is put
on the recording's pressure scale (the host calibration when there is one) through the
recorded load readings, which carry both.

Refused: holds with no stack pressure recorded (no load cell or no stack area).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_sdk.analysis.figures.press_hold import HeldTrace, plot_pressure_held
from host_sdk.analysis.press_hold import HoldSpan, open_loop_mpa, press_hold_record, travel_at
from host_sdk.recording.experiment import StepRun

from .common import Context, Report

NAME = "pressure held vs open loop"
SETTLE_S = 1.0


def _board_to_recorded(ctx: Context, area: float) -> tuple[float, float]:
    """(a, b): recorded MPa = a + b x board MPa, from the load readings (both are linear
    in the counts, so two distinct readings give the line exactly)."""
    load = ctx.exp.rec.streams.get("load")
    tp, pp = ctx.ch["pressure_pa"]
    if load is None or not len(load):
        return 0.0, 1.0
    board = load.physical("counts") / area * 1e-6  # the board's own calibration (HELLO)
    sel = np.isin(load.t_s, tp)
    b_p, r_p = board[sel], np.asarray(pp, float)[np.isin(tp, load.t_s)] * 1e-6
    if b_p.size < 2 or b_p.size != r_p.size:
        return 0.0, 1.0
    lo, hi = int(np.argmin(b_p)), int(np.argmax(b_p))
    if b_p[hi] == b_p[lo]:
        return float(r_p[lo] - b_p[lo]), 1.0
    slope = float((r_p[hi] - r_p[lo]) / (b_p[hi] - b_p[lo]))
    return float(r_p[lo] - slope * b_p[lo]), slope


def _stiffness(ctx: Context, steps: list[StepRun]) -> tuple[float | None, str]:
    for s in steps:
        k = (s.params.get("press_hold") or {}).get("stiffness_n_per_um")
        if k:
            return float(k), f"{s.name}'s press_hold stiffness_n_per_um"
    emu = ctx.exp.emulated
    k = ((emu.truth.get("press") or {}).get("stiffness_n_per_um")) if emu is not None else None
    if k:
        return float(k), f"the emulated scenario's press ({emu.name if emu else ''})"
    return None, "no stiffness known (give stiffness_n_per_um in the press_hold table)"


def _steps_of(ctx: Context, h: HoldSpan) -> list[StepRun]:
    return [s for s in ctx.exp.steps if s.t_start_s < h.t_end_s and s.t_end_s > h.t_start_s]


def analyze(ctx: Context, report: Report) -> None:
    rec = press_hold_record(ctx.exp.rec)
    if not rec.holds:
        return
    all_steps = [s for h in rec.holds for s in _steps_of(ctx, h)]
    if "pressure_pa" not in ctx.ch:
        report.refuse(NAME, all_steps, "no stack pressure recorded (load cell or stack area)")
        return
    area = float(ctx.ch["stack_area_m2"])
    a, b = _board_to_recorded(ctx, area)
    k, k_src = _stiffness(ctx, all_steps)
    tp, pp = ctx.ch["pressure_pa"]
    tp = np.asarray(tp, float)
    # travel from where the press stood when the first hold began: the open loop is the
    # pressure with the press left there (consecutive holds, one per step, continue it)
    x_ref = float(travel_at(rec, np.array([rec.holds[0].t_start_s]))[0])
    traces: list[HeldTrace] = []
    rows: list[dict[str, Any]] = []
    for n, h in enumerate(rec.holds):
        sel = (tp > h.t_start_s + SETTLE_S) & (tp <= h.t_end_s)
        if sel.sum() < 3:
            continue
        t = tp[sel]
        p = np.asarray(pp, float)[sel] * 1e-6
        sp = a + b * h.setpoint_board_mpa
        x = travel_at(rec, t) - x_ref
        err = p - sp
        opened = open_loop_mpa(p, x, k, area) if k else None
        steps = _steps_of(ctx, h)
        row: dict[str, Any] = {
            "hold": n,
            "steps": [s.index for s in steps],
            "t_start_s": h.t_start_s,
            "t_end_s": h.t_end_s,
            "end_cause": h.end_cause or "still holding",
            "runaway": h.runaway,
            "setpoint_mpa": sp,
            "error_mpa": {
                "p99": float(np.percentile(np.abs(err), 99)),
                "max": float(np.abs(err).max()),
                "mean": float(err.mean()),
            },
            "travel_um": {"min": float(x.min()), "max": float(x.max()), "end": float(x[-1])},
        }
        if opened is not None:
            row["open_loop_rise_mpa"] = float(opened[-1] - opened[0])
        rows.append(row)
        label = ", ".join(s.name for s in steps) or f"hold {n}"
        traces.append(HeldTrace(label, t, p, sp, x, opened))
    if not traces:
        report.refuse(NAME, all_steps, "every hold was shorter than a second of pressure data")
        return
    numbers: dict[str, Any] = {"holds": rows, "stiffness_n_per_um": k, "stiffness_source": k_src}
    fig = plot_pressure_held(
        traces,
        ctx.out,
        caption=(
            "Stack pressure held by the board's press loop (dashed: setpoint) and, "
            + (
                f"in red, the pressure with the press fixed: held − k·travel/A, k = {k:g} N/µm "
                f"({k_src}); "
                if k
                else f"no open-loop curve: {k_src}; "
            )
            + "below, the actuator's travel since the first hold began (towards the stack: +)."
        ),
        footnote=ctx.footnote,
        steps=[s.index for s in all_steps],
        formats=ctx.options.formats,
    )
    worst = max(r["error_mpa"]["p99"] for r in rows)
    line = f"{len(rows)} press holds; p99 error at most {worst:.3g} MPa"
    moved = [r for r in rows if "open_loop_rise_mpa" in r]
    if moved:
        big = max(moved, key=lambda r: abs(r["open_loop_rise_mpa"]))
        line += (
            f"; the largest open-loop change absorbed: {big['open_loop_rise_mpa']:+.3g} MPa "
            f"(hold {big['hold']}, steps {big['steps']})"
        )
    report.add(NAME, all_steps, numbers, [fig], line, name_steps=False)
