"""Run every benchmark module, print a table and write bench/results.json.

Each bench/bench_*.py exposes `run() -> list[dict]` with keys name, value, unit,
baseline, ratio (baseline measured in the same process, so ratios are comparable across
machines). `python bench/run.py protocol sdk` runs only those modules and keeps the other modules'
entries of results.json.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _load(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    wanted = set(argv)
    results: list[dict] = []
    failed: list[str] = []
    for path in sorted(HERE.glob("bench_*.py")):
        short = path.stem.removeprefix("bench_")
        if wanted and short not in wanted:
            continue
        t0 = time.perf_counter()
        print(f"== {short} ...", flush=True)
        try:
            items = _load(path).run()
        except Exception:
            traceback.print_exc()
            failed.append(short)
            continue
        for item in items:
            item.setdefault("module", short)
        results.extend(items)
        print(f"   {len(items)} results in {time.perf_counter() - t0:.1f} s", flush=True)

    width = max((len(r["name"]) for r in results), default=10)
    print()
    print(f"{'name':<{width}}  {'value':>12}  {'unit':<14} {'baseline':>12}  {'ratio':>8}")
    for r in results:
        base = r.get("baseline")
        ratio = r.get("ratio")
        base_s = f"{base:12.4g}" if isinstance(base, int | float) else f"{'-':>12}"
        ratio_s = f"{ratio:8.3g}" if isinstance(ratio, int | float) else f"{'-':>8}"
        print(f"{r['name']:<{width}}  {r['value']:12.4g}  {r['unit']:<14} {base_s}  {ratio_s}")
    out = HERE / "results.json"
    if wanted and out.exists():
        # a subset run replaces its modules' entries and keeps the others' last figures
        ran = {r["module"] for r in results} | (wanted - set(failed))
        kept = [r for r in json.loads(out.read_text()) if r.get("module") not in ran]
        results = kept + results
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
    if failed:
        print("benchmark modules that failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
