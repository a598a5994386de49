"""`python -m host_sdk.recording.repair FILE...`: clear the "file is already open for
write" flags a killed format-1 (SWMR) writer left, so any HDF5 tool opens the file."""

from __future__ import annotations

import sys

from host_sdk.recording.salvage import repair_in_place


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m host_sdk.recording.repair FILE.h5 ...", file=sys.stderr)
        return 2
    for p in paths:
        print(f"{p}: {'flags cleared' if repair_in_place(p) else 'nothing to repair'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
