"""Hand-worked cases of `layerinf.comparison`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from layerinf.comparison import pairwise_wins, pareto_ranks, spearman_table, win_rates
from layerinf.config import ConfigError

# Accuracy per run (task t, seeds 0..3) and setup:
#   seed   A     B     C
#   0     0.9   0.8   0.7
#   1     0.9   0.9   0.6      (A ties B)
#   2     0.8   0.7   0.9
#   3     0.7   0.6   0.5
# W(A,B) = (1 + 0.5 + 1 + 1) / 4 = 0.875   W(A,C) = (1 + 1 + 0 + 1) / 4 = 0.75   W(B,C) = 0.75
# W(B,A) = 0.125, W(C,A) = 0.25, W(C,B) = 0.25
# win rate: A (0.875 + 0.75) / 2 = 0.8125; B (0.125 + 0.75) / 2 = 0.4375; C (0.25 + 0.25) / 2 = 0.25
TABLE = {"A": [0.9, 0.9, 0.8, 0.7], "B": [0.8, 0.9, 0.7, 0.6], "C": [0.7, 0.6, 0.9, 0.5]}


def _tidy(table: dict[str, list[float]], task: str = "t") -> pd.DataFrame:
    rows = [
        {"task": task, "seed": seed, "setup": setup, "accuracy": acc}
        for setup, accs in table.items()
        for seed, acc in enumerate(accs)
    ]
    return pd.DataFrame(rows)


ACC = _tidy(TABLE)


def test_pairwise_wins_by_hand() -> None:
    w = pairwise_wins(ACC)
    assert w.loc["A", "B"] == pytest.approx(0.875)
    assert w.loc["B", "A"] == pytest.approx(0.125)
    assert w.loc["A", "C"] == pytest.approx(0.75)
    assert w.loc["B", "C"] == pytest.approx(0.75)
    assert np.isnan(np.diag(w.to_numpy())).all()


def test_win_rates_by_hand() -> None:
    rates = win_rates(ACC)
    assert list(rates.index) == ["A", "B", "C"]
    np.testing.assert_allclose(rates.to_numpy(), [0.8125, 0.4375, 0.25])
    assert rates.name == "win_rate"


def test_pareto_ranks_by_hand() -> None:
    # threshold 0.75: only A dominates B (0.875 > 0.75); W(A,C) = W(B,C) = 0.75 is not > 0.75.
    ranks = pareto_ranks(ACC)
    assert ranks.to_dict() == {"A": 1, "C": 1, "B": 2}
    # threshold 0.7: A dominates B and C, B dominates C -> three fronts.
    assert pareto_ranks(ACC, threshold=0.7).to_dict() == {"A": 1, "B": 2, "C": 3}


def test_pareto_cycle_shares_rank() -> None:
    # Rock–paper–scissors: each setup wins 2 of 3 runs against the next one.
    cycle = _tidy({"A": [3, 1, 2], "B": [2, 3, 1], "C": [1, 2, 3]})
    assert pareto_ranks(cycle, threshold=0.6).to_dict() == {"A": 1, "B": 1, "C": 1}


def test_missing_runs_and_no_common_run() -> None:
    acc = pd.concat([ACC, _tidy({"D": [0.1]}, task="other")], ignore_index=True)
    rates = win_rates(acc)
    assert math.isnan(rates["D"])  # no run in common with any other setup
    np.testing.assert_allclose(rates[["A", "B", "C"]].to_numpy(), [0.8125, 0.4375, 0.25])
    # A setup missing one run is compared on the common runs only.
    partial = ACC[~((ACC.setup == "C") & (ACC.seed == 2))]
    w = pairwise_wins(partial)
    assert w.loc["A", "C"] == pytest.approx(1.0)  # seeds 0, 1, 3


def test_multi_column_setups() -> None:
    acc = ACC.assign(method="tracin", group=ACC.setup)
    rates = win_rates(acc, setup_col=("method", "group"))
    assert rates[("tracin", "A")] == pytest.approx(0.8125)


def test_comparison_errors() -> None:
    with pytest.raises(ConfigError, match="repeat a"):
        win_rates(pd.concat([ACC, ACC.iloc[:1]]))
    with pytest.raises(ConfigError, match=r"run_cols=.*'epoch'"):
        win_rates(ACC, run_cols=("task", "epoch"))
    with pytest.raises(ConfigError, match="at least 2"):
        win_rates(ACC[ACC.setup == "A"])
    with pytest.raises(ConfigError, match="threshold"):
        pareto_ranks(ACC, threshold=0.3)


def test_spearman_table_by_hand() -> None:
    df = pd.DataFrame(
        {
            "aggregation": ["mean"] * 4 + ["vote"] * 5,
            "method": ["tracin"] * 9,
            # mean: x = 1..4, y ranks 1, 3, 2, 4 -> Σd² = 2 -> ρ = 1 − 6·2 / (4·15) = 0.8 (p ≈ 0.2)
            "ndr@30": [1, 2, 3, 4, 1, 2, 3, 4, 5],
            # vote: an inf cancellation ranks above every finite one; one NaN row is dropped.
            "cancellation": [1, 1, 1, 1, 5, 4, 3, np.inf, np.nan],
            "accuracy": [0.1, 0.3, 0.2, 0.4, 0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    table = spearman_table(df, x_cols=("ndr@30", "cancellation"))
    assert list(table.columns[:2]) == ["aggregation", "method"]
    mean = table.iloc[0]
    assert mean["ndr@30_rho"] == pytest.approx(0.8)
    assert mean["ndr@30_n"] == 4
    assert mean["ndr@30_ns"]  # p ≈ 0.2 > 0.05
    assert math.isnan(mean["cancellation_rho"]) and mean["cancellation_ns"]  # constant column
    vote = table.iloc[1]
    assert vote["ndr@30_rho"] == pytest.approx(1.0) and not vote["ndr@30_ns"]
    # x = 5, 4, 3, inf vs y = 0.1 .. 0.4 (NaN row dropped): x ranks 3, 2, 1, 4; y ranks 1, 2, 3, 4
    # -> Σd² = 4 + 0 + 4 + 0 = 8 -> ρ = 1 − 6·8 / (4·15) = 0.2
    assert vote["cancellation_rho"] == pytest.approx(0.2)
    assert vote["cancellation_n"] == 4


def test_spearman_table_errors() -> None:
    with pytest.raises(ConfigError, match="x_cols"):
        spearman_table(ACC, by="setup", x_cols=("nope",))
