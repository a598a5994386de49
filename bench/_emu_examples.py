"""Helpers of bench_emulator: `stressrig run examples/X.toml` against its emulated board.

The board is the one named in the example's header comment line
`#   stressrig run examples/X.toml --port "emu://..."`; the URL is used as written (shell
quotes removed).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from host_sdk.recording import load_recording

ROOT = Path(__file__).resolve().parent.parent
_RUN_LINE = re.compile(r"^#\s+stressrig run \S+\.toml\s+--port\s+(\S+)")


def example_url(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _RUN_LINE.match(line)
        if m:
            return m.group(1).strip("'\"")
    return None


def _stressrig() -> list[str]:
    script = Path(sys.executable).parent / "stressrig"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from host_sdk.cli import main; sys.exit(main())"]


def _from_recording(h5: Path) -> dict[str, Any]:
    """What the recording says: device time covered (protocol steps, else the streams'
    time span), whether the experiment completed and how it stopped, samples lost."""
    if not h5.exists():
        return {"file": "no recording written"}
    try:
        rec = load_recording(h5)
    except (OSError, ValueError, KeyError) as e:
        return {"file": f"unreadable recording: {e}"}
    if len(rec.steps):
        span = float(rec.steps["t_end_s"].max() - rec.steps["t_start_s"].min())
    else:
        ts = [s.t_s for s in rec.streams.values() if len(s)]
        span = float(max(t.max() for t in ts) - min(t.min() for t in ts)) if ts else None
    o = rec.outcome or {}
    return {
        "device_s": span,
        "completed": rec.completed,
        "stopped_by": o.get("stopped_by") or o.get("cause"),
        "lost": sum(rec.lost_samples().values()),
        "file": "; ".join(rec.problems),
    }


def run_example(path: Path, timeout_s: float = 600.0) -> dict[str, Any]:
    """Run one example; wall seconds, exit code, device time covered, stderr tail."""
    url = example_url(path)
    if url is None:
        return {"wall_s": float("nan"), "rc": None, "note": "no `stressrig run` line found"}
    with tempfile.TemporaryDirectory(prefix="bench-example-") as tmp:
        out = Path(tmp) / "tmp.h5"
        cmd = [*_stressrig(), "run", str(path.relative_to(ROOT)), "--port", url]
        cmd += ["--out", str(out), "--no-progress"]
        # stdout (the summary JSON) is not read: the recording says what happened
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: the emulator goes with it
        )
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:  # SIGTERM first: the run stores its outcome
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                _, stderr = proc.communicate(timeout=15.0)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                _, stderr = proc.communicate()
            timed_out = True
        wall = time.perf_counter() - t0
        info = _from_recording(out)
    return {
        "url": url,
        "wall_s": timeout_s if timed_out else wall,
        "rc": proc.returncode,
        "timed_out": timed_out,
        "device_s": info.get("device_s"),
        "completed": info.get("completed"),
        "stopped_by": info.get("stopped_by"),
        "lost": info.get("lost"),
        "file": info.get("file"),
        "stderr_tail": stderr.strip()[-600:],
    }


def example_note(r: dict[str, Any], timeout_s: float) -> str:
    if r.get("rc") is None and "note" in r:
        return r["note"]
    dev = r.get("device_s")
    dev_s = f"{dev:.0f} s device ({dev / 3600:.2f} h)" if dev is not None else "device time ?"
    speed = f", {dev / r['wall_s']:.0f} device s per wall s" if dev and r["wall_s"] else ""
    parts = [
        f"target <= 300 s wall; --port {r['url']}",
        f"timed out (killed at {timeout_s:.0f} s)" if r["timed_out"] else f"exit code {r['rc']}",
        dev_s + speed,
        f"completed={r['completed']} stopped_by={r['stopped_by']} lost={r['lost']}",
    ]
    if r.get("file"):
        parts.append(f"file: {r['file']}")
    if r["rc"] not in (0, None) or r["timed_out"]:
        parts.append("stderr: " + r["stderr_tail"].replace("\n", " | ")[-300:])
    return "; ".join(parts)


def examples() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.toml"))
