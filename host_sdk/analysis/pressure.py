"""Stack pressure from a load cell and its segmentation against normalized capacity
(DOMAIN.md §2, seed 001 Fig. 7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_trapezoid
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LoadCellCalibration:
    """F = (counts − tare_counts) · span_n_per_count, fitted by least squares.

    ``residuals_n`` are fit − known load at each calibration point.
    """

    tare_counts: float
    span_n_per_count: float
    residuals_n: FloatArray
    rms_residual_n: float
    max_abs_residual_n: float

    def force_n(self, counts: ArrayLike) -> FloatArray:
        return np.asarray(
            (np.asarray(counts, dtype=float) - self.tare_counts) * self.span_n_per_count,
            dtype=float,
        )


def fit_load_cell(
    counts: ArrayLike, loads_n: ArrayLike, tare_counts: float | None = None
) -> LoadCellCalibration:
    """Least-squares calibration from readings at known loads.

    With ``tare_counts`` (mean reading with the stack unloaded) only the span is fitted;
    otherwise tare and span are both fitted (a zero load among the points pins the tare).
    """
    x = np.asarray(counts, dtype=float).ravel()
    f = np.asarray(loads_n, dtype=float).ravel()
    if x.shape != f.shape or x.size < (1 if tare_counts is not None else 2):
        raise ValueError("need matching counts/loads, at least two points to fit a tare")
    if tare_counts is not None:
        dx = x - tare_counts
        span = float(np.dot(dx, f) / np.dot(dx, dx))
        tare = float(tare_counts)
    else:
        a = np.column_stack((x, np.ones_like(x)))
        (span, off), *_ = np.linalg.lstsq(a, f, rcond=None)
        span = float(span)
        tare = float(-off / span)
    res = (x - tare) * span - f
    return LoadCellCalibration(
        tare_counts=tare,
        span_n_per_count=span,
        residuals_n=res,
        rms_residual_n=float(np.sqrt(np.mean(res**2))),
        max_abs_residual_n=float(np.max(np.abs(res))),
    )


def fit_log_creep(t_s: ArrayLike, force_n: ArrayLike, t0_s: float = 1.0) -> tuple[float, float]:
    """Fit F(t) = F₀·(1 + c·log10(1 + t/t₀)) under constant load; returns (F₀, c) with c
    the creep per decade of time (fraction)."""
    t = np.asarray(t_s, dtype=float)
    f = np.asarray(force_n, dtype=float)
    g = np.log10(1.0 + t / t0_s)
    a = np.column_stack((np.ones_like(g), g))
    (f0, slope), *_ = np.linalg.lstsq(a, f, rcond=None)
    return float(f0), float(slope / f0)


def fit_log_creep_offset(t_s: ArrayLike, p: ArrayLike) -> tuple[float, float, float]:
    """Fit p(t) = a + b·ln(t + t₀) to a stack at rest (the press's creep: the stack was
    loaded at −t₀ on this clock, creep's own time constant included); returns (a, b, t₀).
    t₀ is found by a bounded search, a and b by least squares for each t₀. Extrapolated
    over a later step, it is the creep to remove from that step's pressure."""
    t = np.asarray(t_s, float)
    y = np.asarray(p, float)
    span = max(float(np.ptp(t)), 1.0)
    lo = max(1e-6 * span, 1e-3 - float(t.min()))

    def fit(log_t0: float) -> tuple[float, FloatArray]:
        g = np.log(t + lo + np.exp(log_t0))
        a = np.column_stack((np.ones_like(g), g))
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        r = y - a @ coef
        return float(r @ r), coef

    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda v: fit(v)[0], bounds=(np.log(1e-3 * span), np.log(1e3 * span)), method="bounded"
    )
    _, (a0, b0) = fit(float(res.x))
    return float(a0), float(b0), float(lo + np.exp(res.x))


def correct_creep(
    force_n: ArrayLike, t_since_load_s: ArrayLike, creep_per_decade: float, t0_s: float = 1.0
) -> FloatArray:
    """Remove the log-time creep found by :func:`fit_log_creep`."""
    g = np.log10(1.0 + np.asarray(t_since_load_s, dtype=float) / t0_s)
    return np.asarray(np.asarray(force_n, dtype=float) / (1.0 + creep_per_decade * g), dtype=float)


