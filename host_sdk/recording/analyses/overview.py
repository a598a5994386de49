"""The run at a glance: voltage and current density against time with the steps numbered,
and a zoom on three pulses of the first pulsed step (pulse train, staircase or GITT)."""

from __future__ import annotations

import numpy as np

from host_sdk.analysis.figures.overview import plot_overview, plot_stack_pressure

from .common import Context, Report


def _raw_elec(ctx: Context) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The elec stream's first field as recorded, for a board that announced no volts."""
    elec = ctx.exp.rec.streams.get("elec")
    if elec is None or not len(elec):
        return None
    names = [f["name"] for f in elec.fields if f["name"] not in ("t_us", "state", "status")]
    return (elec.t_s, elec.physical(names[0]), f"{names[0]} (raw)") if names else None


def overview(ctx: Context, report: Report) -> None:
    v_label = "cell voltage (V)"
    if "voltage_v" in ctx.ch:
        t_v, v = ctx.ch["voltage_v"]
    else:
        raw = _raw_elec(ctx)
        if raw is None:
            report.refuse("voltage and current overview", [], "no elec stream was recorded")
            return
        t_v, v, v_label = raw
        report.lines.append(f"note: the board announced no volts: {v_label} drawn as recorded")
    t_i, i = ctx.ch.get("current_a", (np.zeros(0), np.zeros(0)))
    zoom = None
    span = float(np.ptp(t_v)) if len(t_v) else 0.0
    dense = 0.0  # the longest period among trains too dense to draw pulse by pulse
    for s in ctx.exp.of_kind("pulse_train", "staircase", "gitt"):
        pulses = s.pulses()
        if len(pulses) >= 4:
            k = len(pulses) // 3
            period = pulses[k + 1][0] - pulses[k][0]
            if zoom is None:
                zoom = (pulses[k][0] - 0.2 * period, pulses[k][0] + 2.8 * period)
            if period < span / 300.0:
                dense = max(dense, period)
    steps = [(s.index, s.t_start_s, s.t_end_s) for s in ctx.exp.steps]
    area = "current density" if ctx.area_m2 else "current"
    fig = plot_overview(
        np.asarray(t_v),
        np.asarray(v),
        np.asarray(t_i),
        np.asarray(i),
        ctx.out,
        area_m2=ctx.area_m2,
        v_label=v_label,
        step_bounds=steps,
        zoom_s=zoom,
        pulse_period_s=dense,
        caption=f"Cell voltage and {area} against device time; numbers: protocol steps"
        + ("; inset: three pulses magnified." if zoom else "."),
        footnote=ctx.footnote,
        formats=ctx.options.formats,
    )
    fig.steps = [s.index for s in ctx.exp.steps]
    duration = float(np.ptp(t_v)) if len(t_v) else 0.0
    report.add(
        "voltage and current",
        ctx.exp.steps,
        {"duration_s": duration},
        [fig],
        f"{len(ctx.exp.steps)} steps over {duration:.0f} s of device time",
        name_steps=False,
    )

    if "pressure_pa" in ctx.ch and len(ctx.ch["pressure_pa"][0]) > 1:
        t_p, p = ctx.ch["pressure_pa"]
        pf = plot_stack_pressure(
            np.asarray(t_p),
            np.asarray(p),
            ctx.out,
            step_bounds=steps,
            caption=f"Stack pressure (load-cell force over the {ctx.ch['stack_area_m2'] * 1e6:.4g}"
            " mm² stack) against device time; grey: step starts.",
            footnote=ctx.footnote,
            formats=ctx.options.formats,
        )
        report.add(
            "stack pressure",
            ctx.exp.steps,
            {"first_mpa": float(p[0] / 1e6), "last_mpa": float(p[-1] / 1e6)},
            [pf],
            f"stack pressure {p[0] / 1e6:.3g} → {p[-1] / 1e6:.3g} MPa",
            name_steps=False,
        )
