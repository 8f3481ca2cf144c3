"""diag_fisher: TracIn preconditioned by the damped diagonal empirical Fisher, against plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from layerinf import config, influence, methods
from layerinf.gradients import Gradients, SparseRows
from layerinf.methods import diag_fisher
from layerinf.scores import ModuleInfo

rng = np.random.default_rng(11)


def direct(train: np.ndarray, query: np.ndarray, damping: float) -> np.ndarray:
    """<g_i, v_j / (F + λ)> with F = mean_i g_i² and λ = damping × mean(F), written out."""
    fisher = (train**2).mean(axis=0)
    lam = damping * fisher.mean()
    return np.array([[np.sum(g * v / (fisher + lam)) for v in query] for g in train])


@pytest.mark.parametrize("damping", [0.1, 2.0])
def test_dense_equals_the_definition(damping: float) -> None:
    t, q = rng.normal(size=(8, 13)), rng.normal(size=(3, 13))
    t[:, 4] *= 50  # one parameter with large gradients everywhere: preconditioning matters
    got = influence.pairwise(t, q, "diag_fisher", datainf_lambda=damping)
    np.testing.assert_allclose(got, direct(t, q, damping), rtol=1e-12)
    # Not TracIn: the dominant parameter is damped away.
    assert not np.allclose(got, t @ q.T)


def test_float32_slabs_equal_one_float64_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diag_fisher, "SLAB_BYTES", 8 * 6 * 300)  # slabs of 300 columns, a ragged last one
    t = rng.normal(size=(6, 1000)).astype(np.float32)
    q = rng.normal(size=(4, 1000)).astype(np.float32)
    expected = direct(t.astype(np.float64), q.astype(np.float64), 0.1)
    np.testing.assert_allclose(influence.pairwise(t, q, "diag_fisher"), expected, rtol=1e-10)


def test_zero_gradients_have_no_influence() -> None:
    assert not influence.pairwise(np.zeros((3, 4)), np.ones((2, 4)), "diag_fisher").any()


def test_non_finite_gradients_are_refused() -> None:
    t = np.ones((3, 4))
    t[0, 1] = np.nan
    with pytest.raises(config.ConfigError, match="train_grads has 1 non-finite"):
        influence.pairwise(t, np.ones((2, 4)), "diag_fisher")


def _sparse(n: int, vocab: int, d: int) -> tuple[SparseRows, np.ndarray]:
    offsets, tokens, rows = [0], [], []
    for _ in range(n):
        toks = np.sort(rng.choice(vocab, size=rng.integers(1, 6), replace=False))
        tokens.append(toks)
        rows.append(rng.normal(size=(len(toks), d)))
        offsets.append(offsets[-1] + len(toks))
    we = SparseRows(np.array(offsets), np.concatenate(tokens), np.concatenate(rows), vocab)
    return we, np.ones(len(we.tokens), dtype=np.int64)


def _grads(n: int, vocab: int = 12, d: int = 3) -> Gradients:
    infos = (ModuleInfo("layer0.query.lora_A", 0, "query_A", 5), ModuleInfo("we", None, "we", vocab * d))
    we, counts = _sparse(n, vocab, d)
    dense = {"layer0.query.lora_A": rng.normal(size=(n, 5))}
    return Gradients(dense, we, counts, infos, 1, np.zeros(n), np.zeros((n, 2)), np.zeros(n, dtype=int))


def test_available_by_name_through_compute_scores_and_exact_on_the_word_embedding() -> None:
    train, query = _grads(9), _grads(4)  # the query has tokens no training example has
    scores = influence.compute_scores(train, query, "diag_fisher", out_dtype=np.float64, progress=False)
    assert scores.method == "diag_fisher" and scores.names == ["layer0.query.lora_A", "we"]
    name = "layer0.query.lora_A"
    np.testing.assert_allclose(scores.values[0], direct(train.dense[name], query.dense[name], 0.1), rtol=1e-12)
    dense_t = np.stack([train.we.dense(b).ravel() for b in range(len(train))])
    dense_q = np.stack([query.we.dense(b).ravel() for b in range(len(query))])
    np.testing.assert_allclose(scores.values[1], direct(dense_t, dense_q, 0.1), rtol=1e-10, atol=1e-14)


def test_registered_but_in_no_default() -> None:
    spec = methods.get("diag_fisher")
    assert spec.from_gradients is not None and spec.scores_we and not spec.we_only and not spec.default
    assert config.METHOD_CHOICES[-1] == "diag_fisher" and "diag_fisher" not in config.METHODS
    assert "diag_fisher" not in config.RunConfig().methods  # the book's runs do not change
    assert "diag_fisher" in influence.dense_methods()
    config.check_setup_parts("diag_fisher", "we", "vote", ("tracin", "diag_fisher"))


def test_a_run_configuration_accepts_the_method_by_name() -> None:
    from layerinf import config

    assert config.RunConfig(methods=("diag_fisher",)).methods == ("diag_fisher",)
    assert "diag_fisher" not in config.METHODS  # registered, not in the default runs
