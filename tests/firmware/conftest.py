# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Run MicroPython snippets with the repo and this folder on sys.path, on two VMs.

The `mp` fixture runs every firmware test twice: on the 64-bit unix port (the emulated
board's VM) and on the 32-bit WebAssembly port (31-bit small ints and ticks wrapping at
2**30 as on a board, no native/viper emitter: the pure-Python fallbacks run there).
See tests/mpvm. Tests that only make sense on one VM take `mp_unix` or `mp_wasm32`.
"""

import functools
import json
import os
import subprocess
import sys

import pytest

from tests import mpvm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


PRELUDE = (
    "import sys\n"
    "sys.path.insert(0, %r)\n"
    "sys.path.insert(0, %r)\n"
    "import json\n"
    "def emit(obj):\n"
    "    print('@@' + json.dumps(obj))\n"
)


def run_mp(code, heapsize="4M", paths=(ROOT, HERE), timeout=600, vm="unix"):
    """Run `code` on MicroPython `vm`; return the list of objects it emit()-ed."""
    prelude = "import sys\n"
    for p in reversed(paths):
        prelude += "sys.path.insert(0, %r)\n" % str(p)
    prelude += PRELUDE.split("import json\n", 1)[1].join(["import json\n", ""])
    trees = []
    for p in paths:
        trees += list(mpvm.SOURCE_TREES) if str(p) == ROOT else [p]
    r = mpvm.run(vm, prelude + code, heap=heapsize, trees=tuple(trees), timeout=timeout)
    out = r.stdout.decode(errors="replace")
    return [json.loads(line[2:]) for line in out.splitlines() if line.startswith("@@")]


@pytest.fixture(params=mpvm.VMS)
def mp(request):
    """run_mp on each VM in turn (the test runs once per VM)."""
    return functools.partial(run_mp, vm=request.param)


@pytest.fixture
def mp_unix():
    return functools.partial(run_mp, vm="unix")


@pytest.fixture
def mp_wasm32():
    return functools.partial(run_mp, vm="wasm32")


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
