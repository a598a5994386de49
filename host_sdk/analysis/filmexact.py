"""Batched exact-in-time integration of the finite-volume film (:mod:`.filmmodes`).

Every scenario's timeline is cut at its current edges and at the requested read-out
times; between two cuts the current is constant and one exponential step in the
eigenbasis is exact, whatever its length. Scenarios do not share edges, so the batch is
advanced interval by interval: step k moves every scenario across its own k-th interval,
all scenarios as columns of one array. Equal step lengths (a pulse train's t_on and
t_off, a record grid) share their decay factors: each step computes the exponentials of
its distinct lengths only.

The first time the interface reaches C_crit is found inside the interval where it
happens, by bisection on the exact in-interval solution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .diffusion import FARADAY_C_MOL
from .filmmodes import FilmModes

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_CHUNK = 256  # intervals gathered per block (bounds memory for very long timelines)


@dataclass
class _Timelines:
    """All scenarios' intervals, concatenated: scenario m owns rows start[m]:start[m+1]."""

    dt: FloatArray
    flux: FloatArray
    t_end: FloatArray  # time at the end of the interval
    record: IntArray  # index into the record times of the interval's end, or −1
    profile: IntArray  # index into the profile times, or −1
    start: IntArray

    @property
    def count(self) -> IntArray:
        return np.asarray(np.diff(self.start), dtype=np.int64)


def _timelines(
    scen: Sequence[object],
    flux_scale: FloatArray,
    t_end: FloatArray,
    rec_lists: Sequence[FloatArray],
    prof_times: FloatArray,
) -> _Timelines:
    parts: list[tuple[FloatArray, FloatArray, FloatArray, IntArray, IntArray]] = []
    for s, scale, te, rec_times in zip(scen, flux_scale, t_end, rec_lists, strict=True):
        hist = s.current  # type: ignore[attr-defined]
        tk, _ = hist.steps(float(te))
        cuts = np.concatenate(([0.0, te], tk, rec_times[rec_times <= te], prof_times))
        cuts = np.unique(cuts[(cuts >= 0.0) & (cuts <= te)])
        # merge cuts closer than round-off (an edge computed as k·period vs a record time)
        keep = np.concatenate(([True], np.diff(cuts) > 1e-12 * max(1.0, float(te))))
        cuts = cuts[keep]
        mids = 0.5 * (cuts[:-1] + cuts[1:])
        ends = cuts[1:]
        parts.append(
            (
                np.diff(cuts),
                hist.current(mids) * scale,
                ends,
                _match(ends, rec_times),
                _match(ends, prof_times),
            )
        )
    start = np.concatenate(([0], np.cumsum([p[0].size for p in parts]))).astype(np.int64)
    cat = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return _Timelines(
        cat[0], cat[1], cat[2], cat[3].astype(np.int64), cat[4].astype(np.int64), start
    )


def _match(times: FloatArray, wanted: FloatArray) -> IntArray:
    """Index of each time in `wanted` (within round-off), −1 where it is not wanted."""
    if wanted.size == 0:
        return np.full(times.size, -1, dtype=np.int64)
    k = np.clip(np.searchsorted(wanted, times), 0, wanted.size - 1)
    k_lo = np.clip(k - 1, 0, wanted.size - 1)
    near = np.where(np.abs(wanted[k_lo] - times) < np.abs(wanted[k] - times), k_lo, k)
    ok = np.abs(wanted[near] - times) <= 1e-12 * np.maximum(1.0, np.abs(times))
    return np.asarray(np.where(ok, near, -1), dtype=np.int64)


@dataclass
class ExactResult:
    # (n_records, m): row r is scenario m's r-th record time (NaN where it has fewer, and
    # after it stopped at C_crit)
    surface: FloatArray
    mean: FloatArray
    final: FloatArray  # (n_cells, m)
    profiles: FloatArray  # (n_profiles, n_cells, m)
    t_crit: FloatArray
    n_steps: int


