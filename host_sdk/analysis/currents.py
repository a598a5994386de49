"""Piecewise-constant current histories (pulse trains, staircases, GITT) shared by the
closed-form solutions, the finite-volume solver and the planner.

Sign convention: a positive current density strips (removes) the mobile species at the
interface x = 0, i.e. it depletes the film.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PiecewiseCurrent:
    """Current density ``current_a_m2[k]`` from ``edges_s[k]`` until ``edges_s[k+1]``.

    The last value holds for ever; before ``edges_s[0]`` the current is zero.
    """

    edges_s: FloatArray
    current_a_m2: FloatArray

    def __init__(self, edges_s: ArrayLike, current_a_m2: ArrayLike) -> None:
        e = np.asarray(edges_s, dtype=float).ravel()
        v = np.asarray(current_a_m2, dtype=float).ravel()
        if e.shape != v.shape or e.size == 0:
            raise ValueError("edges_s and current_a_m2 must be non-empty and of equal length")
        if np.any(np.diff(e) <= 0):
            raise ValueError("edges_s must be strictly increasing")
        object.__setattr__(self, "edges_s", e)
        object.__setattr__(self, "current_a_m2", v)

    def current(self, t_s: ArrayLike) -> FloatArray:
        t = np.asarray(t_s, dtype=float)
        k = np.searchsorted(self.edges_s, t, side="right") - 1
        out = np.where(k >= 0, self.current_a_m2[np.clip(k, 0, None)], 0.0)
        return np.asarray(out, dtype=float)

    def charge_c_m2(self, t_s: ArrayLike) -> FloatArray:
        """Exact cumulative charge density ∫₀ᵗ i dt (C m⁻²)."""
        t = np.asarray(t_s, dtype=float)
        e, v = self.edges_s, self.current_a_m2
        seg_q = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(e))))
        k = np.searchsorted(e, t, side="right") - 1
        kc = np.clip(k, 0, None)
        q = seg_q[kc] + v[kc] * (t - e[kc])
        return np.asarray(np.where(k >= 0, q, 0.0), dtype=float)

    def steps(self, t_end_s: float) -> tuple[FloatArray, FloatArray]:
        """Step times t_k ≤ t_end and step heights Δi_k (for superposition)."""
        e, v = self.edges_s, self.current_a_m2
        dv = np.diff(np.concatenate(([0.0], v)))
        keep = (e <= t_end_s) & (dv != 0.0)
        return e[keep], dv[keep]


@dataclass(frozen=True)
class PulseTrain:
    """Periodic pulses: ``current_a_m2`` for ``on_s``, then zero for ``off_s``, from
    ``start_s``; ``n_pulses=None`` repeats for ever (until the solver's end time)."""

    current_a_m2: float
    on_s: float
    off_s: float
    start_s: float = 0.0
    n_pulses: int | None = None

    def _phase(self, t: FloatArray) -> tuple[FloatArray, FloatArray]:
        period = self.on_s + self.off_s
        tau = t - self.start_s
        k = np.floor(tau / period) if period > 0 else np.zeros_like(tau)
        if self.n_pulses is not None:
            k = np.minimum(k, self.n_pulses)
        return k, tau - k * period

    def current(self, t_s: ArrayLike) -> FloatArray:
        t = np.asarray(t_s, dtype=float)
        if self.off_s == 0.0:
            on = t >= self.start_s
            if self.n_pulses is not None:
                on &= t < self.start_s + self.n_pulses * self.on_s
            return np.where(on, self.current_a_m2, 0.0)
        k, ph = self._phase(t)
        on = (t >= self.start_s) & (ph < self.on_s)
        if self.n_pulses is not None:
            on &= k < self.n_pulses
        return np.where(on, self.current_a_m2, 0.0)

    def charge_c_m2(self, t_s: ArrayLike) -> FloatArray:
        t = np.asarray(t_s, dtype=float)
        if self.off_s == 0.0:
            dur = np.clip(t - self.start_s, 0.0, None)
            if self.n_pulses is not None:
                dur = np.minimum(dur, self.n_pulses * self.on_s)
            return np.asarray(self.current_a_m2 * dur, dtype=float)
        k, ph = self._phase(t)
        if self.n_pulses is not None:
            ph = np.where(k >= self.n_pulses, 0.0, ph)
        q = self.current_a_m2 * (k * self.on_s + np.clip(ph, 0.0, self.on_s))
        return np.asarray(np.where(t >= self.start_s, q, 0.0), dtype=float)

    def steps(self, t_end_s: float) -> tuple[FloatArray, FloatArray]:
        period = self.on_s + self.off_s
        n = int(np.floor((t_end_s - self.start_s) / period)) + 1 if period > 0 else 1
        if self.n_pulses is not None:
            n = min(n, self.n_pulses)
        n = max(n, 0)
        k = np.arange(n)
        t_on = self.start_s + k * period
        if self.off_s == 0.0:
            t = np.array([self.start_s]) if n else np.array([])
            di = np.array([self.current_a_m2]) if n else np.array([])
            if self.n_pulses is not None and n:
                t = np.append(t, self.start_s + self.n_pulses * self.on_s)
                di = np.append(di, -self.current_a_m2)
        else:
            t = np.column_stack((t_on, t_on + self.on_s)).ravel()
            di = np.tile([self.current_a_m2, -self.current_a_m2], n)
        keep = t <= t_end_s
        return np.asarray(t[keep], dtype=float), np.asarray(di[keep], dtype=float)


CurrentHistory = PiecewiseCurrent | PulseTrain


def staircase(
    start_a_m2: float, stop_a_m2: float, step_a_m2: float, on_s: float, off_s: float
) -> PiecewiseCurrent:
    """Staircase of pulses (seed 004: 0.05 → 1 mA cm⁻² in 0.01 steps, 5 s on + 35 s off)."""
    n = int(round((stop_a_m2 - start_a_m2) / step_a_m2)) + 1
    levels = start_a_m2 + step_a_m2 * np.arange(n)
    period = on_s + off_s
    edges = np.column_stack((np.arange(n) * period, np.arange(n) * period + on_s)).ravel()
    vals = np.column_stack((levels, np.zeros(n))).ravel()
    return PiecewiseCurrent(edges, vals)
