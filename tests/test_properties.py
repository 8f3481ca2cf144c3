"""Property tests (hypothesis) of aggregation and metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from layerinf.aggregation import AGGREGATIONS, aggregate, aggregate_many
from layerinf.config import ConfigError
from layerinf.metrics import auc_ndr, ndr_curve, roc_auc

SETTINGS = settings(max_examples=50, deadline=None)

shapes = st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(1, 5))
# Integer-valued floats: affine maps with positive slope and exp keep the order *and* the ties
# exactly, so rank and vote must not change at all.
int_values = shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=st.integers(-30, 30).map(float)))
distinct_values = shapes.flatmap(
    lambda s: hnp.arrays(
        np.float64, s, elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), unique=True
    )
)


def _mask(m: int, data: st.DataObject) -> np.ndarray:
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)))
    mask[data.draw(st.integers(0, m - 1))] = True  # at least one query
    return mask


@SETTINGS
@given(values=distinct_values, data=st.data())
def test_permutation_equivariance(values: np.ndarray, data: st.DataObject) -> None:
    n, m = values.shape[1], values.shape[2]
    perm = np.array(data.draw(st.permutations(range(n))))
    mask = _mask(m, data)
    k = data.draw(st.integers(1, n))
    base = aggregate_many(values, AGGREGATIONS, k=k, query_mask=mask)
    permuted = aggregate_many(values[:, perm], AGGREGATIONS, k=k, query_mask=mask)
    for how in AGGREGATIONS:
        np.testing.assert_allclose(permuted[how], base[how][perm], rtol=1e-12, atol=1e-9)


@SETTINGS
@given(values=int_values, data=st.data())
def test_mean_permutation_equivariance_with_ties(values: np.ndarray, data: st.DataObject) -> None:
    perm = np.array(data.draw(st.permutations(range(values.shape[1]))))
    for how in ("mean", "mean_c"):
        np.testing.assert_allclose(aggregate(values[:, perm], how), aggregate(values, how)[perm])


@SETTINGS
@given(values=int_values, data=st.data())
def test_rank_vote_invariant_to_monotone_rescaling(values: np.ndarray, data: st.DataObject) -> None:
    n_modules, n, m = values.shape
    slopes = np.array(data.draw(st.lists(st.floats(0.01, 100.0), min_size=n_modules, max_size=n_modules)))
    shifts = np.array(data.draw(st.lists(st.floats(-100.0, 100.0), min_size=n_modules, max_size=n_modules)))
    mask = _mask(m, data)
    k = data.draw(st.integers(1, n))
    base = aggregate_many(values, ("rank", "vote"), k=k, query_mask=mask)
    for transformed in (slopes[:, None, None] * values + shifts[:, None, None], np.exp(values)):
        out = aggregate_many(transformed, ("rank", "vote"), k=k, query_mask=mask)
        np.testing.assert_array_equal(out["rank"], base["rank"])
        np.testing.assert_array_equal(out["vote"], base["vote"])


@SETTINGS
@given(values=int_values, data=st.data())
def test_rank_vote_totals(values: np.ndarray, data: st.DataObject) -> None:
    n_modules, n, m = values.shape
    k = data.draw(st.integers(1, n))
    out = aggregate_many(values, ("rank", "vote"), k=k)
    # Each column hands out ranks 0..n−1 and k + (k−1) + … + 1 vote points.
    assert out["rank"].sum() == pytest.approx(n * (n - 1) / 2)
    assert out["vote"].sum() == -(n_modules * m) * k * (k + 1) / 2
    assert (out["rank"] >= 0).all() and (out["rank"] <= n - 1).all()


@SETTINGS
@given(values=int_values, data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_aggregate_rejects_non_finite(values: np.ndarray, data: st.DataObject, bad: float) -> None:
    index = tuple(data.draw(st.integers(0, size - 1)) for size in values.shape)
    values[index] = bad
    with pytest.raises(ConfigError, match="1 non-finite"):
        aggregate(values, data.draw(st.sampled_from(AGGREGATIONS)))


scores_and_noise = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=st.integers(-5, 5).map(float)),  # many ties
        hnp.arrays(np.bool_, n).filter(lambda y: y.any() and not y.all()),
    )
)


@SETTINGS
@given(pair=scores_and_noise)
def test_ndr_curve_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    scores, noisy = pair
    curve = ndr_curve(scores, noisy)
    assert curve.shape == scores.shape
    assert (np.diff(curve) >= 0).all()
    assert (curve >= 0).all() and (curve <= 1).all()
    assert curve[-1] == 1.0
    assert 0 < auc_ndr(scores, noisy) <= 1 + 1e-12


@SETTINGS
@given(pair=scores_and_noise)
def test_auc_ndr_perfect_ranking_is_one(pair: tuple[np.ndarray, np.ndarray]) -> None:
    _, noisy = pair
    perfect = np.where(noisy, -1.0, 1.0)  # every noisy example below every clean one
    assert auc_ndr(perfect, noisy) == pytest.approx(1.0)
    assert roc_auc(perfect, noisy) == 1.0


@SETTINGS
@given(n=st.integers(2, 60), data=st.data())
def test_auc_ndr_roc_identity_for_distinct_scores(n: int, data: st.DataObject) -> None:
    # The area under the NDR curve is n_noisy/2 + (n − n_noisy)·ROC-AUC (no ties).
    scores = np.array(data.draw(st.permutations(range(n))), dtype=np.float64)
    noisy = data.draw(hnp.arrays(np.bool_, n).filter(lambda y: y.any() and not y.all()))
    k = int(noisy.sum())
    expected = (k / 2 + (n - k) * roc_auc(scores, noisy)) / (n - k / 2)
    assert auc_ndr(scores, noisy) == pytest.approx(expected)


@SETTINGS
@given(pair=scores_and_noise, data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_metrics_reject_non_finite(pair: tuple[np.ndarray, np.ndarray], data: st.DataObject, bad: float) -> None:
    scores, noisy = pair
    scores[data.draw(st.integers(0, scores.size - 1))] = bad
    for func in (ndr_curve, auc_ndr, roc_auc):
        with pytest.raises(ConfigError, match="non-finite"):
            func(scores, noisy)