def correct_temperature(
    force_n: ArrayLike,
    temp_c: ArrayLike,
    ref_temp_c: float,
    zero_drift_n_per_k: float = 0.0,
    span_drift_per_k: float = 0.0,
) -> FloatArray:
    """Undo zero drift (N/K) and span drift (fraction/K):
    F_true = (F_meas − z·ΔT)/(1 + s·ΔT)."""
    dt = np.asarray(temp_c, dtype=float) - ref_temp_c
    f = np.asarray(force_n, dtype=float)
    return np.asarray((f - zero_drift_n_per_k * dt) / (1.0 + span_drift_per_k * dt), dtype=float)


def die_area_m2(diameter_m: float) -> float:
    return float(np.pi * diameter_m**2 / 4.0)


def pressure_pa(force_n: ArrayLike, area_m2: float) -> FloatArray:
    """P = F/A."""
    return np.asarray(np.asarray(force_n, dtype=float) / area_m2, dtype=float)


def force_for_pressure_n(pressure_pa: float, area_m2: float) -> float:
    return pressure_pa * area_m2


def cumulative_charge_c(t_s: ArrayLike, current_a: ArrayLike) -> FloatArray:
    """Coulomb counting: Q(t) = ∫ I dt (trapezoid), Q(t₀) = 0."""
    return np.asarray(
        cumulative_trapezoid(np.asarray(current_a, float), np.asarray(t_s, float), initial=0.0),
        dtype=float,
    )


def normalized_capacity(t_s: ArrayLike, current_a: ArrayLike) -> FloatArray:
    """q = Q(t)/Q_end (sign-independent: lithiation current may be negative)."""
    q = cumulative_charge_c(t_s, current_a)
    return np.asarray(q / q[-1], dtype=float)


# --------------------------------------------------------------------------- segmentation


@dataclass(frozen=True)
class PressurePhases:
    """Piecewise-linear description of pressure vs normalized capacity.

    ``breaks_q`` are the capacities where the rate changes (len = n_segments − 1);
    ``rates_mpa_per_q`` the slope of each phase in MPa per unit normalized capacity.
    ``total_rise_mpa`` is the fitted curve's maximum minus its minimum (seed 001's "total
    rise": 3.7 MPa for Sn, whose pressure first dips), ``net_change_mpa`` end minus start.
    """

    q_start: FloatArray
    q_end: FloatArray
    rates_mpa_per_q: FloatArray
    p_start_mpa: FloatArray
    p_end_mpa: FloatArray
    breaks_q: FloatArray
    total_rise_mpa: float
    max_rate_mpa_per_q: float
    fitted_mpa: FloatArray
    bic: FloatArray
    net_change_mpa: float = float("nan")

    @property
    def n_segments(self) -> int:
        return int(self.rates_mpa_per_q.size)


def _segment_costs(
    x: FloatArray, y: FloatArray, min_pts: int, min_width: float = 0.0
) -> FloatArray:
    """cost[i, j] = SSE of a straight-line fit to points i..j-1 (inf if too short, in
    points or in x-extent)."""
    n = x.size
    z = np.zeros(1)
    sx = np.concatenate((z, np.cumsum(x)))
    sy = np.concatenate((z, np.cumsum(y)))
    sxx = np.concatenate((z, np.cumsum(x * x)))
    sxy = np.concatenate((z, np.cumsum(x * y)))
    syy = np.concatenate((z, np.cumsum(y * y)))
    i = np.arange(n + 1)[:, None]
    j = np.arange(n + 1)[None, :]
    m = (j - i).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ax = sx[j] - sx[i]
        ay = sy[j] - sy[i]
        vxx = sxx[j] - sxx[i] - ax * ax / m
        vxy = sxy[j] - sxy[i] - ax * ay / m
        vyy = syy[j] - syy[i] - ay * ay / m
        sse = vyy - np.where(vxx > 0, vxy * vxy / np.where(vxx > 0, vxx, 1.0), 0.0)
    xe = np.concatenate((x, x[-1:]))
    width = xe[np.maximum(j - 1, 0)] - xe[np.minimum(i, n - 1)]
    ok = (m >= min_pts) & (width >= min_width * (1.0 - 1e-9))
    sse = np.where(ok, np.clip(sse, 0.0, None), np.inf)
    return np.asarray(sse, dtype=float)


