"""Spearman correlations over runs: pooled over every row (as the paper computes them) and within
runs (each run's own ρ), both with whole-run bootstrap intervals (`stats.bootstrap_runs_ci`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from layerinf.stats import N_RESAMPLES, RUN, Comparison, bootstrap_runs_ci


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ of the non-NaN pairs (±inf kept: they rank at the ends); NaN if fewer than 3 pairs
    or either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size < 3:
        return math.nan
    # Pearson correlation of the average ranks (what scipy.stats.spearmanr computes, without its
    # per-call overhead: the whole-run bootstrap calls this ten thousand times).
    rx, ry = sps.rankdata(x), sps.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom > 0 else math.nan


def _runs(df: pd.DataFrame, run_cols: Sequence[str]) -> list[pd.DataFrame]:
    return [g for _, g in df.groupby(list(run_cols), sort=True)]


def spearman_within(
    df: pd.DataFrame, x: str, y: str, run_cols: Sequence[str] = RUN, *, transform: Callable | None = None
) -> pd.Series:
    """Spearman ρ(x, y) inside each run (one value per run; NaN where undefined). Between-run
    differences (one task being easier and better detected than another) cannot enter it."""
    out = {}
    for key, g in df.groupby(list(run_cols), sort=True):
        xs = g[x].to_numpy(dtype=np.float64)
        out[key] = spearman(transform(xs) if transform else xs, g[y].to_numpy(dtype=np.float64))
    return pd.Series(out, dtype=np.float64)


def _pooled_spearman(xs: np.ndarray, ys: np.ndarray) -> Callable[..., np.ndarray]:
    """Vectorised statistic for `bootstrap_runs_ci`: `xs`, `ys` are [runs, rows]; the statistic maps
    run positions [..., m] to the Spearman ρ of the rows of those runs pooled, per leading index."""

    def stat(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        shape = idx.shape[:-1]
        rx = sps.rankdata(xs[idx].reshape(*shape, -1), axis=-1)
        ry = sps.rankdata(ys[idx].reshape(*shape, -1), axis=-1)
        rx -= rx.mean(axis=-1, keepdims=True)
        ry -= ry.mean(axis=-1, keepdims=True)
        denom = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, (rx * ry).sum(-1) / denom, np.nan)

    return stat


def spearman_pooled(
    df: pd.DataFrame, x: str, y: str, run_cols: Sequence[str] = RUN, *, n_resamples: int = N_RESAMPLES
) -> Comparison:
    """Spearman ρ(x, y) pooled over every row (as the paper computes it), with a whole-run bootstrap
    interval. Its p-value (SciPy's, which treats rows as independent) is reported, not used to decide."""
    runs = [g.dropna(subset=[x, y]) for g in _runs(df, run_cols)]
    runs = [g for g in runs if len(g)]
    xs = [g[x].to_numpy(dtype=np.float64) for g in runs]
    ys = [g[y].to_numpy(dtype=np.float64) for g in runs]

    def stat(idx: np.ndarray) -> float:
        return spearman(np.concatenate([xs[i] for i in idx]), np.concatenate([ys[i] for i in idx]))

    rho = stat(np.arange(len(runs))) if runs else math.nan
    if runs and len({len(v) for v in xs}) == 1:  # equal-sized runs: one vectorised rank per resample
        statistic = _pooled_spearman(np.stack(xs), np.stack(ys))
        lo, hi = bootstrap_runs_ci(len(runs), statistic, n_resamples=n_resamples, vectorized=True)
    else:
        lo, hi = bootstrap_runs_ci(len(runs), stat, n_resamples=n_resamples) if runs else (math.nan, math.nan)
    both = df[[x, y]].to_numpy(dtype=np.float64)
    keep = ~np.isnan(both).any(axis=1)
    p = math.nan
    if keep.sum() >= 3 and np.isfinite(rho):
        p = float(sps.spearmanr(both[keep, 0], both[keep, 1]).pvalue)
    return Comparison(
        name=f"ρ({x}, {y}) pooled",
        estimate=rho,
        low=lo,
        high=hi,
        n=len(runs),
        wins=0,
        losses=0,
        p=p,
        p_holm=p,
        test="Spearman (rows as independent)",
        unit="rho",
    )
