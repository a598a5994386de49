"""Paper-figure mechanics (issue 13): vector beside raster at one dpi, the emulated data's
footnote, hours for long runs, current density in mA cm⁻², labels that do not overlap,
and a dense pulse train drawn as a band."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from host_sdk.analysis.figures.style import (
    DPI,
    current_axis,
    labels_overlap,
    period_envelope,
    save,
    spread_labels,
    style,
    time_axis,
)


def test_saved_as_png_pdf_svg_at_one_dpi_with_footnote(tmp_path: Path) -> None:
    with style():
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        f = save(fig, tmp_path, "x", "A line.", footnote="Emulated board: not a measured cell.")
    assert sorted(Path(p).suffix for p in f.paths) == [".pdf", ".png", ".svg"]
    assert Image.open(f.png).info["dpi"] == pytest.approx((DPI, DPI), abs=0.5)
    svg = Path(f.paths[2]).read_text()
    assert "Emulated board" in svg and "<path" in svg  # vector, text kept as text
    assert f.caption.endswith("not a measured cell.")


def test_hours_for_long_runs_and_current_density() -> None:
    assert time_axis([0.0, 3600.0])[1] == "time (s)"
    t, unit = time_axis([0.0, 20 * 3600.0])
    assert unit == "time (h)" and t[-1] == pytest.approx(20.0)
    assert time_axis([0.0, 6 * 86400.0])[1] == "time (d)"
    i, label = current_axis([3.85e-4], 3.85e-5)
    assert i[0] == pytest.approx(1.0) and "mA cm" in label
    assert current_axis([3.85e-4], None)[1] == "current (mA)"


def test_labels_are_spread_until_none_overlap() -> None:
    with style():
        fig, ax = plt.subplots(figsize=(3.5, 2.6))
        ax.plot([0, 10], [0, 100])
        texts = [ax.annotate(f"{v:.3g}", (0.1 * k, v)) for k, v in enumerate([0.8, 2.2, 3.1])]
        fig.canvas.draw()
        assert labels_overlap(ax, texts)
        spread_labels(ax, texts)
        assert not labels_overlap(ax, texts)
        plt.close(fig)


def test_a_dense_pulse_train_reads_as_peaks_and_rest_levels() -> None:
    t = np.arange(0.0, 600.0, 0.01)  # 200 pulses of 1 s every 3 s
    v = np.where((t % 3.0) < 1.0, 0.3 + 0.001 * t, 0.02)
    tp, hi, lo = period_envelope(t, v, 3.0)
    assert tp.size == 200
    np.testing.assert_allclose(hi, 0.3 + 0.001 * (tp + 0.99), atol=1e-9)
    np.testing.assert_allclose(lo, 0.02)
