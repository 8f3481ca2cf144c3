"""Invariants of the influence methods (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from layerinf import influence
from layerinf.gradients import Gradients, SparseRows
from layerinf.scores import ModuleInfo

rng = np.random.default_rng(0)


def random_sparse(n: int, vocab: int, d: int, max_tokens: int) -> tuple[SparseRows, np.ndarray]:
    offsets, tokens, rows, counts = [0], [], [], []
    for _ in range(n):
        toks = np.sort(rng.choice(vocab, size=rng.integers(1, max_tokens), replace=False))
        tokens.append(toks)
        rows.append(rng.normal(size=(len(toks), d)))
        counts.append(rng.integers(1, 4, size=len(toks)))
        offsets.append(offsets[-1] + len(toks))
    return SparseRows(np.array(offsets), np.concatenate(tokens), np.concatenate(rows), vocab), np.concatenate(counts)


def make_grads(n: int, vocab: int = 30, d: int = 5) -> Gradients:
    infos = (
        ModuleInfo("layer0.query.lora_A", 0, "query_A", 6),
        ModuleInfo("layer0.value.lora_B", 0, "value_B", 4),
        ModuleInfo("we", None, "we", vocab * d),
        ModuleInfo("cl.classifier.weight", None, "cl", 3),
    )
    dense = {i.name: rng.normal(size=(n, i.n_params)) for i in infos if i.kind != "we"}
    we, counts = random_sparse(n, vocab, d, 8)
    return Gradients(dense, we, counts, infos, 1, np.zeros(n), np.zeros((n, 2)), np.zeros(n, dtype=int))


def dense_we(g: Gradients) -> np.ndarray:
    return np.stack([g.we.dense(b).ravel() for b in range(len(g))])


def test_tracin_sums_over_modules_to_whole_model():
    train, query = make_grads(9), make_grads(4)
    scores = influence.compute_scores(train, query, "tracin", out_dtype=np.float64, progress=False)
    whole_t = np.concatenate([train.dense[i.name] if i.kind != "we" else dense_we(train) for i in train.infos], axis=1)
    whole_q = np.concatenate([query.dense[i.name] if i.kind != "we" else dense_we(query) for i in query.infos], axis=1)
    np.testing.assert_allclose(scores.total(), whole_t @ whole_q.T, rtol=1e-12)


@pytest.mark.parametrize("method", ["tracin", "cosine", "datainf"])
def test_sparse_we_equals_dense_embedding_matrix(method):
    train, query = make_grads(7), make_grads(3)
    scores = influence.compute_scores(train, query, method, out_dtype=np.float64, progress=False)
    dense = influence.pairwise(dense_we(train), dense_we(query), method)
    np.testing.assert_allclose(scores.group("we").values[0], dense, rtol=1e-10, atol=1e-12)


def test_tracin_we_is_shared_token_sum():
    train, query = make_grads(5), make_grads(4)
    got = influence.compute_scores(train, query, "tracin_we", out_dtype=np.float64, progress=False)
    assert got.names == ["we"]
    for i in range(5):
        for j in range(4):
            ti = dict(
                zip(
                    train.we.tokens[train.we.offsets[i] : train.we.offsets[i + 1]],
                    train.we.rows[train.we.offsets[i] : train.we.offsets[i + 1]],
                    strict=True,
                )
            )
            qj = dict(
                zip(
                    query.we.tokens[query.we.offsets[j] : query.we.offsets[j + 1]],
                    query.we.rows[query.we.offsets[j] : query.we.offsets[j + 1]],
                    strict=True,
                )
            )
            expected = sum(ti[t] @ qj[t] for t in set(ti) & set(qj))
            assert got.values[0, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_top_k_keeps_largest_rows_per_occurrence():
    train, query = make_grads(6), make_grads(3)
    top = train.we.top_k(2, train.token_counts)
    for b in range(6):
        lo, hi = train.we.offsets[b], train.we.offsets[b + 1]
        score = np.linalg.norm(train.we.rows[lo:hi], axis=1) / train.token_counts[lo:hi]
        expected = set(train.we.tokens[lo:hi][np.argsort(-score, kind="stable")[:2]])
        assert set(top.tokens[top.offsets[b] : top.offsets[b + 1]]) == expected
    got = influence.compute_scores(train, query, "tracin_we_top10", out_dtype=np.float64, progress=False)
    assert got.values.shape == (1, 6, 3)


def test_cosine_is_scale_invariant():
    t, q = rng.normal(size=(6, 10)), rng.normal(size=(3, 10))
    base = influence.pairwise(t, q, "cosine")
    scaled = influence.pairwise(t * rng.uniform(0.1, 10, size=(6, 1)), q * 7.0, "cosine")
    np.testing.assert_allclose(base, scaled, rtol=1e-12)
    assert np.all(np.abs(base) <= 1 + 1e-12)


def test_datainf_formula_by_hand():
    t = np.array([[1.0, 0.0], [0.0, 2.0]])
    q = np.array([[1.0, 1.0]])
    lam = 0.1 * (1 + 4) / (2 * 2)  # 0.1 × mean squared entry
    # I(i) = <q,g_i>/λ − 1/(2λ) Σ_k <q,g_k><g_k,g_i>/(λ+|g_k|²); the g's are orthogonal so only k=i remains
    expected = [1 / lam - (1 * 1) / (lam + 1) / (2 * lam), 2 / lam - (2 * 4) / (lam + 4) / (2 * lam)]
    np.testing.assert_allclose(influence.pairwise(t, q, "datainf")[:, 0], expected, rtol=1e-12)


def test_bad_method_is_named():
    with pytest.raises(ValueError, match="method='tracn'"):
        influence.pairwise(np.ones((2, 2)), np.ones((1, 2)), "tracn")


@pytest.mark.parametrize("method", ["tracin", "cosine", "datainf"])
def test_float32_gradients_are_multiplied_in_float64_slabs(method, monkeypatch):
    # Small slabs: the column-slab conversion path (with a ragged last slab) equals one float64 product.
    monkeypatch.setattr(influence, "CONVERT_BLOCK_BYTES", 8 * 7 * 300)
    t = rng.normal(size=(7, 1000)).astype(np.float32)
    q = rng.normal(size=(3, 1000)).astype(np.float32)
    expected = influence.pairwise(t.astype(np.float64), q.astype(np.float64), method)
    np.testing.assert_allclose(influence.pairwise(t, q, method), expected, rtol=1e-12, atol=1e-12)
