"""`stressrig analyze` options (issue 13): a film for the planner, figure formats; bad
values are refused in one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host_sdk import cli
from tests.analysis.synthetic import write


def _rec(tmp: Path) -> Path:
    t = np.arange(0.0, 100.0, 0.1)
    return write(
        tmp / "r.h5",
        protocol=None,
        steps=[],
        events=[],
        elec=(t, np.full(t.size, 3.0), np.zeros(t.size)),
    )


def test_film_and_formats_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = _rec(tmp_path)
    (tmp_path / "bad.json").write_text('{"d_m2_s": 1e-9}')
    assert cli.main(["analyze", str(rec), "--film", str(tmp_path / "bad.json")]) == 2
    assert "missing thickness_m" in capsys.readouterr().err
    assert cli.main(["analyze", str(rec), "--formats", "png,jpg"]) == 2
    assert "allowed png, pdf, svg" in capsys.readouterr().err


def test_png_only_and_the_report_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = _rec(tmp_path)
    film = {"d_m2_s": 1e-9, "thickness_m": 1e-4, "c0_mol_m3": 1000.0, "c_crit_mol_m3": 0.0}
    (tmp_path / "film.json").write_text(json.dumps(film))
    out = tmp_path / "a"
    args = ["analyze", str(rec), "--out", str(out), "--formats", "png"]
    assert cli.main([*args, "--film", str(tmp_path / "film.json")]) == 0
    assert (out / "voltage_current.png").exists() and not (out / "voltage_current.pdf").exists()
    printed = capsys.readouterr().out
    assert "0 steps over" in printed and "summary:" in printed
