"""Hand-worked cases of `layerinf.aggregation` (larger score = more beneficial)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from layerinf import aggregation as agg
from layerinf.aggregation import AGGREGATIONS, aggregate, aggregate_many, vote_k_sweep
from layerinf.config import ConfigError

# values[l, i, j]: 2 modules × 4 training examples × 2 queries.
#            module 0 (q0, q1)   module 1 (q0, q1)
# i0:            3, -1              10,  0
# i1:            1,  2             -10,  0
# i2:           -2,  0               0,  0
# i3:            1,  5              20,  1
VALUES = np.array(
    [
        [[3.0, -1.0], [1.0, 2.0], [-2.0, 0.0], [1.0, 5.0]],
        [[10.0, 0.0], [-10.0, 0.0], [0.0, 0.0], [20.0, 1.0]],
    ]
)
# Ranks per column (ascending, 0 = most harmful, ties by lower index first):
#   (0, q0) = [3, 1, -2, 1]   -> order i2, i1, i3, i0        -> r = [3, 1, 0, 2]   (i1 before i3: tie)
#   (0, q1) = [-1, 2, 0, 5]   -> order i0, i2, i1, i3        -> r = [0, 2, 1, 3]
#   (1, q0) = [10, -10, 0, 20] -> order i1, i2, i0, i3       -> r = [2, 0, 1, 3]
#   (1, q1) = [0, 0, 0, 1]    -> order i0, i1, i2, i3 (ties) -> r = [0, 1, 2, 3]
ONLY_Q0 = np.array([True, False])


def test_mean_by_hand() -> None:
    # i0: (3 - 1 + 10 + 0) / 4 = 3;  i1: (1 + 2 - 10 + 0) / 4 = -1.75
    # i2: (-2 + 0 + 0 + 0) / 4 = -0.5;  i3: (1 + 5 + 20 + 1) / 4 = 6.75
    expected = [3.0, -1.75, -0.5, 6.75]
    np.testing.assert_allclose(aggregate(VALUES, "mean"), expected)
    # query_mask is ignored by "mean", even one that selects nothing.
    np.testing.assert_allclose(aggregate(VALUES, "mean", query_mask=ONLY_Q0), expected)
    np.testing.assert_allclose(aggregate(VALUES, "mean", query_mask=np.array([False, False])), expected)


def test_mean_c_by_hand() -> None:
    # q0 only: i0 (3 + 10) / 2 = 6.5; i1 (1 - 10) / 2 = -4.5; i2 (-2 + 0) / 2 = -1; i3 (1 + 20) / 2 = 10.5
    np.testing.assert_allclose(aggregate(VALUES, "mean_c", query_mask=ONLY_Q0), [6.5, -4.5, -1.0, 10.5])
    # Without a mask mean_c is the mean.
    np.testing.assert_allclose(aggregate(VALUES, "mean_c"), aggregate(VALUES, "mean"))


def test_rank_by_hand() -> None:
    # i0: (3 + 0 + 2 + 0) / 4 = 1.25; i1: (1 + 2 + 0 + 1) / 4 = 1; i2: (0 + 1 + 1 + 2) / 4 = 1; i3: 11 / 4
    np.testing.assert_allclose(aggregate(VALUES, "rank"), [1.25, 1.0, 1.0, 2.75])
    # q0 only, columns (0, q0) and (1, q0): i0 (3 + 2) / 2; i1 (1 + 0) / 2; i2 (0 + 1) / 2; i3 (2 + 3) / 2
    np.testing.assert_allclose(aggregate(VALUES, "rank", query_mask=ONLY_Q0), [2.5, 0.5, 0.5, 2.5])


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # points max(k - r, 0); k = 1: only rank 0 scores; i0 is first in (0,q1) and (1,q1).
        (1, [-2.0, -1.0, -1.0, 0.0]),
        # k = 2: r=0 -> 2, r=1 -> 1. i0: 0+2+0+2; i1: 1+0+2+1; i2: 2+1+1+0; i3: 0.
        (2, [-4.0, -4.0, -4.0, 0.0]),
        # k = 3: r=0 -> 3, 1 -> 2, 2 -> 1. i0: 0+3+1+3; i1: 2+1+3+2; i2: 3+2+2+1; i3: 1+0+0+0.
        (3, [-7.0, -8.0, -8.0, -1.0]),
        # k = n = 4: 4 - r everywhere; i0: 1+4+2+4 = 11; i1: 3+2+4+3 = 12; i2: 4+3+3+2 = 12; i3: 2+1+1+1 = 5.
        (4, [-11.0, -12.0, -12.0, -5.0]),
    ],
)
def test_vote_by_hand(k: int, expected: list[float]) -> None:
    np.testing.assert_array_equal(aggregate(VALUES, "vote", k=k), expected)


def test_vote_default_k_and_mask() -> None:
    # default k = round(0.2 · 4) = round(0.8) = 1
    np.testing.assert_array_equal(aggregate(VALUES, "vote"), aggregate(VALUES, "vote", k=1))
    # q0 only, k = 2: r(0,q0) = [3, 1, 0, 2], r(1,q0) = [2, 0, 1, 3] -> i1: 1 + 2, i2: 2 + 1
    np.testing.assert_array_equal(aggregate(VALUES, "vote", k=2, query_mask=ONLY_Q0), [0.0, -3.0, -3.0, 0.0])
    assert agg.default_k(4500) == 900
    assert agg.default_k(2) == 1  # round(0.4) = 0 -> at least 1


def test_output_dtype_and_no_negative_zero() -> None:
    out = aggregate(VALUES.astype(np.float32), "vote", k=1)
    assert out.dtype == np.float64 and out.shape == (4,)
    assert not np.signbit(out[3])  # +0.0, not -0.0
    for how in AGGREGATIONS:
        assert aggregate(VALUES.astype(np.float32), how).dtype == np.float64


def test_aggregate_many_and_sweep_match_single_calls() -> None:
    many = aggregate_many(VALUES, AGGREGATIONS, k=3, query_mask=ONLY_Q0)
    assert list(many) == list(AGGREGATIONS)
    for how in AGGREGATIONS:
        np.testing.assert_array_equal(many[how], aggregate(VALUES, how, k=3, query_mask=ONLY_Q0))
    # fracs 0.25, 0.5, 1.0 of n = 4 -> k = 1, 2, 4
    sweep = vote_k_sweep(VALUES, [0.25, 0.5, 1.0])
    assert sweep.shape == (3, 4)
    for row, k in zip(sweep, (1, 2, 4), strict=True):
        np.testing.assert_array_equal(row, aggregate(VALUES, "vote", k=k))


def _reference(values: np.ndarray, qidx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank and Vote by a plain loop over the columns (the definition)."""
    n = values.shape[1]
    ranks = []
    for layer in range(values.shape[0]):
        for j in qidx:
            order = np.argsort(values[layer, :, j], kind="stable")
            r = np.empty(n, dtype=np.int64)
            r[order] = np.arange(n)
            ranks.append(r)
    r_all = np.array(ranks)
    return r_all.mean(axis=0), -np.maximum(k - r_all, 0).sum(axis=0).astype(np.float64)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("chunk_bytes", [8, 8 * 30 * 3, 2**20])
