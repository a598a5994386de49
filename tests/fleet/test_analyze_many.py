"""analyze-many on a local Dask cluster: one Parquet summary, comparison figures, and a bad
file listed without stopping the others."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from host_sdk import cli
from host_sdk.fleet.testdata import bad_file, make_recordings


def test_many_recordings_one_table_figures_and_the_bad_file_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    files = make_recordings(runs, 3)
    bad_file(runs / "notes.h5")
    out = tmp_path / "out"
    rc = cli.main(["analyze-many", str(runs / "*.h5"), "--out", str(out), "--workers", "2"])
    err = capsys.readouterr().err
    assert rc == 1  # the table holds the good ones; the exit code says one was bad
    assert "bad file" in err and "notes.h5" in err
    table = pd.read_parquet(out / "summary.parquet")
    assert sorted(Path(f).name for f in table["file"]) == sorted(f.name for f in files)
    assert table["completed"].all() and (table["pulse_trains"] == 3).all()
    trains = pd.read_parquet(out / "pulse_trains.parquet")
    assert len(trains) == 9 and set(trains["rest_s"]) == {0.5, 1.0, 2.0}
    # each cell's capacity rises with the rest (the template's scaling), per file
    for _, g in trains.groupby("file"):
        assert g.sort_values("rest_s")["capacity_mah_cm2"].is_monotonic_increasing
    assert (out / "capacity_vs_rest.png").stat().st_size > 10_000
    assert (out / "overview.png").exists()
    assert "notes.h5" in (out / "bad_files.txt").read_text()
    for f in files:
        assert (out / f"{f.stem}_analysis" / "summary.json").exists()
    assert cli.main(["analyze-many", str(tmp_path / "nothing*.h5")]) == 2
