"""Hand-checked cases of `layerinf.stats`: Holm, the tests, the bootstrap over runs, paired
differences, Spearman within and pooled, and the decision rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from layerinf import correlation, stats
from layerinf.config import ConfigError


def test_holm_by_hand() -> None:
    # sorted p: 0.01 (×3 = 0.03), 0.02 (×2 = 0.04), 0.04 (×1 = 0.04): monotone already
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # step-down monotonicity: 0.001×4 = 0.004, 0.03×3 = 0.09, 0.02×2 -> kept at 0.09? no: order is
    # 0.001, 0.02, 0.03, 0.5 -> 0.004, 0.06, 0.06 (0.03×2 = 0.06), 0.5
    assert stats.holm([0.5, 0.03, 0.001, 0.02]) == pytest.approx([0.5, 0.06, 0.004, 0.06])
    assert stats.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = stats.holm([np.nan, 0.01, 0.04])  # NaN does not count towards m
    assert math.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.04])
    with pytest.raises(ConfigError, match="pvalues"):
        stats.holm([1.5])


def test_sign_and_wilcoxon_by_hand() -> None:
    # 8 positive differences: exact sign test p = 2 / 2^8; exact signed-rank p = 2 / 2^8 as well
    d = np.arange(1, 9, dtype=float)
    assert stats.sign_p(d) == pytest.approx(2 / 256)
    assert stats.wilcoxon_p(d) == pytest.approx(2 / 256)
    assert stats.sign_p(np.zeros(5)) == 1.0 and stats.wilcoxon_p(np.zeros(5)) == 1.0
    assert math.isnan(stats.wilcoxon_p(np.array([]))) and math.isnan(stats.sign_p(np.array([np.nan])))
    # zeros are dropped: 3 positive, 1 negative, 2 zeros -> binomial(3 of 4)
    assert stats.sign_p(np.array([1, 2, 3, -1, 0, 0.0])) == pytest.approx(sps.binomtest(3, 4).pvalue)


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    v = np.array([0.01, 0.03, 0.02, 0.05, 0.04, 0.02, 0.03, 0.06])
    lo, hi = stats.bootstrap_ci(v)
    assert lo < v.mean() < hi and lo > 0  # all positive: the interval stays above 0
    assert stats.bootstrap_ci(v) == (lo, hi)  # fixed seed
    assert stats.bootstrap_ci(np.array([0.2, 0.2, 0.2])) == (0.2, 0.2)
    assert all(math.isnan(x) for x in stats.bootstrap_ci(np.array([1.0])))
    wide = stats.bootstrap_ci(np.array([-3.0, 2.0, -1.0, 4.0]))
    assert wide[0] < 0 < wide[1]


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"model": "m", "task": "t", "seed": seed, "setup": setup, "acc_selected": v}
        for setup, vs in values.items()
        for seed, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_paired_difference_averages_sides_within_runs_and_skips_incomplete_runs() -> None:
    table = _runs({"a": [0.9, 0.8, 0.7], "b": [0.7, 0.8, np.nan], "c": [0.5, 0.6, 0.5]})
    d = stats.paired_difference(table, ["a", "b"], "c")
    # run 0: (0.9 + 0.7)/2 − 0.5 = 0.3; run 1: 0.8 − 0.6 = 0.2; run 2 lacks b: dropped
    assert d.to_numpy() == pytest.approx([0.3, 0.2])
    with pytest.raises(ConfigError, match="disjoint"):
        stats.paired_difference(table, ["a", "c"], "c")
    with pytest.raises(ConfigError, match="column"):
        stats.paired_difference(table, "a", "c", value="nope")


def test_spearman_within_ignores_between_run_differences() -> None:
    # Within each run x and y are perfectly anti-ordered, but run 1 has higher x and y than run 0:
    # pooled ρ is positive, within-run ρ is −1 in each run.
    rows = []
    for run, shift in ((0, 0.0), (1, 10.0)):
        for k in range(4):
            rows.append({"model": "m", "task": "t", "seed": run, "x": shift + k, "y": shift - k})
    df = pd.DataFrame(rows)
    assert correlation.spearman_within(df, "x", "y").to_numpy() == pytest.approx([-1.0, -1.0])
    pooled = correlation.spearman_pooled(df, "x", "y")
    assert pooled.estimate > 0.5 and pooled.n == 2


def test_decide_and_verdict_rules() -> None:
    up = stats.summarise(np.linspace(0.01, 0.08, 8), "up", key="up")
    down = stats.summarise(-np.linspace(0.01, 0.08, 8), "down", key="down")
    flat = stats.summarise(np.array([0.02, -0.01, 0.03, -0.02, 0.01, -0.03, 0.0, 0.01]), "flat")
    few = stats.summarise(np.array([0.05, 0.04]), "few")
    decided = stats.adjust([up, down, flat, few])
    assert [c.outcome for c in decided] == ["supports", "opposes", "undecided", "undecided"]
    assert decided[0].p_holm == pytest.approx(min(1.0, 4 * (2 / 256)))  # smallest of four p
    assert stats.verdict(stats.adjust([up])) == "held"
    assert stats.verdict(stats.adjust([up, down])) == "did not hold"
    assert stats.verdict(stats.adjust([up, flat])) == "inconclusive"
    assert stats.verdict([]) == "inconclusive"
    # a guard can refute but not support; context is ignored
    guard = stats.adjust([up, stats.summarise(-np.linspace(0.01, 0.08, 8), "g", role="guards")])
    assert stats.verdict(guard) == "did not hold"
    ctx = stats.adjust([up]) + stats.adjust([stats.summarise(-np.linspace(0.01, 0.08, 8), "c", role="context")])
    assert stats.verdict(ctx) == "held"
    with pytest.raises(ConfigError, match="role"):
        stats.summarise(np.ones(3), "x", role="maybe")


def test_equivalence_is_decided_on_the_interval() -> None:
    def eq(lo: float, hi: float) -> str:
        c = stats.Comparison("ρ", 0.0, lo, hi, 10, 0, 0, math.nan, math.nan)
        return stats.decide(stats.equivalence(c, 0.5))

    assert eq(-0.3, 0.4) == "supports"
    assert eq(-0.6, 0.2) == "undecided"  # could be a strong negative correlation
    assert eq(-0.9, -0.55) == "opposes"
    assert eq(0.5, 0.8) == "opposes"
    with pytest.raises(ConfigError, match="bound"):
        stats.equivalence(stats.Comparison("ρ", 0, 0, 0, 1, 0, 0, 0, 0), 0.0)


def test_spearman_matches_scipy_with_ties_and_inf() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(float)
    y = x + rng.normal(size=40)
    x[3] = np.inf
    assert correlation.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    assert math.isnan(correlation.spearman(np.ones(5), np.arange(5.0)))
    assert math.isnan(correlation.spearman(np.array([1.0, 2.0]), np.array([2.0, 1.0])))


def test_pooled_spearman_interval_is_the_same_vectorised_or_not() -> None:
    rng = np.random.default_rng(1)
    rows = [
        {"model": "m", "task": "t", "seed": r, "x": float(rng.normal()), "y": float(rng.normal())}
        for r in range(6)
        for _ in range(5)
    ]
    df = pd.DataFrame(rows)
    equal = correlation.spearman_pooled(df, "x", "y", n_resamples=999)  # equal-sized runs: vectorised
    padded = pd.concat([df, df.iloc[:1].assign(x=np.nan)])  # the NaN row is dropped before resampling
    assert (equal.low, equal.high) == (correlation.spearman_pooled(padded, "x", "y", n_resamples=999).low, equal.high)
    assert equal.estimate == pytest.approx(sps.spearmanr(df.x, df.y).statistic)
    x, y = df.x.to_numpy().reshape(6, 5), df.y.to_numpy().reshape(6, 5)
    loop = stats.bootstrap_runs_ci(
        6,
        lambda idx: correlation.spearman(np.concatenate([x[i] for i in idx]), np.concatenate([y[i] for i in idx])),
        n_resamples=999,
    )
    assert (equal.low, equal.high) == pytest.approx(loop)
