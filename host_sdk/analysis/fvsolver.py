"""Batched cell-centred finite-volume solver for diffusion in a film (DOMAIN.md §4).

Film 0 ≤ x ≤ L, uniform cells of width h = L/N, unknowns are cell averages. At x = 0 a flux
J(t) = i(t)/(z F f) leaves the film (f = contact-area fraction: the real contact is a
fraction f of the geometric area, so the local current density is i/f); x = L is a
no-flux wall. Time stepping is Crank-Nicolson; at every step where the current changes the
CN step is replaced by two backward-Euler half steps (Rannacher restart), which damps the
stiff modes a flux jump excites and keeps the scheme second order in time.

CN and a BE half step share the same left-hand matrix (I − (Δt/2)A), so each group of
scenarios with the same (D, L, Δt) needs a single tridiagonal LU factorisation (LAPACK
gttrf); every step is then one gttrs solve with all scenarios of the group as columns.
The unknowns are deviations from C₀, so the film loses ∫J dt to round-off of the
depletion (not of C₀: 1e-10 relative at 400 cells needs that).

Without ``dt_s`` the same finite-volume film is integrated exactly in time instead
(:mod:`.filmexact`): one exponential step per constant-current interval, however long,
so long rests cost nothing and only the grid's spatial error remains.

The interface value is read from the first two cells as point values at their centres
plus the boundary gradient J/D (a nodal quadratic): finite-volume values are second-order
point values, and reading them as cell averages made the surface several times less
accurate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import lapack

from .currents import CurrentHistory
from .diffusion import FARADAY_C_MOL

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class FilmScenario:
    """One film and one current history (geometric current density, A m⁻², > 0 strips).

    ``contact_fraction`` f: the current flows through a fraction f of the area (local flux
    i/(f z F)); ``lateral_rate_per_s`` k > 0 lets the column under the contact spots
    exchange with the rest of the film at the rate k (seed 004's recovery during rests;
    exact steps only)."""

    d_m2_s: float
    thickness_m: float
    current: CurrentHistory
    c0_mol_m3: float
    contact_fraction: float = 1.0
    z: int = 1
    lateral_rate_per_s: float = 0.0


@dataclass
class FilmBatchResult:
    """Output of :func:`solve_film_batch`; the last axis always indexes the scenarios.

    ``surface_mol_m3``/``mean_mol_m3`` are NaN after a scenario stopped at C_crit.
    ``capacity_c_m2`` is the geometric charge density ∫ i dt delivered until the surface
    first reached C_crit (NaN if never); divide by 36 000 for mAh cm⁻².
    """

    t_s: FloatArray
    surface_mol_m3: FloatArray
    mean_mol_m3: FloatArray
    final_mol_m3: list[FloatArray]
    x_centres_m: list[FloatArray]
    profile_times_s: FloatArray
    profiles_mol_m3: list[FloatArray]
    t_crit_s: FloatArray
    capacity_c_m2: FloatArray
    n_factorisations: int
    n_steps: int
    charge_c_m2: FloatArray = field(default_factory=lambda: np.zeros(0))


def surface_from_cells(
    c0: FloatArray, c1: FloatArray, flux_mol_m2_s: FloatArray, h_m: float, d_m2_s: float
) -> FloatArray:
    """Value at x = 0 of the quadratic with c'(0) = J/D through the first two cells'
    values at their centres h/2 and 3h/2 (works on deviations from C₀ as well)."""
    b = flux_mol_m2_s / d_m2_s
    curv = (c1 - c0 - b * h_m) / (2.0 * h_m * h_m)
    return np.asarray(c0 - b * h_m / 2.0 - curv * h_m * h_m / 4.0, dtype=float)


def _step_currents(histories: Sequence[CurrentHistory], t0: float, dt: float, n: int) -> FloatArray:
    """Step-mean current densities, shape (n, M): exact charge per step."""
    tb = t0 + dt * np.arange(n + 1)
    q = np.column_stack([h.charge_c_m2(tb) for h in histories])
    return np.asarray(np.diff(q, axis=0) / dt, dtype=float)


def _solve_group(
    scen: list[FilmScenario],
    n_cells: int,
    dt: float,
    n_steps: int,
    rec_every: int,
    prof_steps: NDArray[np.int64],
    c_crit: float | None,
    stop_at_crit: bool,
    restart: bool,
    chunk: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    d, ll = scen[0].d_m2_s, scen[0].thickness_m
    h = ll / n_cells
    m = len(scen)
    r = d * dt / (h * h)
    # left matrix I − (r/2) T, T the Neumann Laplacian stencil
    diag = np.full(n_cells, 1.0 + r)
    diag[0] = diag[-1] = 1.0 + r / 2.0
    off = np.full(n_cells - 1, -r / 2.0)
    dl, dd, du, du2, ipiv, info = lapack.dgttrf(off, diag, off)
    if info != 0:
        raise np.linalg.LinAlgError("tridiagonal factorisation failed")

    scale = np.array([1.0 / (s.z * FARADAY_C_MOL * s.contact_fraction) for s in scen])
    c_ref = np.array([s.c0_mol_m3 for s in scen])  # c holds deviations from these
    c = np.asfortranarray(np.zeros((n_cells, m)))
    n_rec = n_steps // rec_every + 1
    surf = np.full((n_rec, m), np.nan)
    mean = np.full((n_rec, m), np.nan)
    profs = np.full((len(prof_steps), n_cells, m), np.nan)
    t_crit = np.full(m, np.nan)
    final = np.full((n_cells, m), np.nan)
    active = np.arange(m)
    j_prev = np.zeros(m)
    zero_flux = np.zeros(m)
    surf[0] = c_ref + surface_from_cells(c[0], c[1], zero_flux, h, d)
    mean[0] = c_ref + c.mean(axis=0)
    if 0 in prof_steps:
        profs[np.searchsorted(prof_steps, 0)] = c + c_ref
    s_prev = surf[0].copy()
    histories = [s.current for s in scen]
    rhs = np.empty_like(c, order="F")
    for n0 in range(0, n_steps, chunk):
        nn = min(chunk, n_steps - n0)
        cur = _step_currents([histories[k] for k in active], n0 * dt, dt, nn)
        flux_all = cur * scale[active]  # mol m⁻² s⁻¹, local
        for s in range(nn):
            step = n0 + s + 1
            flux = flux_all[s]
            src = dt * flux / h
            jp = j_prev[active]
            # a current edge (step means carry round-off, hence the tolerance)
            jump = np.abs(flux - jp) > 1e-9 * np.maximum(np.abs(flux), np.abs(jp))
            restart_cols = np.flatnonzero(jump) if restart else np.zeros(0, dtype=int)
            # Every step starts with a backward-Euler half step
            #   (I − r/2 T) y = c − (Δt/2) J/h e₀ .
            # CN is then c ← 2y − c (same result as the usual CN right-hand side, fewer
            # passes over memory); restart columns take a second BE half step from y.
            np.copyto(rhs, c)
            rhs[0] -= 0.5 * src
            y, info = lapack.dgttrs(dl, dd, du, du2, ipiv, rhs, overwrite_b=1)
            if restart_cols.size:
                sub = np.asfortranarray(y[:, restart_cols])
                sub[0] -= 0.5 * src[restart_cols]
                sub, info = lapack.dgttrs(dl, dd, du, du2, ipiv, sub, overwrite_b=1)
            np.multiply(y, 2.0, out=y)
            np.subtract(y, c, out=c)
            if restart_cols.size:
                c[:, restart_cols] = sub
            rhs = y  # y may share memory with rhs; reuse it as the next buffer
            j_prev[active] = flux
            if c_crit is not None or step % rec_every == 0:
                s_now = c_ref[active] + surface_from_cells(c[0], c[1], flux, h, d)
                if c_crit is not None:
                    hit = (s_now <= c_crit) & np.isnan(t_crit[active])
                    if np.any(hit):
                        idx = np.flatnonzero(hit)
                        sp, sn = s_prev[active][idx], s_now[idx]
                        frac = np.where(sp > sn, (sp - c_crit) / (sp - sn), 1.0)
                        t_crit[active[idx]] = (step - 1 + np.clip(frac, 0.0, 1.0)) * dt
                    s_prev[active] = s_now
                if step % rec_every == 0:
                    surf[step // rec_every, active] = s_now
                    mean[step // rec_every, active] = c_ref[active] + c.mean(axis=0)
            if step in prof_steps:
                profs[np.searchsorted(prof_steps, step)][:, active] = c + c_ref[active]
        if stop_at_crit and c_crit is not None:
            keep = np.isnan(t_crit[active])
            if not np.all(keep):
                final[:, active[~keep]] = c[:, ~keep] + c_ref[active[~keep]]
                active = active[keep]
                c = np.asfortranarray(c[:, keep])
                rhs = np.empty_like(c, order="F")
                if active.size == 0:
                    break
    final[:, active] = c + c_ref[active]
    return surf, mean, final, profs, t_crit, np.full(m, h)


def solve_film_batch(
    scenarios: Sequence[FilmScenario],
    *,
    t_end_s: float | Sequence[float],
    dt_s: float | None = None,
    n_cells: int = 100,
    record_every: int = 1,
    record_times_s: Sequence[float] | None = None,
    profile_times_s: Sequence[float] = (),
    c_crit_mol_m3: float | None = None,
    stop_at_crit: bool = False,
    restart: bool = True,
    chunk_steps: int = 1000,
    first_cell_m: float | None = None,
) -> FilmBatchResult:
    """Integrate every scenario from a uniform C₀ to ``t_end_s``.

    Without ``dt_s`` (the default) each scenario is stepped exactly from current edge to
    current edge (and to each of ``record_times_s``, default [0, t_end]; ``t_end_s`` may
    then differ per scenario); ``first_cell_m`` grades the grid geometrically from the
    interface. With ``dt_s`` it is Crank-Nicolson with Rannacher restarts on fixed steps,
    recording every ``record_every`` steps; current edges should fall on multiples of
    ``dt_s`` for second order (off-grid edges still conserve charge exactly).

    Scenarios are grouped by (D, L): one factorisation (or eigen-decomposition) per group,
    all its scenarios as columns. ``c_crit_mol_m3`` records the first time the interface
    reaches it; with ``stop_at_crit`` a scenario is dropped from the batch once it has.
    """
    scen = list(scenarios)
    if not scen:
        raise ValueError("no scenarios")
    if dt_s is None:
        from .filmexact_batch import solve_exact_batch

        return solve_exact_batch(
            scen,
            t_end_s=t_end_s,
            n_cells=n_cells,
            record_times_s=record_times_s,
            profile_times_s=profile_times_s,
            c_crit_mol_m3=c_crit_mol_m3,
            stop_at_crit=stop_at_crit,
            first_cell_m=first_cell_m,
        )
    exchange = any(s.lateral_rate_per_s > 0 and s.contact_fraction < 1 for s in scen)
    if (
        not isinstance(t_end_s, int | float)
        or record_times_s is not None
        or first_cell_m
        or exchange
    ):
        raise ValueError(
            "fixed steps (dt_s) take one t_end_s, record_every, a uniform grid and no lateral "
            "exchange; per-scenario ends, record_times_s, first_cell_m and "
            "lateral_rate_per_s need dt_s=None"
        )
    return _solve_fixed_steps(
        scen,
        float(t_end_s),
        float(dt_s),
        n_cells,
        record_every,
        profile_times_s,
        c_crit_mol_m3,
        stop_at_crit,
        restart,
        chunk_steps,
    )


def _solve_fixed_steps(
    scen: list[FilmScenario],
    t_end_s: float,
    dt_s: float,
    n_cells: int,
    record_every: int,
    profile_times_s: Sequence[float],
    c_crit_mol_m3: float | None,
    stop_at_crit: bool,
    restart: bool,
    chunk_steps: int,
) -> FilmBatchResult:
    n_steps = int(round(t_end_s / dt_s))
    if n_steps < 1 or n_cells < 2:
        raise ValueError("need at least one step and two cells")
    rec_every = max(1, int(record_every))
    prof_steps = np.unique(np.round(np.asarray(profile_times_s, float) / dt_s).astype(np.int64))
    m = len(scen)
    n_rec = n_steps // rec_every + 1
    surf = np.full((n_rec, m), np.nan)
    mean = np.full((n_rec, m), np.nan)
    profs = np.full((len(prof_steps), n_cells, m), np.nan)
    t_crit = np.full(m, np.nan)
    final: list[FloatArray] = [np.zeros(0)] * m
    xc: list[FloatArray] = [np.zeros(0)] * m
    groups: dict[tuple[float, float], list[int]] = {}
    for k, s in enumerate(scen):
        groups.setdefault((s.d_m2_s, s.thickness_m), []).append(k)
    for (_, ll), idx in groups.items():
        g = [scen[k] for k in idx]
        gs, gm, gf, gp, gt, _ = _solve_group(
            g,
            n_cells,
            dt_s,
            n_steps,
            rec_every,
            prof_steps,
            c_crit_mol_m3,
            stop_at_crit,
            restart,
            chunk_steps,
        )
        surf[:, idx] = gs
        mean[:, idx] = gm
        profs[:, :, idx] = gp
        t_crit[idx] = gt
        x = (np.arange(n_cells) + 0.5) * ll / n_cells
        for j, k in enumerate(idx):
            final[k] = gf[:, j]
            xc[k] = x
    cap = np.array(
        [
            float(s.current.charge_c_m2(t)) if np.isfinite(t) else np.nan
            for s, t in zip(scen, t_crit, strict=True)
        ]
    )
    charge = np.array([float(s.current.charge_c_m2(n_steps * dt_s)) for s in scen])
    return FilmBatchResult(
        t_s=np.asarray(np.arange(n_rec) * rec_every * dt_s, dtype=float),
        surface_mol_m3=surf,
        mean_mol_m3=mean,
        final_mol_m3=final,
        x_centres_m=xc,
        profile_times_s=np.asarray(prof_steps * dt_s, dtype=float),
        profiles_mol_m3=[profs[p] for p in range(len(prof_steps))],
        t_crit_s=t_crit,
        capacity_c_m2=cap,
        n_factorisations=len(groups),
        n_steps=n_steps,
        charge_c_m2=charge,
    )


def solve_film(
    scenario: FilmScenario,
    *,
    t_end_s: float,
    dt_s: float | None = None,
    n_cells: int = 100,
    **kw: object,
) -> FilmBatchResult:
    """Single-scenario convenience wrapper around :func:`solve_film_batch`."""
    return solve_film_batch([scenario], t_end_s=t_end_s, dt_s=dt_s, n_cells=n_cells, **kw)  # type: ignore[arg-type]
