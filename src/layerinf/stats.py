"""Statistics behind the verdicts: paired differences within runs, whole-run bootstrap intervals,
signed-rank and sign tests, Holm's correction, and equivalence readings (Spearman correlations pooled
and within runs are in `layerinf.correlation`).

Pure NumPy / SciPy / pandas. A *run* is one (model, task, seed): everything inside a run shares the
fine-tuned model, the training, query and evaluation examples and the injected noise, so setups are
compared *within* runs (paired) and the runs are the independent units. Every interval resamples
whole runs, never the rows inside a run.

Conventions:

- A `Comparison` is oriented so that a positive estimate is what the claim predicts ("middle −
  WE", "Vote − Mean"); `decide` turns it into ``supports`` / ``opposes`` / ``undecided``.
- Intervals are percentile-corrected (BCa) bootstrap intervals of the mean over runs, at
  `LEVEL`, from `N_RESAMPLES` resamples with a fixed seed (so a rebuild gives the same numbers).
- A difference decides only if its interval excludes 0 *and* its Holm-adjusted signed-rank p-value
  is at most `ALPHA`: the interval says which side, the exact test guards the small-sample
  bootstrap. Non-significance is never support.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from layerinf.config import ConfigError

RUN: tuple[str, ...] = ("model", "task", "seed")
LEVEL = 0.95
ALPHA = 0.05
N_RESAMPLES = 9999
SEED = 20260101
#: Outcomes of one part of a claim, relative to the claim's direction.
SUPPORTS, OPPOSES, UNDECIDED = "supports", "opposes", "undecided"
#: The three verdicts a claim can get.
HELD, DID_NOT_HOLD, INCONCLUSIVE = "held", "did not hold", "inconclusive"
VERDICTS: tuple[str, ...] = (HELD, DID_NOT_HOLD, INCONCLUSIVE)


# --------------------------------------------------------------------------- tests and corrections


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order.

    The i-th smallest p is multiplied by (m − i + 1), made monotone non-decreasing along that order
    and capped at 1. NaN p-values are left NaN and do not count towards m.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ConfigError(f"pvalues={p.tolist()!r} must lie in [0, 1]")
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of `d` against 0 (zero differences dropped; exact when
    SciPy can, i.e. small n without ties). 1.0 if every difference is 0, NaN if `d` is empty."""
    d = np.asarray(d, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return math.nan
    if not np.any(d != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns that exact p-values are unavailable with ties
        return float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def sign_p(d: np.ndarray) -> float:
    """Two-sided exact sign test of `d` against 0 (zeros dropped); 1.0 if all are 0, NaN if empty."""
    d = np.asarray(d, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return math.nan
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    if wins + losses == 0:
        return 1.0
    return float(sps.binomtest(wins, wins + losses, 0.5).pvalue)


# --------------------------------------------------------------------------- bootstrap over runs


def bootstrap_ci(
    values: np.ndarray, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of `values` (one value per run; NaN dropped).

    (NaN, NaN) with fewer than 2 values; (v, v) if every value is the same v (no spread to resample).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan, math.nan
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])
    return _bootstrap((v,), np.mean, level, n_resamples, seed, vectorized=True)


def bootstrap_runs_ci(
    n_runs: int,
    statistic: Callable[..., float | np.ndarray],
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    *,
    vectorized: bool = False,
) -> tuple[float, float]:
    """BCa bootstrap interval of `statistic(run_indices)`, resampling whole runs.

    `statistic` receives an int array of run positions in ``range(n_runs)`` (with repeats) and
    returns a float computed from the rows of those runs (e.g. a Spearman ρ pooled over them).
    With ``vectorized=True`` it must accept a 2-D array of such positions and an ``axis=-1``
    keyword and return one value per row (SciPy's vectorised protocol).
    """
    if n_runs < 2:
        return math.nan, math.nan
    idx = np.arange(n_runs)
    first = statistic(idx[None, :], axis=-1)[0] if vectorized else statistic(idx)
    if not np.isfinite(first):
        return math.nan, math.nan
    return _bootstrap((idx,), statistic, level, n_resamples, seed, vectorized=vectorized)


def _bootstrap(
    data: tuple[np.ndarray, ...], statistic: Callable, level: float, n_resamples: int, seed: int, vectorized: bool
) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level={level!r} must be in (0, 1)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples make BCa warn; the interval is still returned
        res = sps.bootstrap(
            data,
            statistic,
            confidence_level=level,
            n_resamples=n_resamples,
            method="BCa",
            vectorized=vectorized,
            rng=np.random.default_rng(seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa undefined (e.g. a resample distribution with no spread)
        boot = np.asarray(res.bootstrap_distribution, dtype=np.float64)
        boot = boot[np.isfinite(boot)]
        if boot.size == 0:
            return math.nan, math.nan
        lo, hi = (float(q) for q in np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))
    return lo, hi


# --------------------------------------------------------------------------- paired comparisons


@dataclass(frozen=True)
class Comparison:
    """One paired comparison (or one correlation) summarised over runs.

    estimate: mean over runs of the per-run value (a difference a − b, or a within-run ρ);
    low/high: its bootstrap interval; n: number of runs; wins/losses: runs with a positive /
    negative value; p: two-sided signed-rank p-value; p_holm: after Holm's correction over the
    comparisons of one claim (equal to p until `adjust` is called); outcome: `decide`'s answer.
    `null` is the value the claim is tested against (0 for a difference; for an equivalence the
    half-width of the band the interval must lie in).
    """

    name: str
    estimate: float
    low: float
    high: float
    n: int
    wins: int
    losses: int
    p: float
    p_holm: float
    test: str = "Wilcoxon signed-rank"
    kind: str = "difference"  # or "equivalence"
    null: float = 0.0
    role: str = "decides"  # "decides", "guards" (may only refute) or "context" (shown, never decides)
    key: str = ""  # short name for glue keys
    unit: str = "accuracy"  # what the values are: "accuracy", "ndr" (fractions) or "rho" (correlations)
    outcome: str = UNDECIDED
    values: tuple[float, ...] = field(default=(), repr=False)  # the per-run values behind the estimate

    def as_row(self) -> dict[str, object]:
        return {
            "comparison": self.name,
            "estimate": self.estimate,
            "ci_low": self.low,
            "ci_high": self.high,
            "n_runs": self.n,
            "wins": self.wins,
            "losses": self.losses,
            "test": self.test,
            "p": self.p,
            "p_holm": self.p_holm,
            "outcome": self.outcome,
            "role": self.role,
        }


def summarise(
    per_run: pd.Series | np.ndarray,
    name: str,
    *,
    key: str = "",
    role: str = "decides",
    unit: str = "accuracy",
    seed: int = SEED,
) -> Comparison:
    """A `Comparison` of per-run values (one per run, NaN runs dropped): mean, whole-run bootstrap
    interval, wins/losses and the signed-rank p-value."""
    v = np.asarray(per_run, dtype=np.float64)
    v = v[np.isfinite(v)]
    lo, hi = bootstrap_ci(v, seed=seed)
    p = wilcoxon_p(v)
    return Comparison(
        name=name,
        estimate=float(v.mean()) if v.size else math.nan,
        low=lo,
        high=hi,
        n=int(v.size),
        wins=int((v > 0).sum()),
        losses=int((v < 0).sum()),
        p=p,
        p_holm=p,
        role=_role(role),
        key=key,
        unit=unit,
        values=tuple(float(x) for x in v),
    )


ROLES: tuple[str, ...] = ("decides", "guards", "context")


def _role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"role={role!r} is not allowed; choose one of: {', '.join(ROLES)}")
    return role


def adjust(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Holm-correct the p-values of the *difference* comparisons of one family (e.g. those that decide
    one claim) and decide each one. Equivalence comparisons are decided on their interval alone."""
    diffs = [i for i, c in enumerate(comparisons) if c.kind == "difference"]
    adjusted = holm([comparisons[i].p for i in diffs])
    out = list(comparisons)
    for i, p in zip(diffs, adjusted, strict=True):
        out[i] = replace(out[i], p_holm=float(p))
    return [replace(c, outcome=decide(c, alpha)) for c in out]


def decide(c: Comparison, alpha: float = ALPHA) -> str:
    """``supports`` / ``opposes`` / ``undecided`` for one comparison.

    difference: supports if the interval lies above `null` and p_holm ≤ alpha, opposes if it lies
    below and p_holm ≤ alpha, undecided otherwise (too few runs, an interval across 0, a large p).
    equivalence (the claim is |value| < `null`): supports if the interval lies inside
    (−null, null); opposes if it lies entirely at or beyond one of ±null; undecided otherwise.
    """
    if c.n < 2 or not (np.isfinite(c.low) and np.isfinite(c.high)):
        return UNDECIDED
    if c.kind == "equivalence":
        if -c.null < c.low and c.high < c.null:
            return SUPPORTS
        if c.low >= c.null or c.high <= -c.null:
            return OPPOSES
        return UNDECIDED
    significant = np.isfinite(c.p_holm) and c.p_holm <= alpha
    if significant and c.low > c.null:
        return SUPPORTS
    if significant and c.high < c.null:
        return OPPOSES
    return UNDECIDED


def verdict(comparisons: Sequence[Comparison]) -> str:
    """A claim's verdict from its decided comparisons (``context`` ones are ignored).

    held: every ``decides`` comparison supports the claim and no ``decides`` or ``guards`` one
    opposes it; did not hold: one of them opposes it; inconclusive: otherwise (an interval that
    cannot decide, too little data). Without any ``decides`` comparison: inconclusive.
    """
    counted = [c for c in comparisons if c.role in ("decides", "guards")]
    if any(c.outcome == OPPOSES for c in counted):
        return DID_NOT_HOLD
    deciding = [c for c in counted if c.role == "decides"]
    if deciding and all(c.outcome == SUPPORTS for c in deciding):
        return HELD
    return INCONCLUSIVE


def comparison_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    return pd.DataFrame([c.as_row() for c in comparisons])


# --------------------------------------------------------------------------- paired differences


def _as_list(x: str | Sequence[str]) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def paired_difference(
    table: pd.DataFrame,
    a: str | Sequence[str],
    b: str | Sequence[str],
    *,
    setup_col: str = "setup",
    value: str = "acc_selected",
    run_cols: Sequence[str] = RUN,
) -> pd.Series:
    """Per run: mean `value` of the setups `a` minus mean `value` of the setups `b`.

    `a` and `b` are setup names (or lists of names, averaged within the run first). A run counts only
    if every setup of `a` and of `b` has a finite value in it; the result is indexed by the run.
    """
    runs = list(run_cols)
    for col in [*runs, setup_col, value]:
        if col not in table.columns:
            raise ConfigError(f"column {col!r} is not in the table; available: {list(table.columns)}")
    a_list, b_list = _as_list(a), _as_list(b)
    if set(a_list) & set(b_list):
        raise ConfigError(f"a={a_list!r} and b={b_list!r} share setups; a paired difference needs disjoint sides")
    wide = table[table[setup_col].isin(a_list + b_list)].pivot_table(
        index=runs, columns=setup_col, values=value, aggfunc="mean"
    )
    wide = wide.reindex(columns=a_list + b_list)
    complete = wide.notna().all(axis=1)
    wide = wide[complete]
    diff = wide[a_list].mean(axis=1) - wide[b_list].mean(axis=1)
    return diff.rename(f"{'+'.join(a_list)} − {'+'.join(b_list)}")


def run_means(table: pd.DataFrame, value: str, run_cols: Sequence[str] = RUN) -> pd.Series:
    """Mean of `value` within each run (NaN rows ignored): pools e.g. several layer groups of a run
    into one number, so a run is still one unit of the bootstrap."""
    return table.groupby(list(run_cols))[value].mean().dropna()


def equivalence(
    c: Comparison, bound: float, *, name: str | None = None, key: str = "", role: str = "decides"
) -> Comparison:
    """`c` re-read as an equivalence claim |value| < `bound`, decided on its interval alone."""
    if not bound > 0:
        raise ConfigError(f"bound={bound!r} must be > 0")
    return replace(c, name=name or c.name, kind="equivalence", null=float(bound), role=_role(role), key=key or c.key)