def test_chunked_threaded_equals_definition(threads: int, chunk_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agg, "_PARALLEL_MIN_ELEMENTS", 0)  # use the thread pool even on tiny input
    rng = np.random.default_rng(3)
    values = rng.integers(-3, 4, size=(5, 30, 7)).astype(np.float64)  # many ties
    values[2] = rng.standard_normal((30, 7))  # and a module without ties
    qidx = np.array([0, 2, 3, 6])
    k = 7
    rank_sum, vote_sum, n_columns = agg._rank_statistics(
        values, qidx, [k, 1], need_rank=True, chunk_bytes=chunk_bytes, n_threads=threads
    )
    ref_rank, ref_vote = _reference(values, qidx, k)
    assert n_columns == 20
    assert rank_sum is not None
    np.testing.assert_allclose(rank_sum / n_columns, ref_rank)
    np.testing.assert_array_equal(-vote_sum[0], ref_vote)
    np.testing.assert_array_equal(-vote_sum[1], _reference(values, qidx, 1)[1])


def test_negative_zero_ties_with_zero() -> None:
    # -0.0 == 0.0: a tie, broken by index (i0 first).
    values = np.array([[[0.0], [-0.0], [1.0]]])
    np.testing.assert_array_equal(aggregate(values, "rank"), [0.0, 1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": np.zeros((0, 4, 2)), "how": "mean"}, "values has 0 modules"),
        ({"values": np.zeros((4, 2)), "how": "mean"}, "values must be a 3-d"),
        ({"values": VALUES, "how": "median"}, "choose one of: mean, mean_c, rank, vote"),
        ({"values": VALUES, "how": "vote", "k": 0}, r"k=0 .*1\.\.n = 1\.\.4"),
        ({"values": VALUES, "how": "vote", "k": 5}, r"k=5 .*1\.\.n = 1\.\.4"),
        ({"values": VALUES, "how": "vote", "k": 2.0}, "k=2.0 must be an integer"),
        ({"values": VALUES, "how": "rank", "query_mask": np.array([False, False])}, "selects no query"),
        ({"values": VALUES, "how": "vote", "query_mask": np.array([False, False])}, "selects no query"),
        ({"values": VALUES, "how": "mean_c", "query_mask": np.array([False, False])}, "selects no query"),
        ({"values": VALUES, "how": "rank", "query_mask": np.array([True])}, "query_mask has shape"),
        ({"values": VALUES, "how": "rank", "query_mask": np.array([1, 0])}, "boolean"),
    ],
)
def test_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        aggregate(**kwargs)


