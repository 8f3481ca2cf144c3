"""Hand-worked cases of `layerinf.metrics` (order = ascending score, most harmful first)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from layerinf import metrics
from layerinf.config import ConfigError
from layerinf.metrics import (
    NDR_LEVELS,
    auc_ndr,
    cancellation,
    cancellation_chunks,
    ndr_at,
    ndr_curve,
    ndr_table,
    roc_auc,
)

# i:        0     1     2     3    4    5
SCORES = np.array([0.5, -1.0, 2.0, -1.0, 0.0, 1.0])
NOISY = np.array([False, True, False, False, True, True])
# Ascending, ties by index: i1 (-1), i3 (-1), i4 (0), i0 (0.5), i5 (1), i2 (2)
# noisy?                     T        F        T       F         T       F
# cumulative noisy:          1        1        2       2         3       3      (3 noisy)
CURVE = np.array([1, 1, 2, 2, 3, 3]) / 3


def test_ndr_curve_by_hand() -> None:
    np.testing.assert_allclose(ndr_curve(SCORES, NOISY), CURVE)
    # The tie at -1.0 is broken by index: i1 (noisy) before i3 (clean). Swap the labels of the tie:
    swapped = NOISY.copy()
    swapped[[1, 3]] = [False, True]
    np.testing.assert_allclose(ndr_curve(SCORES, swapped), np.array([0, 1, 2, 2, 3, 3]) / 3)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.05, 0.0),  # round(0.3) = 0 examples inspected
        (0.1, 1 / 3),  # round(0.6) = 1
        (0.25, 1 / 3),  # round(1.5) = 2 (half to even)
        (0.3, 1 / 3),  # round(1.8) = 2
        (0.5, 2 / 3),  # 3
        (0.7, 2 / 3),  # round(4.2) = 4
        (0.8, 1.0),  # round(4.8) = 5
        (1.0, 1.0),
    ],
)
def test_ndr_at_by_hand(q: float, expected: float) -> None:
    assert ndr_at(SCORES, NOISY, q) == pytest.approx(expected)


def test_ndr_table_keys_and_values() -> None:
    table = ndr_table(SCORES, NOISY)
    assert list(table) == [
        "ndr@5", "ndr@10", "ndr@15", "ndr@20", "ndr@25", "ndr@30", "ndr@35",
        "ndr@40", "ndr@45", "ndr@50", "ndr@60", "ndr@70", "ndr@80", "ndr@90",
    ]  # fmt: skip
    assert len(NDR_LEVELS) == 14
    for q in NDR_LEVELS:
        assert table[metrics.level_name(q)] == ndr_at(SCORES, NOISY, q)
    assert table["ndr@30"] == pytest.approx(1 / 3)


def test_auc_ndr_by_hand() -> None:
    # Σ NDR(t) = (1 + 1 + 2 + 2 + 3 + 3) / 3 = 4;  (4 − 1/2) / (6 − 3/2) = 3.5 / 4.5 = 7/9
    assert auc_ndr(SCORES, NOISY) == pytest.approx(7 / 9)


def test_auc_ndr_perfect_and_worst() -> None:
    noisy = np.array([True, True, False, False, False])
    # perfect: NDR = 1/2, 1, 1, 1, 1 -> (4.5 − 0.5) / (5 − 1) = 1
    assert auc_ndr(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), noisy) == pytest.approx(1.0)
    # worst: NDR = 0, 0, 0, 1/2, 1 -> (1.5 − 0.5) / 4 = 1/4 = (n_noisy / 2) / (n − n_noisy / 2)
    assert auc_ndr(np.array([4.0, 3.0, 2.0, 1.0, 0.0]), noisy) == pytest.approx(0.25)


def test_auc_ndr_random_is_about_0556() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    noisy = np.zeros(n, dtype=bool)
    noisy[:200] = True  # 20 % noise
    values = [auc_ndr(rng.standard_normal(n), noisy) for _ in range(200)]
    assert np.mean(values) == pytest.approx(0.5 / 0.9, abs=0.01)  # 0.5556


def test_roc_auc_by_hand_with_ties() -> None:
    # noisy scores {-1, 0, 1}, clean {0.5, 2, -1}; count noisy < clean, tie = 1/2:
    # -1: 1 + 1 + 0.5;  0: 1 + 1 + 0;  1: 0 + 1 + 0  -> 5.5 / 9
    assert roc_auc(SCORES, NOISY) == pytest.approx(5.5 / 9)
    assert roc_auc(np.array([0.0, 0.0]), np.array([True, False])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.0, 1.0]), np.array([True, False])) == pytest.approx(1.0)
    assert roc_auc(np.array([1.0, 0.0]), np.array([True, False])) == pytest.approx(0.0)


def test_integer_noisy_mask_accepted() -> None:
    np.testing.assert_allclose(ndr_curve(SCORES, NOISY.astype(int)), CURVE)


@pytest.mark.parametrize("func", [ndr_curve, auc_ndr, roc_auc, lambda s, y: ndr_at(s, y, 0.3), ndr_table])
def test_scores_errors(func) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"scores has shape \(6,\) but is_noisy has shape \(5,\)"):
        func(SCORES, NOISY[:5])
    bad = SCORES.copy()
    bad[2] = np.nan
    with pytest.raises(ConfigError, match="1 non-finite"):
        func(bad, NOISY)
    bad[3] = np.inf
    with pytest.raises(ConfigError, match="2 non-finite"):
        func(bad, NOISY)
    with pytest.raises(ConfigError, match="is_noisy"):
        func(SCORES, np.zeros(6, dtype=bool))
    with pytest.raises(ConfigError, match="is_noisy must be a boolean"):
        func(SCORES, np.full(6, 0.5))


def test_ndr_level_errors() -> None:
    for q in (0.0, 30, -0.1, math.nan):
        with pytest.raises(ConfigError, match=r"q=.* \(0, 1\]"):
            ndr_at(SCORES, NOISY, q)


def test_roc_auc_needs_clean() -> None:
    with pytest.raises(ConfigError, match="needs both"):
        roc_auc(SCORES, np.ones(6, dtype=bool))


# grads [n=3, p=4]:
#   p0: 1, 1, 1   -> Σ|g| = 3, |Σg| = 3 -> c = 1
#   p1: 1, -1, 0  -> 2 / 0               -> c = inf
#   p2: 0, 0, 0   -> 0 / 0               -> excluded, n_zero = 1
#   p3: 2, -1, 1  -> 4 / 2               -> c = 2
# ratio = (3 + 2 + 0 + 4) / (3 + 0 + 0 + 2) = 9 / 5
GRADS = np.array([[1.0, 1.0, 0.0, 2.0], [1.0, -1.0, 0.0, -1.0], [1.0, 0.0, 0.0, 1.0]])


def test_cancellation_by_hand() -> None:
    out = cancellation(GRADS)
    assert out["ratio"] == pytest.approx(1.8)
    assert out["median"] == 2.0  # median of {1, 2, inf}
    assert out["min"] == 1.0
    assert out["max"] == math.inf
    assert out["n_zero"] == 1
    assert out["n_params"] == 4


def test_cancellation_chunks_equal_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    dense = cancellation(GRADS)
    chunked = cancellation_chunks([GRADS[:, :1], GRADS[:, 1:1], GRADS[:, 1:3], GRADS[:, 3:]])
    assert chunked == dense
    monkeypatch.setattr(metrics, "_CANCEL_CHUNK_ELEMENTS", 3)  # one column per chunk
    assert cancellation(GRADS) == dense
    rng = np.random.default_rng(1)
    big = rng.standard_normal((7, 50)).astype(np.float32)
    monkeypatch.setattr(metrics, "_CANCEL_CHUNK_ELEMENTS", 7 * 8)
    small_chunks = cancellation(big)
    monkeypatch.setattr(metrics, "_CANCEL_CHUNK_ELEMENTS", 2**23)
    whole = cancellation(big)
    assert small_chunks["ratio"] == pytest.approx(whole["ratio"])
    assert small_chunks["median"] == whole["median"]


def test_cancellation_infinite_and_all_zero() -> None:
    assert cancellation(np.array([[1.0], [-1.0]]))["ratio"] == math.inf
    zero = cancellation(np.zeros((3, 2)))
    assert math.isnan(zero["ratio"]) and math.isnan(zero["median"])
    assert zero["n_zero"] == 2 and zero["n_params"] == 2
    # No cancellation at all: every per-parameter ratio is 1.
    same = cancellation(np.array([[1.0, -2.0], [3.0, -1.0]]))
    assert same == {"ratio": 1.0, "median": 1.0, "min": 1.0, "max": 1.0, "n_zero": 0, "n_params": 2}


def test_cancellation_errors() -> None:
    with pytest.raises(ConfigError, match="2-d"):
        cancellation(np.zeros(3))
    with pytest.raises(ConfigError, match="p = 0"):
        cancellation(np.zeros((3, 0)))
    with pytest.raises(ConfigError, match=r"chunk 1 has shape \(2, 1\) but earlier chunks have n=3"):
        cancellation_chunks([np.ones((3, 1)), np.ones((2, 1))])
    bad = GRADS.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ConfigError, match="1 non-finite"):
        cancellation(bad)
    with pytest.raises(ConfigError, match="p = 0"):
        cancellation_chunks(iter([]))