def solve_exact_group(
    scen: Sequence[object],
    modes: FilmModes,
    *,
    t_end_s: FloatArray,
    record_times_s: FloatArray | Sequence[FloatArray],
    profile_times_s: FloatArray,
    c_crit_mol_m3: float | None,
    stop_at_crit: bool,
) -> ExactResult:
    """All scenarios of one (D, L, grid) group; `t_end_s` per scenario, and the record
    times shared (one sorted array) or per scenario (a list of sorted arrays)."""
    m = len(scen)
    n = modes.n_cells
    n_states = modes.shape.shape[0]
    c_ref = np.array([s.c0_mol_m3 for s in scen])  # type: ignore[attr-defined]
    scale = np.array(
        [1.0 / (s.z * FARADAY_C_MOL * s.contact_fraction) for s in scen]  # type: ignore[attr-defined]
    )
    if isinstance(record_times_s, np.ndarray):
        rec_lists: Sequence[FloatArray] = [record_times_s] * m
    else:
        rec_lists = [np.asarray(r, float) for r in record_times_s]
    tl = _timelines(scen, scale, t_end_s, rec_lists, profile_times_s)
    n_rec = max((r.size for r in rec_lists), default=0)
    surf = np.full((n_rec, m), np.nan)
    mean = np.full((n_rec, m), np.nan)
    profs = np.full((profile_times_s.size, n, m), np.nan)
    final = np.full((n, m), np.nan)
    t_crit = np.full(m, np.nan)
    for k, r in enumerate(rec_lists):
        at0 = np.flatnonzero(r == 0.0)
        surf[at0, k] = c_ref[k]
        mean[at0, k] = c_ref[k]
    profs[profile_times_s == 0.0] = c_ref
    a = np.zeros((n_states, m))  # modal amplitudes of the deviation from C₀
    active = np.arange(m)
    count = tl.count
    k0 = 0
    steps = 0
    while active.size:
        cols = np.arange(_CHUNK)
        rows = tl.start[active][:, None] + k0 + cols[None, :]
        valid = (k0 + cols)[None, :] < count[active][:, None]
        rows = np.where(valid, rows, 0)
        dt = np.where(valid, tl.dt[rows], 0.0)
        flux = np.where(valid, tl.flux[rows], 0.0)
        rec = np.where(valid, tl.record[rows], -1)
        prof = np.where(valid, tl.profile[rows], -1)
        ends = tl.t_end[rows]
        stopped = np.zeros(active.size, dtype=bool)
        for j in range(_CHUNK):
            if not np.any(valid[:, j]):
                break
            steps += 1
            d, jf = dt[:, j], flux[:, j]
            lengths, which = np.unique(d, return_inverse=True)
            decay, gain = modes.step_factors(lengths)
            a_prev = a
            if lengths.size == 1:
                a = decay * a + gain * np.outer(modes.beta, jf)
            else:
                a = decay[:, which] * a + gain[:, which] * np.outer(modes.beta, jf)
            s_now = c_ref[active] + modes.surface @ a + modes.surface_flux * jf
            if c_crit_mol_m3 is not None:
                hit = (s_now <= c_crit_mol_m3) & np.isnan(t_crit[active]) & ~stopped
                hit &= valid[:, j]
                if np.any(hit):
                    idx = np.flatnonzero(hit)
                    frac = _crossing(
                        modes, a_prev[:, idx], d[idx], jf[idx], c_crit_mol_m3 - c_ref[active[idx]]
                    )
                    t_crit[active[idx]] = ends[idx, j] - d[idx] + frac
                    if stop_at_crit:
                        stopped[idx] = True
                        final[:, active[idx]] = c_ref[active[idx]] + modes.cells @ _advance(
                            modes, a_prev[:, idx], frac, jf[idx]
                        )
            live = ~stopped
            r = rec[:, j]
            sel = (r >= 0) & live
            if np.any(sel):
                surf[r[sel], active[sel]] = s_now[sel]
                mean[r[sel], active[sel]] = c_ref[active[sel]] + modes.mean @ a[:, sel]
            pk = prof[:, j]
            sel = (pk >= 0) & live
            if np.any(sel):
                profs[pk[sel], :, active[sel]] = (c_ref[active[sel]] + modes.cells @ a[:, sel]).T
        k0 += _CHUNK
        done = (count[active] <= k0) & ~stopped
        if np.any(done):
            final[:, active[done]] = c_ref[active[done]] + modes.cells @ a[:, done]
        keep = ~(done | stopped)
        active, a = active[keep], a[:, keep]
    return ExactResult(surf, mean, final, profs, t_crit, steps)


def _advance(modes: FilmModes, a: FloatArray, tau: FloatArray, flux: FloatArray) -> FloatArray:
    """Amplitudes `tau` into an interval of constant `flux` (columns: scenarios)."""
    z = np.outer(modes.rates, tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(z > 0, -np.expm1(-z) / np.where(z > 0, z, 1.0), 1.0) * tau
    return np.asarray(np.exp(-z) * a + gain * np.outer(modes.beta, flux), dtype=float)


def _crossing(
    modes: FilmModes, a: FloatArray, dt: FloatArray, flux: FloatArray, level: FloatArray
) -> FloatArray:
    """Time into the interval at which the interface deviation first falls to `level`
    (bisection; it is known to be there by the end)."""
    lo = np.zeros(dt.size)
    hi = dt.copy()
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        s = modes.surface @ _advance(modes, a, mid, flux) + modes.surface_flux * flux
        below = s <= level
        hi = np.where(below, mid, hi)
        lo = np.where(below, lo, mid)
        if np.all(hi - lo <= 1e-13 * np.maximum(dt, 1e-300)):
            break
    return hi


def surface_at_times(
    scenarios: Sequence[object],
    times_s: Sequence[FloatArray],
    *,
    n_cells: int = 100,
    first_cell_m: float | None = None,
) -> list[FloatArray]:
    """Interface concentration of each scenario at its own times (sorted, ≥ 0): one
    exact-step run per film, every scenario cut only at its own edges and times."""
    from .filmexact_batch import film_key, film_modes

    out: list[FloatArray] = [np.zeros(0)] * len(scenarios)
    groups: dict[tuple[float, float, float, float], list[int]] = {}
    for k, s in enumerate(scenarios):
        groups.setdefault(film_key(s), []).append(k)
    for (d, ll, f, rate), idx in groups.items():
        times = [np.asarray(times_s[k], float) for k in idx]
        r = solve_exact_group(
            [scenarios[k] for k in idx],
            film_modes(d, ll, n_cells, first_cell_m, f, rate),
            t_end_s=np.array([t[-1] if t.size else 0.0 for t in times]),
            record_times_s=times,
            profile_times_s=np.zeros(0),
            c_crit_mol_m3=None,
            stop_at_crit=False,
        )
        for j, k in enumerate(idx):
            out[k] = r.surface[: times[j].size, j]
    return out