def test_non_finite_rejected_with_count() -> None:
    bad = VALUES.copy()
    bad[0, 1, 1] = np.nan
    bad[1, 3, 0] = -np.inf
    for how in AGGREGATIONS:
        with pytest.raises(ConfigError, match="2 non-finite entries"):
            aggregate(bad, how)


def test_sweep_errors() -> None:
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        vote_k_sweep(VALUES, [0.0, 0.5])
    with pytest.raises(ConfigError, match="empty"):
        vote_k_sweep(VALUES, [])
    with pytest.raises(ConfigError, match="empty"):
        aggregate_many(VALUES, [])


@pytest.mark.slow
def test_rank_and_vote_speed_at_paper_scale() -> None:
    """Rank + Vote of [24, 4500, 500] (roberta-large LoRA modules × paper n × m)."""
    values = np.random.default_rng(0).standard_normal((24, 4500, 500))
    start = time.perf_counter()
    out = aggregate_many(values, ["rank", "vote"])
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"rank + vote took {elapsed:.1f} s"
    assert out["rank"].mean() == pytest.approx((4500 - 1) / 2)
    k = 900
    assert out["vote"].sum() == -(24 * 500) * k * (k + 1) / 2


def test_class_makeup_by_hand() -> None:
    from layerinf.retrain import class_makeup

    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    # removing every 0 wipes out class 0; the removed set is all one class
    out = class_makeup(labels, np.array([0, 1, 2, 3]), 2)
    assert out == {"removed_top_class_share": 1.0, "kept_min_class_share": 0.0}
    out = class_makeup(labels, np.array([0, 4, 5]), 2)  # one of four 0s, two of six 1s
    assert out["removed_top_class_share"] == pytest.approx(2 / 3)
    assert out["kept_min_class_share"] == pytest.approx(min(3 / 4, 4 / 6))
    empty = class_makeup(labels, np.array([], dtype=int), 2)
    assert np.isnan(empty["removed_top_class_share"]) and empty["kept_min_class_share"] == 1.0
