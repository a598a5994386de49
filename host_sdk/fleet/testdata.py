"""Many realistic recordings, quickly: for the analyze-many tests and benchmark, and to try
`stressrig analyze-many` without a lab.

One template is recorded from an emulated board (three short pulse trains at rests of
0.5, 1 and 2 s); `derive` copies it per "cell" and scales the charge each train passed,
so every copy has the real file layout and its own critical capacities.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np

from protocol import defs

__all__ = ["TEMPLATE_PROTOCOL", "derive", "make_recordings", "record_template"]

TEMPLATE_PROTOCOL = """
[protocol]
name = "many-template"
[cell]
area_m2 = 3.85e-5
stack_diameter_m = 0.012
label = "template cell"
[streams]
elec = { rate_hz = 50 }
load = { rate_hz = 10 }
temp = { rate_hz = 1 }
fbg = { enabled = false }
[[steps]]
kind = "rest"
duration_s = 1.0
[[steps]]
kind = "pulse_train"
current_a_m2 = 10.0
t_on_s = 1.0
t_off_s = 0.5
count = 3
[[steps]]
kind = "pulse_train"
current_a_m2 = 10.0
t_on_s = 1.0
t_off_s = 1.0
count = 3
[[steps]]
kind = "pulse_train"
current_a_m2 = 10.0
t_on_s = 1.0
t_off_s = 2.0
count = 3
"""


def record_template(path: str | Path, seed: int = 5) -> Path:
    """Record TEMPLATE_PROTOCOL on an emulated board (speed max: about a second)."""
    import tomllib

    from host_sdk.client import Rig
    from host_sdk.protocols import parse_protocol, run_protocol
    from host_sdk.recording import Recorder

    proto = parse_protocol(tomllib.loads(TEMPLATE_PROTOCOL), "many-template")
    path = Path(path)
    with Rig.open(f"emu://nak50_pulsed?seed={seed}") as rig:
        rec = Recorder.attach(rig, path, protocol=proto.to_dict(), cell={"label": "template"})
        run_protocol(rig, proto, recorder=rec)
        rec.close()
    return path


def derive(template: Path, out: Path, *, scale: float, label: str) -> Path:
    """A copy of `template` whose pulse trains passed `scale` times the charge."""
    shutil.copyfile(template, out)
    with h5py.File(out, "r+", locking=False) as f:
        code = f["events"]["code"][:].astype(int)
        value = f["events"]["value"]
        v = value[:]
        # the trains run at rests of 0.5, 1 and 2 s: capacity rises with the rest, as in
        # seed 004, so the comparison figure has something to compare
        ends = np.flatnonzero(code == defs.EV_WAVEFORM_END)
        trains = ends[-3:]
        for k, i in enumerate(trains):
            v[i] = v[i] * np.float32(scale * (0.4, 0.7, 1.0)[k])
        value[:] = v
        f["cell"].attrs["label"] = label
    return out


def make_recordings(
    folder: str | Path, n: int, *, template: Path | None = None, seed: int = 0
) -> list[Path]:
    """`n` recordings cell000.h5 ... in `folder` (charges scaled 0.6-1.4 at random)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tpl = template or record_template(folder / "_template.h5")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        scale = float(rng.uniform(0.6, 1.4))
        out.append(derive(tpl, folder / f"cell{k:03d}.h5", scale=scale, label=f"cell {k}"))
    if template is None:
        tpl.unlink()
    return out


def bad_file(path: str | Path) -> Path:
    """A file that is no recording (what a scientist may leave in a runs folder)."""
    p = Path(path)
    p.write_text(json.dumps({"not": "a recording"}))
    return p
