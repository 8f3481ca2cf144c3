"""Comparison of setups across runs: win rates, Pareto ranks and Spearman tables.

Inputs are tidy pandas tables, one row per (setup, run): a *setup* is e.g. (method, layer group,
aggregation) or a baseline, a *run* is e.g. (task, seed), and ``accuracy`` is the held-out accuracy
after removing the lowest-scored training examples and retraining.

Pairwise comparison: for setups s and s', over the runs where both have a finite accuracy,
W(s, s') = (#runs s strictly better + ½ #runs tied) / #common runs, so W(s, s') + W(s', s) = 1.
**Decision:** ties count ½ (a tie is neither a win nor a loss); pairs of setups without a
common run are left out of every mean (W is NaN there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from layerinf.config import ConfigError


def _as_list(cols: str | Sequence[str]) -> list[str]:
    return [cols] if isinstance(cols, str) else list(cols)


def _check_columns(df: pd.DataFrame, cols: Sequence[str], name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigError(f"{name}={missing!r}: column(s) not in the table; available: {list(df.columns)}")


def _pivot(
    acc: pd.DataFrame, setup_col: str | Sequence[str], run_cols: str | Sequence[str], value_col: str
) -> pd.DataFrame:
    """[runs, setups] table of accuracies (NaN where a setup has no result for a run)."""
    setups, runs = _as_list(setup_col), _as_list(run_cols)
    _check_columns(acc, setups, "setup_col")
    _check_columns(acc, runs, "run_cols")
    _check_columns(acc, [value_col], "value_col")
    if not pd.api.types.is_numeric_dtype(acc[value_col]):
        raise ConfigError(f"value_col={value_col!r} must be numeric; got dtype {acc[value_col].dtype}")
    dup = acc.duplicated(subset=runs + setups, keep=False)
    if dup.any():
        example = acc.loc[dup, runs + setups].iloc[0].to_dict()
        raise ConfigError(f"{int(dup.sum())} rows repeat a (run, setup) pair, e.g. {example}; each must occur once")
    table = acc.pivot(index=runs, columns=setups, values=value_col)
    if table.shape[1] < 2:
        raise ConfigError(f"setup_col={setup_col!r} has {table.shape[1]} distinct setup(s); comparing needs at least 2")
    return table.astype(np.float64)


def pairwise_wins(
    acc: pd.DataFrame,
    setup_col: str | Sequence[str] = "setup",
    run_cols: str | Sequence[str] = ("task", "seed"),
    value_col: str = "accuracy",
) -> pd.DataFrame:
    """[setups, setups] table W(s, s') (rows s, columns s'); NaN on the diagonal and without common runs."""
    table = _pivot(acc, setup_col, run_cols, value_col)
    a = table.to_numpy()
    valid = np.isfinite(a)
    both = valid[:, :, None] & valid[:, None, :]  # [runs, s, s']
    with np.errstate(invalid="ignore"):
        wins = ((a[:, :, None] > a[:, None, :]) & both).sum(axis=0)
        ties = ((a[:, :, None] == a[:, None, :]) & both).sum(axis=0)
    common = both.sum(axis=0)
    w = np.full(common.shape, np.nan)
    np.divide(wins + 0.5 * ties, common, out=w, where=common > 0)
    np.fill_diagonal(w, np.nan)
    return pd.DataFrame(w, index=table.columns.copy(), columns=table.columns.copy())


def win_rates(
    acc: pd.DataFrame,
    setup_col: str | Sequence[str] = "setup",
    run_cols: str | Sequence[str] = ("task", "seed"),
    value_col: str = "accuracy",
) -> pd.Series:
    """Win rate per setup: mean over the other setups s' of W(s, s'), in [0, 1].

    W(s, s') is the fraction of the runs common to s and s' in which s has the strictly higher
    accuracy, ties counting ½. Sorted by decreasing win rate (ties by setup); NaN for a setup
    without any common run with another setup.
    """
    w = pairwise_wins(acc, setup_col, run_cols, value_col)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(w.to_numpy()).sum(axis=1)
        sums = np.nansum(w.to_numpy(), axis=1)
    rates = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = pd.Series(rates, index=w.index, name="win_rate")
    return out.sort_index(kind="stable").sort_values(ascending=False, kind="stable", na_position="last")


def pareto_ranks(
    acc: pd.DataFrame,
    setup_col: str | Sequence[str] = "setup",
    run_cols: str | Sequence[str] = ("task", "seed"),
    value_col: str = "accuracy",
    *,
    threshold: float = 0.75,
) -> pd.Series:
    """Pareto rank per setup (1 = first non-dominated front), sorted by rank then setup.

    s dominates s' if W(s, s') > ``threshold`` (ties ½, as in `win_rates`). Front 1 holds the
    setups no setup dominates; front 2 those only dominated by front 1; and so on.
    **Decision:** domination need not be transitive; if the remaining setups form a cycle in
    which each is dominated, they all share the next rank.
    """
    if not 0.5 <= float(threshold) <= 1.0:
        raise ConfigError(f"threshold={threshold!r} must be in [0.5, 1] (a share of common runs)")
    w = pairwise_wins(acc, setup_col, run_cols, value_col)
    dominates = np.nan_to_num(w.to_numpy(), nan=0.0) > threshold  # [s, s']: s dominates s'
    ranks = np.zeros(len(w), dtype=np.int64)
    remaining = np.ones(len(w), dtype=bool)
    rank = 0
    while remaining.any():
        rank += 1
        dominated = (dominates[remaining][:, remaining]).any(axis=0)
        members = np.flatnonzero(remaining)
        front = members[~dominated] if (~dominated).any() else members
        ranks[front] = rank
        remaining[front] = False
    out = pd.Series(ranks, index=w.index, name="pareto_rank")
    return out.sort_index(kind="stable").sort_values(kind="stable")


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    keep = ~(np.isnan(x) | np.isnan(y))  # inf is kept: it ranks above every finite value
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return float("nan"), float("nan"), n
    result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue), n


def spearman_table(
    df: pd.DataFrame,
    by: str | Sequence[str] = ("aggregation", "method"),
    x_cols: str | Sequence[str] = ("cancellation", "ndr@30", "auc_ndr"),
    y_col: str = "accuracy",
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Spearman ρ between ``y_col`` and each of ``x_cols``, pooled over the rows of each ``by`` group.

    One row per group: the ``by`` columns, then for each x: ``{x}_rho``, ``{x}_p``, ``{x}_n`` (rows
    used: NaN pairs dropped, ±inf kept as extreme ranks) and ``{x}_ns`` (True if p > ``alpha``, i.e.
    not significant, or if ρ is undefined: fewer than 3 rows or a constant column).
    """
    groups, xs = _as_list(by), _as_list(x_cols)
    _check_columns(df, groups, "by")
    _check_columns(df, xs, "x_cols")
    _check_columns(df, [y_col], "y_col")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha!r} must be in (0, 1)")
    rows: list[dict[str, object]] = []
    for key, sub in df.groupby(groups, sort=True, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(groups, keys, strict=True))
        y = sub[y_col].to_numpy(dtype=np.float64)
        for x in xs:
            rho, p, n = spearman(sub[x].to_numpy(dtype=np.float64), y)
            row[f"{x}_rho"] = rho
            row[f"{x}_p"] = p
            row[f"{x}_n"] = n
            row[f"{x}_ns"] = bool(not p <= alpha)
        rows.append(row)
    columns = groups + [f"{x}_{s}" for x in xs for s in ("rho", "p", "n", "ns")]
    return pd.DataFrame(rows, columns=columns)
