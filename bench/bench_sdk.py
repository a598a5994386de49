"""SDK benchmarks.

record_write_mb_per_s: raw record bytes per second the HDF5 Recorder sustains (blocks in
    through `add_block`, converted, appended, flushed), against the raw stream rate of a
    board streaming every stream at its reference rate (ratio = headroom).
client_cpu_fraction: CPU time of the client process / wall time while the emulated board
    streams 10 000 samples/s (elec at 5 kHz, device clock at 2x). The emulator runs in its
    own process (`stressrig emulate`) so its pty proxy is not counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _raw_stream_rate_b_s(hello: Any) -> float:
    return float(sum(s.rate_hz * s.record_size for s in hello.streams))


def bench_record_write(seconds: float = 2.0) -> dict[str, Any]:
    from host_sdk import wire
    from host_sdk.recording import Recorder

    hello = wire.reference_hello()
    streams = {s.name: s for s in hello.streams}
    # one "flush interval" (0.5 s) of every stream at 200x its reference rate per round
    blocks = []
    for s in hello.streams:
        n = int(s.rate_hz * 0.5 * 200)
        rec = np.zeros(n, dtype=s.dtype)
        rec["t_us"] = np.arange(n, dtype=np.uint32)
        blocks.append((s.name, rec))
    raw_bytes = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        r = Recorder(path, hello, background=False)
        first = dict.fromkeys(streams, 0)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for name, rec in blocks:
                # producers hand blocks of ~a frame run; split like the decoder would
                for part in np.array_split(rec, 50):
                    t_s = part["t_us"] * 1e-6
                    r.add_block(
                        SimpleNamespace(stream=name, records=part, t_s=t_s, first_index=first[name])
                    )
                    first[name] += len(part)
                    raw_bytes += part.nbytes
            r.flush()
        elapsed = time.perf_counter() - t0
        r.close()
        file_mb = path.stat().st_size / 1e6
    mb_s = raw_bytes / elapsed / 1e6
    base = _raw_stream_rate_b_s(hello) / 1e6
    return {
        "name": "record_write_mb_per_s",
        "value": mb_s,
        "unit": "MB/s",
        "baseline": base,
        "ratio": mb_s / base,
        "note": f"raw record bytes; baseline = all reference streams at their rates; "
        f"file {file_mb:.0f} MB",
    }


def bench_client_cpu(
    seconds: float = 6.0,
    samples_per_s: float = 10_000.0,
    speed: float = 1.0,
    emulated: bool = False,
) -> dict[str, Any]:
    from host_sdk.client import Rig

    if emulated:
        cmd = [
            sys.executable,
            "-c",
            "import sys; from host_sdk.emulator import "
            "run_emulator_cli; sys.exit(run_emulator_cli(sys.argv[1:]))",
            "--scenario",
            "nak50_pulsed",
            "--speed",
            str(speed),
            "--seed",
            "1",
        ]
    else:  # the loopback board of the tests, behind a pty in its own process
        cmd = [sys.executable, "-m", "tests.sdk.ptyboard"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        with Rig.open(port) as rig:
            for name in rig.streams:
                if name != "elec":
                    rig.configure_stream(name, rate_hz=rig.streams[name].rate_hz, enabled=False)
            rate = samples_per_s / speed
            rig.configure_stream("elec", rate_hz=rate)
            got = [0]
            rig.on_block(lambda b: got.__setitem__(0, got[0] + len(b)))
            rig.set_streaming(True)
            time.sleep(1.0)  # settle
            n0, c0, w0 = got[0], time.process_time(), time.perf_counter()
            time.sleep(seconds)
            n1, c1, w1 = got[0], time.process_time(), time.perf_counter()
            lost = sum(rig.lost_samples.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    frac = (c1 - c0) / (w1 - w0)
    received = (n1 - n0) / (w1 - w0)
    name = "client_cpu_fraction" + ("_emulated_board" if emulated else "")
    return {
        "name": name,
        "value": frac,
        "unit": "cpu/wall",
        "baseline": 1.0,
        "ratio": frac,
        "note": f"{received:.0f} samples/s received ({samples_per_s:.0f} asked), "
        f"{lost} lost, {'emulated board' if emulated else 'loopback board'}",
    }


def run() -> list[dict[str, Any]]:
    results = [bench_record_write()]
    results.append(bench_client_cpu())
    try:  # the emulated board streams at most ~5 kS/s today: ask for its maximum
        results.append(bench_client_cpu(samples_per_s=5000.0, emulated=True))
    except Exception as e:  # noqa: BLE001 - no emulator here: report the others
        print(f"client_cpu_fraction_emulated_board skipped: {e}", file=sys.stderr)
    return results


if __name__ == "__main__":
    os.chdir(ROOT)
    for r in run():
        print(r)
