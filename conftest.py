"""Suite-wide options. `--hog-cores N` runs the whole suite with N busy-loop processes
hogging the CPU, as on a shared machine: the suite must pass on a busy machine (the emulated
board runs on virtual device time, and no test depends on wall-clock timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hog-cores",
        type=int,
        default=int(os.environ.get("STRESSRIG_HOG_CORES", "0") or 0),
        metavar="N",
        help="run the suite with N busy-loop processes hogging the CPU "
        "(default: $STRESSRIG_HOG_CORES or 0)",
    )


@pytest.fixture(scope="session", autouse=True)
def _hogged_cores(request: pytest.FixtureRequest) -> Iterator[int]:
    n = int(request.config.getoption("--hog-cores"))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield n
    finally:
        for p in hogs:
            p.kill()
            p.wait()


def pytest_report_header(config: pytest.Config) -> str | None:
    n = int(config.getoption("--hog-cores"))
    return f"hogging {n} core(s) with busy loops for the whole run" if n else None
