"""`analyze_recording` on adaptive-rest steps (issue 14): the rests the board chose (its
rest_end events) counted and measured per step and over all, the planner's recommended
fixed rest beside them, the critical capacity of a series its cutoff ended, and a refusal
with the reason when the events are missing. Synthetic recordings (real HDF5 files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from host_sdk.analysis import FilmMaterial, plan_rest
from host_sdk.analysis.figures.style import DPI
from host_sdk.recording.analyze import analyze_recording
from protocol import defs
from tests.analysis.synthetic import Step, waveform_events, write

AREA = 3.85e-5
FILM = FilmMaterial(1e-9, 100e-6, 1000.0, 0.0, contact_fraction=0.05)
I_A_M2 = 10.0
SINGLE_S = 11.5
# the rest after each pulse: the third one reached the 20 s maximum before |dV/dt| settled
RESTS = [(4.0, True), (5.5, True), (20.0, False), (6.0, True), (5.0, True)]
SETTLE = {"dvdt_v_per_s": 5e-4, "hold_s": 0.5, "min_s": 0.2, "max_s": 20.0, "window_s": 0.5}
CHARGE_C = 0.05


def _recording(
    tmp: Path,
    *,
    end_cause: str = "v_max",
    with_rest_ends: bool = True,
    with_protocol: bool = True,
) -> Path:
    """An open-circuit adaptive rest, then pulses with adaptive rests; the last pulse is
    cut by the 3 V cutoff (or the series ends `completed`, its pulses run out)."""
    events = waveform_events(0.0, defs.CMD_ADAPTIVE_REST, [], SINGLE_S, defs.CAUSE_SETTLED, 0.0)
    rest_ends = [(SINGLE_S, defs.EV_REST_END, defs.CAUSE_SETTLED, 0, SINGLE_S * 1000.0)]
    t0 = SINGLE_S + 0.5
    t, edges = t0, []
    for k, (length, settled) in enumerate(RESTS):
        edges += [(t, I_A_M2 * AREA), (t + 1.0, 0.0)]
        t += 1.0 + length
        cause = defs.CAUSE_SETTLED if settled else defs.CAUSE_DURATION
        rest_ends.append((t, defs.EV_REST_END, cause, k, length * 1000.0))
    cut = end_cause == "v_max"
    if cut:  # one more pulse, cut by the cutoff half-way
        edges.append((t, I_A_M2 * AREA))
        t += 0.5
    cause = defs.CAUSE_V_MAX if cut else defs.CAUSE_COMPLETED
    events += waveform_events(t0, defs.CMD_ADAPTIVE_PULSES, edges, t, cause, CHARGE_C)
    if with_rest_ends:
        events = sorted(events + rest_ends, key=lambda e: e[0])
    steps = [
        Step(0, "adaptive_rest", "open circuit", 0.0, SINGLE_S, "settled"),
        Step(1, "adaptive_pulses", "pulses", t0, t, end_cause),
    ]
    proto = {
        "source": "t.toml",
        "name": "t",
        "file": {
            "cell": {"area_m2": AREA},
            "steps": [
                {
                    "kind": "adaptive_rest",
                    "label": "open circuit",
                    "settle": {"dvdt_v_per_s": 1e-3, "hold_s": 1.0, "min_s": 2.0, "max_s": 30.0},
                },
                {
                    "kind": "adaptive_pulses",
                    "label": "pulses",
                    "current_a_m2": I_A_M2,
                    "t_on_s": 1.0,
                    "count": len(RESTS) + (1 if cut else 0),
                    "settle": SETTLE,
                    "cutoff": {"v_max_v": 3.0},
                },
            ],
        },
    }
    tt = np.arange(0.0, t, 0.1)
    return write(
        tmp / "adaptive.h5",
        protocol=proto if with_protocol else None,
        steps=steps if with_protocol else [],
        events=events,
        elec=(tt, np.full(tt.size, 0.3), np.zeros(tt.size)),
        cell={"electrode_area_m2": AREA} if with_protocol else None,
    )


def _analysis(summary: dict) -> dict:
    (a,) = [x for x in summary["analyses"] if x["analysis"] == "adaptive rests"]
    return a


def test_rest_lengths_per_step_against_the_planner_and_the_critical_capacity(
    tmp_path: Path,
) -> None:
    s = analyze_recording(_recording(tmp_path), tmp_path / "a", film=FILM)
    a = _analysis(s)
    assert a["steps"] == [0, 1]
    n = a["numbers"]
    lengths = [x for x, _ in RESTS]
    assert (n["count"], n["settled"], n["at_max"]) == (6, 5, 1)
    assert n["length_s"]["total"] == pytest.approx(SINGLE_S + sum(lengths))
    after = n["after_pulses"]
    assert (after["count"], after["settled"], after["at_max"]) == (5, 4, 1)
    assert after["length_s"] == pytest.approx(
        {"min": 4.0, "median": 5.5, "max": 20.0, "total": sum(lengths)}
    )
    assert n["single_rests"]["length_s"]["median"] == pytest.approx(SINGLE_S)
    single, pulses = n["series"]
    assert (single["kind"], single["count"], pulses["count"]) == ("adaptive_rest", 1, 5)
    assert pulses["settle"] == SETTLE and pulses["end_cause"] == "v_max"
    assert pulses["critical_capacity_mah_cm2"] == pytest.approx(CHARGE_C / AREA / 36_000, rel=1e-6)
    plan = plan_rest(FILM, I_A_M2, 1.0, (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 5.5))
    assert pulses["planner"]["recommended_rest_s"] == pytest.approx(plan.recommended_rest_s)
    assert n["planner_rest_s"] == pytest.approx(plan.recommended_rest_s)
    assert pulses["planner"]["capacity_at_median_rest_mah_cm2"] == pytest.approx(
        plan.capacity_c_m2[-1] / 36_000
    )
    assert pulses["planner"]["fixed_rests_total_s"] == pytest.approx(5 * plan.recommended_rest_s)
    # the numbers are in summary.json, the figure in three formats with its caption
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["adaptive_rests"]["count"] == 6
    (fig,) = [f for f in s["figures"] if f["name"] == "rest_decisions"]
    assert {Path(p).suffix for p in fig["files"]} == {".png", ".pdf", ".svg"}
    assert Image.open(fig["files"][0]).info["dpi"] == pytest.approx((DPI, DPI), abs=0.5)
    assert "maximum came first" in fig["caption"] and "planner's recommended" in fig["caption"]
    line = next(x for x in s["report"] if x.startswith("adaptive rests:"))
    assert "6 (5 settled, 1 at the maximum)" in line and "critical capacity" in line
    assert not s["analysis_errors"]


def test_no_rest_end_events_is_refused_with_the_reason(tmp_path: Path) -> None:
    s = analyze_recording(
        _recording(tmp_path, with_rest_ends=False), tmp_path / "a", formats=("png",)
    )
    why = {r["analysis"]: r["reason"] for r in s["refused"]}
    assert "no rest_end events" in why["adaptive rests"]
    assert "adaptive_rests" not in s
    assert not any(f["name"] == "rest_decisions" for f in s["figures"])


def test_a_series_without_its_cutoff_gives_no_capacity_and_no_film_no_planner(
    tmp_path: Path,
) -> None:
    s = analyze_recording(
        _recording(tmp_path, end_cause="completed"), tmp_path / "a", formats=("png",)
    )
    pulses = s["adaptive_rests"]["series"][1]
    assert "critical_capacity_mah_cm2" not in pulses
    assert "lower bound" in pulses["capacity_note"]
    assert "planner" not in pulses and s["adaptive_rests"]["planner_rest_s"] is None
    why = {r["analysis"]: r["reason"] for r in s["refused"]}
    assert "--film" in why["planner's recommended rest"]


def test_a_recording_without_a_protocol_gets_its_steps_from_the_commands(
    tmp_path: Path,
) -> None:
    s = analyze_recording(
        _recording(tmp_path, with_protocol=False), tmp_path / "a", formats=("png",)
    )
    assert [x["kind"] for x in s["experiment"]["steps"]] == ["adaptive_rest", "adaptive_pulses"]
    n = s["adaptive_rests"]
    assert (n["count"], n["after_pulses"]["count"]) == (6, 5)
    why = {r["analysis"]: r["reason"] for r in s["refused"]}
    assert "no electrode area" in why["planner's recommended rest"]


def test_several_series_share_one_legend_entry_for_the_maximum(tmp_path: Path) -> None:
    from host_sdk.analysis.figures.rests import RestSeries, SingleRest, plot_rest_lengths

    x = np.arange(1.0, 31.0)
    settled = np.arange(30) % 7 != 3
    series = [RestSeries(f"step {k}", x, np.full(30, 5.0 + k), settled, 8.0) for k in (1, 3, 5)]
    with pytest.MonkeyPatch.context() as mp:
        import matplotlib.axes

        labels: list[list[str]] = []
        real = matplotlib.axes.Axes.legend

        def spy(self, *a, **k):  # type: ignore[no-untyped-def]
            leg = real(self, *a, **k)
            labels.append([t.get_text() for t in leg.get_texts()])
            return leg

        mp.setattr(matplotlib.axes.Axes, "legend", spy)
        fig = plot_rest_lengths(
            series,
            tmp_path,
            single=[SingleRest("step 0", 30.0, True)],
            planned=[("planner's fixed rest 4 s (step 1, 3, 5)", 4.0)],
            formats=("png",),
        )
    assert Path(fig.png).stat().st_size > 10_000
    (entries,) = labels
    assert entries == [
        "step 1",
        "step 3",
        "step 5",
        "maximum reached",
        "each series' median",
        "planner's fixed rest 4 s (step 1, 3, 5)",
    ]
