"""Recording: round trip, kill -9 of the writer, truncated and corrupt files, export."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from host_sdk import wire
from host_sdk.recording import Recorder, RecordingError, export_recording, load_recording
from protocol import defs

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
    assert elec.records.dtype["voltage"] == hello.stream_named("elec").dtype["voltage"]
    assert rec.lost_samples()["elec"] == 12
    assert rec.events[0]["cause"] == 3 and rec.markers[0]["text"] == b"step 0 rest"


def test_export_csv_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    _write(path, 2)
    csvs = export_recording(path, tmp_path / "csv", "csv")
    pqs = export_recording(path, tmp_path / "pq", "parquet")
    elec_csv = next(p for p in csvs if p.name == "r_elec.csv")
    lines = elec_csv.read_text().splitlines()
    assert lines[0].startswith("t_dev_s,sample_index,t_us,voltage")
    assert len(lines) == 1001
    table = pq.read_table(next(p for p in pqs if p.name == "r_fbg.parquet"))
    assert "g0_nm" in table.column_names  # physical column from the HELLO scale
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


def _records_on_disk(path: Path) -> int:
    """Records of elec the file holds now, read with plain h5py while it is being written
    (0 when the open happened to meet the writer mid-flush)."""
    try:
        with h5py.File(path) as f:
            return int(f["streams/elec/time"].shape[0])
    except (OSError, KeyError):
        return 0


PLAIN_OPEN = (
    "import sys, h5py\n"
    "with h5py.File(sys.argv[1]) as f:\n"  # plain: default mode, default file locking
    "    n = f['streams/elec/time'].shape[0]\n"
    "    print(n, f.attrs['format'], f['outcome'].attrs['stopped_by'])"
)


def test_kill_9_leaves_a_file_that_plain_h5py_opens(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # the file can be read while it is written; wait until a few flushes are on disk
        deadline = time.monotonic() + 120
        seen = 0
        while seen < 2000 and time.monotonic() < deadline:
            seen = max(seen, _records_on_disk(path))
            time.sleep(0.05)
        assert seen >= 2000, "the writer never flushed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # a fresh process, plain h5py.File(path): no repair, no special flags
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_OPEN, str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    n, fmt, stopped_by = out.stdout.split()
    assert int(n) >= seen and fmt == "stressrig-recording" and stopped_by == "running"
    rec = load_recording(path)
    assert not rec.complete
    assert any("not closed" in p for p in rec.problems)
    assert rec.outcome is not None and rec.outcome["stopped_by"] == "unknown"
    elec = rec.streams["elec"]
    assert len(elec) >= seen  # nothing that was on disk before the kill is lost
    assert np.array_equal(elec.records["sample_index"], np.arange(len(elec)))


def _board_hello(unique_id: str) -> wire.Hello:
    """Streams named and scaled as the firmware announces them (firmware/hello.py)."""
    fi, si = wire.FieldInfo, wire.StreamInfo
    t = fi("t_us", "us")
    streams = (
        si(0, "load", 80.0, True, "<IiB", (t, fi("counts", "N", 2e-4, 0.0), fi("status", ""))),
        si(
            2,
            "elec",
            100.0,
            True,
            "<IiiB",
            (t, fi("voltage", "V", 1.5e-4, -5.0), fi("current", "A", 3e-8, -1e-3), fi("state", "")),
        ),
    )
    return wire.reference_hello(unique_id=unique_id, streams=streams)


class _FakeRig:
    """What Recorder.attach needs from a rig: HELLO, link url, callbacks, applied config."""

    def __init__(self, hello: wire.Hello) -> None:
        self.hello = hello
        self.link = SimpleNamespace(url="emu://fake")
        self.cell = {"electrode_area_m2": 3.85e-5, "stack_area_m2": 1.131e-4, "label": "c"}
        self.stream_config = {"elec": {"enabled": True, "rate_hz": 20.0}}
        self.device_epoch_utc = 1.7e9

    def on_block(self, cb: object) -> object:
        return lambda: None

    on_gap = on_event = on_block


def test_the_file_explains_itself_to_plain_h5py(tmp_path: Path) -> None:
    hello = _board_hello("explain")
    elec = hello.stream_named("elec")
    path = tmp_path / "x.h5"
    cal = {
        "load_cell": {"tare_counts": 10.0, "span_n_per_count": 2e-4},
        "stack_area_m2": 1.131e-4,
    }
    rec = Recorder.attach(_FakeRig(hello), path, calibration=cal, flush_interval_s=0.05)
    rec.add_block(_block(elec, 0, 100, 20.0))
    rec.add_event(SimpleNamespace(t_s=0.5, code=defs.EV_STOP_LATCHED, cause=7, index=0, value=0))
    from host_sdk.protocols import Outcome

    rec.set_outcome(Outcome.board_stop("watchdog", step_index=2, step_path="steps[2]", t_dev_s=0.5))
    rec.close()
    with h5py.File(path) as f:
        assert f.attrs["sdk_version"] and f.attrs["start_utc"].startswith("2023-11-14T22:13:20")
        for name in ("streams/elec", "streams/load", "events", "gaps", "markers", "steps"):
            for col in f[name].values():  # every dataset: units and a description
                assert "units" in col.attrs and "long_name" in col.attrs, f"{name}/{col.name}"
            if "time" in f[name]:
                assert f[name]["time"].attrs["units"] == "s"
                assert f[name]["time"].attrs["start"].startswith("2023-11-14T22:13:20")
        assert f["streams/elec"].attrs["rate_hz"] == 20.0  # as configured, not the default
        counts = f["streams/load/counts"].attrs
        assert counts["units"] == "counts" and counts["physical_units"] == "N"
        assert counts["scale_factor"] == 2e-4 and "nominal" in counts["note"]
        names = h5py.check_enum_dtype(f["events/code"].dtype)
        assert names is not None and names["stop_latched"] == defs.EV_STOP_LATCHED
        causes = h5py.check_enum_dtype(f["events/cause"].dtype)
        assert causes is not None and causes["watchdog"] == 7
        assert f["cell"].attrs["stack_area_m2"] == pytest.approx(1.131e-4)
        assert f["cell"].attrs["electrode_area_m2"] == pytest.approx(3.85e-5)
        assert f["calibration"].attrs["load_cell_span_n_per_count"] == 2e-4
        out = f["outcome"].attrs
        assert not out["completed"] and out["stopped_by"] == "watchdog"
        assert out["step_index"] == 2 and out["t_dev_s"] == 0.5
    back = load_recording(path)
    assert back.completed is False and back.outcome is not None
    assert "watchdog" in (back.outcome_line() or "")
    assert back.cell["stack_area_m2"] == pytest.approx(1.131e-4)


def test_bdf_export_opens_in_pandas_with_calibrated_pressure(tmp_path: Path) -> None:
    import pandas as pd

    hello = _board_hello("bdf")
    elec, load = hello.stream_named("elec"), hello.stream_named("load")
    path = tmp_path / "b.h5"
    cal = {"load_cell": {"tare_counts": 0.0, "span_n_per_count": 1.0}, "stack_area_m2": 1e-4}
    with Recorder(path, hello, calibration=cal) as r:
        r.add_block(_block(elec, 0, 1000, 100.0))
        ld = _block(load, 0, 100, 10.0)
        ld.records["counts"] = 1000  # 1000 N on 1 cm²: 10 MPa
        r.add_block(ld)
    written = export_recording(path, tmp_path / "out", "bdf")
    table = next(p for p in written if p.name == "b.bdf.csv")
    df = pd.read_csv(table)
    for col in ("Test Time / s", "Voltage / V", "Current / A", "Applied Pressure / Pa"):
        assert col in df.columns
    inside = df["Test Time / s"] <= 9.9
    assert np.allclose(df.loc[inside, "Applied Pressure / Pa"], 1e7)
    meta = json.loads((tmp_path / "out" / "b.bdf.metadata.json").read_text())
    assert meta["stressrig"]["stack_area_m2"] == 1e-4
    names = [v["name"] for v in meta["battinfo_dataset"]["dataset"]["variable_measured"]]
    assert "Stack Force" in names
    parquet = export_recording(path, tmp_path / "pq", "bdf-parquet")[0]
    assert pd.read_parquet(parquet)["Applied Pressure / Pa"].max() == pytest.approx(1e7)
    ds = load_recording(path).to_xarray()
    assert ds["pressure"].attrs["units"] == "Pa" and float(ds["pressure"].max()) == 1e7


def test_without_a_stack_area_there_is_force_but_no_pressure(tmp_path: Path) -> None:
    hello = wire.reference_hello(unique_id="noarea")
    path = tmp_path / "n.h5"
    # an old-style calibration: one "area_m2" (the demo put the electrode area there)
    cal = {"load_cell": {"tare_counts": 0.0, "span_n_per_count": 1.0}, "area_m2": 3.85e-5}
    with Recorder(path, hello, calibration=cal) as r:
        r.add_block(_block(hello.stream_named("load"), 0, 50, 10.0))
    from host_sdk.calibration import si_channels

    ch = si_channels(load_recording(path))
    assert "force_n" in ch and "pressure_pa" not in ch
    assert any("no stack area" in n for n in ch["notes"])
    df_cols = export_recording(path, tmp_path / "o", "bdf")[0].read_text().splitlines()[0]
    assert "Stack Force / N" in df_cols and "Applied Pressure" not in df_cols