def segment_piecewise_linear(
    x: ArrayLike,
    y: ArrayLike,
    max_segments: int = 6,
    min_points: int = 5,
    max_points: int = 600,
    penalty: float | None = None,
    min_width_fraction: float = 0.05,
) -> tuple[NDArray[np.int64], FloatArray]:
    """Optimal segmentation into straight lines by dynamic programming.

    For each k ≤ ``max_segments`` the exact least-squares partition is found; k is chosen by
    BIC = n·ln(SSE/n) + p·ln n with p = 3k − 1 (or SSE + penalty·k when ``penalty`` is
    given). No segment is narrower than ``min_width_fraction`` of the x range: a phase
    shorter than that is noise around a kink, not a phase. The number of segments is
    scored on a continuous (hinge) refit of each DP partition. Long series are
    bin-averaged to ``max_points`` first (O(k n²) DP).
    Returns the segment start indices into the (possibly binned) arrays and the BIC per k;
    use :func:`pressure_phases` for a physical summary.
    """
    xs, ys = _bin(np.asarray(x, float), np.asarray(y, float), max_points)
    n = xs.size
    min_width = min_width_fraction * float(xs[-1] - xs[0]) if n > 1 else 0.0
    cost = _segment_costs(xs, ys, min_points, min_width)
    kmax = max(1, min(max_segments, n // min_points))
    e = np.full((kmax + 1, n + 1), np.inf)
    arg = np.zeros((kmax + 1, n + 1), dtype=np.int64)
    e[1] = cost[0]
    for k in range(2, kmax + 1):
        tot = e[k - 1][:, None] + cost
        arg[k] = np.argmin(tot, axis=0)
        e[k] = tot[arg[k], np.arange(n + 1)]
    sse = e[1:, n]
    ks = np.arange(1, kmax + 1)
    # A fit whose residuals are below a millionth of the data's range is exact: without
    # this floor a noise-free curve scored ln(SSE) of round-off, and a split of one phase
    # into two of the same slope "won" by a round-off's worth of SSE
    floor = max(1e-12 * float(np.var(ys)) * n, n * (1e-6 * float(np.ptp(ys))) ** 2, 1e-300)

    def starts_for(k_seg: int) -> list[int]:
        starts = [n]
        j = n
        for k in range(k_seg, 1, -1):
            j = int(arg[k, j])
            starts.append(j)
        starts.append(0)
        return sorted(set(starts))[:-1]

    if penalty is None:
        # Pressure curves are continuous: the number of phases is chosen on a continuous
        # (hinge) fit, because free line segments can buy a lower SSE with a short extra
        # segment straddling a kink and so over-split a noisy curve.
        refined: list[list[int]] = []
        scores = []
        for k_seg in ks:
            if not np.isfinite(sse[k_seg - 1]):
                refined.append([0])
                scores.append(np.inf)
                continue
            st0 = starts_for(int(k_seg))
            brk0 = [0.5 * (xs[i - 1] + xs[i]) for i in st0[1:]]
            sse_c, brk = _continuous_fit(xs, ys, brk0, min_width)
            st = [0] + [int(i) for i in np.searchsorted(xs, brk, side="right")]
            refined.append(st if len(set(st)) == len(st) else st0)
            scores.append(n * np.log((sse_c + floor) / n) + (3 * k_seg - 1) * np.log(n))
        score = np.asarray(scores, dtype=float)
        best = int(np.argmin(score))
        return np.asarray(refined[best], dtype=np.int64), score
    score = np.where(np.isfinite(sse), sse + penalty * ks, np.inf)
    k_best = int(ks[np.argmin(score)])
    return np.asarray(starts_for(k_best), dtype=np.int64), np.asarray(score, dtype=float)


def _hinge_sse(x: FloatArray, y: FloatArray, breaks: FloatArray) -> float:
    basis = [np.ones_like(x), x] + [np.maximum(x - b, 0.0) for b in breaks]
    a = np.column_stack(basis)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ coef
    return float(r @ r)


def _continuous_fit(
    x: FloatArray, y: FloatArray, breaks0: list[float], min_width: float = 0.0
) -> tuple[float, FloatArray]:
    """SSE of the best continuous piecewise-linear fit with breakpoints near `breaks0`,
    no segment narrower than `min_width`."""
    b0 = np.asarray(breaks0, dtype=float)
    if b0.size == 0:
        return _hinge_sse(x, y, b0), b0
    lo, hi = float(x[0]), float(x[-1])

    def cost(b: FloatArray) -> float:
        bs = np.sort(np.clip(b, lo, hi))
        if np.any(np.diff(np.concatenate(([lo], bs, [hi]))) < min_width):
            return np.inf
        return _hinge_sse(x, y, bs)

    res = minimize(cost, b0, method="Nelder-Mead", options={"xatol": 1e-6 * (hi - lo)})
    best = np.sort(np.clip(res.x, lo, hi)) if res.fun <= cost(b0) else b0
    return min(float(res.fun), cost(b0)), best


def _bin(x: FloatArray, y: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size <= max_points:
        return x, y
    edges = np.linspace(0, x.size, max_points + 1).astype(int)
    xb = np.add.reduceat(x, edges[:-1]) / np.diff(edges)
    yb = np.add.reduceat(y, edges[:-1]) / np.diff(edges)
    return xb, yb


MERGE_REL = 0.03  # adjacent phases with rates this close (relative) are merged


def pressure_phases(
    normalized_capacity: ArrayLike,
    pressure_pa: ArrayLike,
    max_segments: int = 6,
    min_points: int = 5,
    max_points: int = 600,
    penalty: float | None = None,
) -> PressurePhases:
    """Phases of pressure vs normalized capacity (seed 001 Fig. 7): rate per phase in MPa
    per unit normalized capacity, the capacity at each rate change, the total rise
    (maximum − minimum) and the net change (end − start)."""
    q_all = np.asarray(normalized_capacity, float)
    p_all = np.asarray(pressure_pa, float) / 1e6
    starts, score = segment_piecewise_linear(
        q_all, p_all, max_segments, min_points, max_points, penalty
    )
    q, p = _bin(q_all, p_all, max_points)
    bounds = np.append(starts, q.size)
    while True:
        slopes, icpts = [], []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            sl, ic = np.polyfit(q[a:b], p[a:b], 1)
            slopes.append(sl)
            icpts.append(ic)
        sl_a, ic_a = np.asarray(slopes), np.asarray(icpts)
        # neighbours whose rates differ by under MERGE_REL are one phase: a tiny kink (a
        # cycle starting a hair below q = 0) is not a change of mechanism
        same = np.abs(np.diff(sl_a)) < MERGE_REL * np.maximum(np.abs(sl_a[:-1]), np.abs(sl_a[1:]))
        if not np.any(same):
            break
        bounds = np.delete(bounds, int(np.argmax(same)) + 1)
    breaks = []
    for k in range(1, bounds.size - 1):
        lo, hi = q[bounds[k] - 1], q[bounds[k]]
        ds = sl_a[k - 1] - sl_a[k]
        xb = (ic_a[k] - ic_a[k - 1]) / ds if ds != 0 else 0.5 * (lo + hi)
        breaks.append(xb if lo - (hi - lo) <= xb <= hi + (hi - lo) else 0.5 * (lo + hi))
    q0 = np.concatenate(([q[0]], breaks))
    q1 = np.concatenate((breaks, [q[-1]]))
    fitted = np.empty_like(q_all)
    seg_of = np.searchsorted(np.asarray(breaks), q_all, side="right")
    fitted = sl_a[seg_of] * q_all + ic_a[seg_of]
    p0 = sl_a * q0 + ic_a
    p1 = sl_a * q1 + ic_a
    return PressurePhases(
        q_start=q0,
        q_end=q1,
        rates_mpa_per_q=sl_a,
        p_start_mpa=p0,
        p_end_mpa=p1,
        breaks_q=np.asarray(breaks, dtype=float),
        total_rise_mpa=float(max(p0.max(), p1.max()) - min(p0.min(), p1.min())),
        max_rate_mpa_per_q=float(np.max(sl_a)),
        fitted_mpa=np.asarray(fitted, dtype=float),
        bic=score,
        net_change_mpa=float(p1[-1] - p0[0]),
    )
