"""Fleet benchmarks (issue 15).

fleet_rigs_lossless     the most emulated rigs this host runs at once in REAL TIME (each
                        emulated board at a fixed speed=1, not the default max) with zero
                        lost samples at the board's default streams, each supervised and
                        recorded to HDF5 by one `Supervisor`. A board counts as real-time
                        when its device clock kept >= 97 % of wall time; the emulated boards
                        run in their own processes (`python -m host_sdk.emulator`) on the
                        same 2 cores, so the figure includes emulating the boards.
fleet_host_cpu_per_rig  the supervisor process's CPU per rig (% of one core) at 16 rigs.
dask_recordings_per_s   analyze-many on 200 generated recordings on a local Dask cluster
                        (one worker per core); baseline: the same analysis serially in one
                        process; ratio = speed-up.
mqtt_latency_ms_p99     board event -> MQTT subscriber: from the SDK reader thread's receipt
                        of the event through the supervisor's hub, paho, a local Mosquitto,
                        to a subscriber's callback (same host clock); 400 edge events.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REAL_TIME = 0.97
RUN_S = 20.0  # device seconds per trial (= wall seconds at speed 1)


def _cpu_s(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _start_boards(n: int, seed0: int) -> list[tuple[subprocess.Popen[str], str]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "host_sdk.emulator",
                "--speed",
                "1",
                "--seed",
                str(seed0 + k),
                "--status-every",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        for k in range(n)
    ]
    assert all(p.stdout is not None for p in procs)
    return [(p, p.stdout.readline().strip()) for p in procs]  # type: ignore[union-attr]


def _fleet_trial(n: int, folder: Path) -> dict[str, Any]:
    """n real-time boards under one supervisor for RUN_S: lost samples, speed, CPU."""
    from host_sdk.fleet.config import load_fleet
    from host_sdk.fleet.supervisor import Supervisor
    from host_sdk.recording import load_recording

    folder.mkdir(parents=True, exist_ok=True)
    boards = _start_boards(n, 1000 + 100 * n)
    try:
        (folder / "p.toml").write_text(
            f'[protocol]\nname = "soak"\n[[steps]]\nkind = "rest"\nduration_s = {RUN_S}\n'
        )
        text = '[fleet]\nname = "bench"\nout_dir = "runs"\nprotocol = "p.toml"\n'
        for k, (_, port) in enumerate(boards):
            text += f'[[rig]]\nname = "r{k:02d}"\nport = "{port}"\n'
        (folder / "fleet.toml").write_text(text)
        sup = Supervisor(load_fleet(folder / "fleet.toml"))
        pids = [q for p, _ in boards for q in (p.pid, *_children(p.pid))]
        walls: dict[str, list[float]] = {}

        def on_state(kind: str, rig: str, st: dict[str, Any]) -> None:
            # wall time when the step starts and when the rig ends: its real-time ratio
            if kind != "state":
                return
            w = walls.setdefault(rig, [])
            if not w and st.get("step_index") == 0 and st.get("phase") == "running":
                w.append(time.perf_counter())
            elif len(w) == 1 and st.get("phase") in ("completed", "failed", "stopped", "lost"):
                w.append(time.perf_counter())

        sup.hub.subscribe(on_state)
        sup.start()
        t0, c0, e0 = time.perf_counter(), time.process_time(), sum(_cpu_s(q) for q in pids)
        while sup.running():
            sup.step()
            time.sleep(0.25)
        wall = time.perf_counter() - t0
        host_cpu = time.process_time() - c0
        emu_cpu = sum(_cpu_s(q) for q in pids) - e0
        sup.close()
        lost, speeds, completed = 0, [], 0
        for wk in sup.workers.values():
            completed += bool(wk.outcome and wk.outcome.completed)
            rec = load_recording(wk.state.recording)
            lost += sum(rec.lost_samples().values())
            steps, span = rec.steps, walls.get(wk.spec.name, [])
            if len(steps) and len(span) == 2:
                device_s = float(steps["t_end_s"][0] - steps["t_start_s"][0])
                speeds.append(device_s / (span[1] - span[0]))
            else:
                speeds.append(0.0)
        return {
            "n": n,
            "completed": completed,
            "lost": lost,
            "min_speed": min(speeds) if speeds else 0.0,
            "wall_s": wall,
            "host_cpu_pct_per_rig": 100.0 * host_cpu / wall / n,
            "emu_cpu_pct_per_rig": 100.0 * emu_cpu / wall / n,
        }
    finally:
        for p, _ in boards:
            p.terminate()
        for p, _ in boards:
            p.wait(30)


def bench_fleet() -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    trials: list[dict[str, Any]] = []
    try:
        for n in (16, 24, 32, 40, 48):
            t = _fleet_trial(n, tmp / f"n{n}")
            t["ok"] = t["completed"] == n and t["lost"] == 0 and t["min_speed"] >= REAL_TIME
            trials.append(t)
            print(f"   fleet n={n}: {json.dumps(t)}", flush=True)
            if not t["ok"]:
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = max((t["n"] for t in trials if t["ok"]), default=0)
    at16 = trials[0]
    text = "; ".join(
        f"{t['n']} rigs: lost {t['lost']}, slowest board {t['min_speed']:.2f}x, "
        f"host {t['host_cpu_pct_per_rig']:.2f} %/rig, boards {t['emu_cpu_pct_per_rig']:.2f} %/rig"
        for t in trials
    )
    return [
        {
            "name": "fleet_rigs_lossless",
            "value": best,
            "unit": "rigs",
            "baseline": 16,
            "ratio": best / 16,
            "note": "emulated boards at speed=1 (real time, not the default max), default "
            f"streams, {RUN_S:.0f} s each, one Supervisor recording all, boards in their own "
            f"processes on the same 2 cores; largest N tried that kept every board >= "
            f"{REAL_TIME:.0%} real time with 0 lost samples (the last N tried is the first "
            f"that did not, or the largest tried). {text}. baseline = the target (16)",
        },
        {
            "name": "fleet_host_cpu_per_rig",
            "value": at16["host_cpu_pct_per_rig"],
            "unit": "% of a core",
            "baseline": at16["emu_cpu_pct_per_rig"],
            "ratio": at16["host_cpu_pct_per_rig"] / max(at16["emu_cpu_pct_per_rig"], 1e-9),
            "note": "supervisor process (Rig reader, heartbeat, HDF5 Recorder, state file, live "
            "points) per rig at 16 rigs, default streams (load 80, fbg 100, elec 100, temp 1 Hz); "
            "baseline = one emulated board's own CPU (launcher + MicroPython)",
        },
    ]


def bench_dask(n: int = 200) -> list[dict[str, Any]]:
    from host_sdk.fleet.many import analyze_many, analyze_one
    from host_sdk.fleet.testdata import make_recordings

    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    try:
        files = make_recordings(tmp / "runs", n)
        t0 = time.perf_counter()
        for f in files:
            analyze_one(str(f), str(tmp / "serial"))
        serial = time.perf_counter() - t0
        res = analyze_many(files, tmp / "dask", workers=os.cpu_count() or 2)
        assert len(res.rows) == n and not res.bad
        rate, base = n / res.seconds, n / serial
        return [
            {
                "name": "dask_recordings_per_s",
                "value": rate,
                "unit": "recordings/s",
                "baseline": base,
                "ratio": rate / base,
                "note": f"{n} generated recordings (3 pulse trains, 20 s each, real layout), "
                f"stressrig analyze (plots + summary.json) per file: local Dask cluster of "
                f"{res.workers} worker processes {res.seconds:.1f} s including its start-up, "
                f"tables and figures; serial in one process {serial:.1f} s. baseline = serial",
            }
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_mqtt(events: int = 400) -> list[dict[str, Any]]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        return [
            {
                "name": "mqtt_latency_ms_p99",
                "value": float("nan"),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "note": "mosquitto not installed: skipped",
            }
        ]
    import paho.mqtt.client as mqtt

    from host_sdk.fleet.config import MqttConfig, load_fleet
    from host_sdk.fleet.mqtt import MqttBridge
    from host_sdk.fleet.supervisor import Supervisor

    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([exe, "-c", str(tmp / "m.conf")], stderr=subprocess.DEVNULL)
    boards = _start_boards(1, 4242)
    lat: list[float] = []
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        pulses = events // 2
        (tmp / "p.toml").write_text(
            '[protocol]\nname = "edges"\n[cell]\narea_m2 = 3.85e-5\n[[steps]]\n'
            f'kind = "pulse_train"\ncurrent_a_m2 = 10.0\nt_on_s = 0.05\nt_off_s = 0.05\n'
            f"count = {pulses}\n"
        )
        (tmp / "f.toml").write_text(
            '[fleet]\nname = "lat"\nout_dir = "runs"\nprotocol = "p.toml"\n'
            f'[[rig]]\nname = "r1"\nport = "{boards[0][1]}"\n'
        )
        got = threading.Event()

        def on_message(_c: Any, _u: Any, m: Any) -> None:
            p = json.loads(m.payload)
            if p.get("name") == "edge":
                lat.append((time.time() - float(p["wall"])) * 1e3)

        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
        sub.on_message = on_message
        sub.on_subscribe = lambda *_a: got.set()
        sub.connect("127.0.0.1", port)
        sub.subscribe("stressrig/lat/rig/r1/event", qos=1)
        sub.loop_start()
        got.wait(30)
        sup = Supervisor(load_fleet(tmp / "f.toml"))
        bridge = MqttBridge(MqttConfig(port=port), sup.hub)
        sup.start()
        while sup.running():
            sup.step()
            time.sleep(0.1)
        time.sleep(1.0)
        sup.close()
        bridge.close()
        sub.loop_stop()
        sub.disconnect()
    finally:
        for p, _ in boards:
            p.terminate()
            p.wait(30)
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    a = np.array(lat)
    p50, p99 = (float(np.percentile(a, q)) for q in (50, 99)) if len(a) else (np.nan, np.nan)
    return [
        {
            "name": "mqtt_latency_ms_p99",
            "value": p99,
            "unit": "ms",
            "baseline": p50,
            "ratio": p99 / p50 if p50 else None,
            "note": f"{len(a)} edge events of an emulated board at speed 1 (pulses 50 ms/50 ms): "
            "SDK reader thread -> supervisor hub -> paho QoS 1 -> local Mosquitto -> "
            f"subscriber; p50 {p50:.2f} ms, max {float(a.max()) if len(a) else 0:.2f} ms. "
            "baseline = p50",
        }
    ]


def run() -> list[dict[str, Any]]:
    load0 = os.getloadavg()[0]
    out = bench_mqtt()
    out += bench_fleet()
    out += bench_dask()
    # these figures share the 2 cores with whatever else runs: say how busy it was
    load = f" Load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores)."
    for r in out:
        r["note"] += load
    return out


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r))
