"""Recording: round trip, kill -9 of the writer, truncated and corrupt files, export."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from host_sdk import wire
from host_sdk.recording import Recorder, RecordingError, export_recording, load_recording

ROOT = Path(__file__).resolve().parents[2]


def _block(stream: wire.StreamInfo, first: int, n: int, rate: float) -> SimpleNamespace:
    rec = np.zeros(n, dtype=stream.dtype)
    idx = np.arange(first, first + n)
    rec["t_us"] = (idx * 1e6 / rate).astype(np.int64) & 0xFFFFFFFF
    for name in stream.dtype.names or ():
        if name not in ("t_us",):
            rec[name] = (idx % 1000).astype(rec[name].dtype)
    return SimpleNamespace(stream=stream.name, records=rec, t_s=idx / rate, first_index=first)


def _write(path: Path, n_blocks: int = 20) -> wire.Hello:
    hello = wire.reference_hello(unique_id="rec-test")
    elec, load = hello.stream_named("elec"), hello.stream_named("load")
    with Recorder(
        path,
        hello,
        protocol={"name": "p", "file": {"steps": []}},
        calibration={"area_m2": 3.85e-5},
        meta={"who": "test"},
    ) as r:
        for k in range(n_blocks):
            r.add_block(_block(elec, k * 500, 500, 5000.0))
            r.add_block(_block(load, k * 8, 8, 80.0))
        r.add_gap(
            SimpleNamespace(
                stream="elec", stream_id=2, first_index=10_000, count=12, t_s=2.0, kind="lost"
            )
        )
        r.add_event(SimpleNamespace(t_s=0.5, code=4, cause=3, index=7, value=0.25))
        r.add_marker(0.1, "step 0 rest")
    return hello


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    hello = _write(path)
    rec = load_recording(path)
    assert rec.intact and rec.complete
    assert rec.unique_id == "rec-test" and rec.firmware_version == "0.1.0"
    assert rec.hello["streams"][2]["name"] == "elec"
    assert rec.calibration == {"area_m2": 3.85e-5} and rec.protocol is not None
    elec = rec.streams["elec"]
    assert len(elec) == 10_000
    assert np.array_equal(elec.records["sample_index"], np.arange(10_000))
    assert np.allclose(elec.t_s, np.arange(10_000) / 5000.0)
    assert elec.records.dtype["v_counts"] == hello.stream_named("elec").dtype["v_counts"]
    assert rec.lost_samples()["elec"] == 12
    assert rec.events[0]["cause"] == 3 and rec.markers[0]["text"] == b"step 0 rest"


def test_export_csv_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    _write(path, 2)
    csvs = export_recording(path, tmp_path / "csv", "csv")
    pqs = export_recording(path, tmp_path / "pq", "parquet")
    elec_csv = next(p for p in csvs if p.name == "r_elec.csv")
    lines = elec_csv.read_text().splitlines()
    assert lines[0].startswith("t_dev_s,sample_index,t_us,v_counts")
    assert len(lines) == 1001
    table = pq.read_table(next(p for p in pqs if p.name == "r_fbg.parquet"))
    assert "fm_0_m" in table.column_names  # physical column from the HELLO scale
    events = pq.read_table(next(p for p in pqs if p.name == "r_events.parquet"))
    assert events.column("name").to_pylist() == ["waveform_end"]


def test_truncated_file_loads_what_is_intact(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    _write(path, 200)  # 100 000 elec records, several chunks
    cut = tmp_path / "cut.h5"
    shutil.copyfile(path, cut)
    os.truncate(cut, int(path.stat().st_size * 0.7))
    t0 = time.monotonic()
    rec = load_recording(cut)
    assert time.monotonic() - t0 < 10
    assert not rec.intact
    assert any("truncated" in p for p in rec.problems)
    n = len(rec.streams["elec"])
    assert 0 < n < 100_000
    assert np.array_equal(rec.streams["elec"].records["sample_index"], np.arange(n))
    assert any("stream 'elec'" in p and f"read {n} of 100000" in p for p in rec.problems)


def test_not_a_recording_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(RecordingError, match="not a readable stressrig recording"):
        load_recording(bad)
    with pytest.raises(RecordingError, match="no such file"):
        load_recording(tmp_path / "missing.h5")


WRITER = textwrap.dedent(
    """
    import sys, time
    from types import SimpleNamespace
    import numpy as np
    from host_sdk import wire
    from host_sdk.recording import Recorder
    hello = wire.reference_hello(unique_id="killme")
    elec = hello.stream_named("elec")
    r = Recorder(sys.argv[1], hello, flush_interval_s=0.25)
    i = 0
    print("ready", flush=True)
    while True:   # 5000 records/s, t_dev_s = the wall clock when written
        n = 250
        rec = np.zeros(n, dtype=elec.dtype)
        r.add_block(SimpleNamespace(stream="elec", records=rec,
                                    t_s=np.full(n, time.time()), first_index=i))
        i += n
        time.sleep(0.05)
    """
)


def test_kill_9_leaves_a_readable_file_missing_at_most_one_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(2.5)
        t_kill = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = load_recording(path)
    assert not rec.complete
    assert any("not closed" in p for p in rec.problems)
    elec = rec.streams["elec"]
    assert len(elec) > 0
    assert np.array_equal(elec.records["sample_index"], np.arange(len(elec)))
    assert t_kill - float(elec.t_s[-1]) < 1.0, "more than the last second is missing"
