"""Invariants of the teaching model: exact optimum, exact leave-one-out, and the approximations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from layerinf import metrics
from layerinf import teaching as T
from layerinf.config import ConfigError

L2 = 0.1


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y, Xq, yq, noisy = T.synthetic_problem(n=200, m=30, d=5, noise_rate=0.0, seed=0)
    return X, y, Xq, yq, noisy, T.fit_logreg(X, y, L2)


def test_newton_reaches_the_optimum(problem) -> None:
    X, y, _, _, _, w = problem
    assert np.linalg.norm(T.gradient(X, y, w, L2)) <= 1e-12
    # Optimality: l2·w equals minus the mean per-example gradient.
    np.testing.assert_allclose(L2 * w, -T.grads(X, y, w).mean(axis=0), atol=1e-12)
    # Any perturbation increases the (strictly convex) objective.
    rng = np.random.default_rng(1)
    f = T.objective(X, y, w, L2)
    for _ in range(5):
        assert T.objective(X, y, w + 1e-3 * rng.normal(size=w.shape), L2) > f


def test_gradients_and_hessian_match_finite_differences(problem) -> None:
    X, y, _, _, _, w = problem
    rng = np.random.default_rng(2)
    w1 = w + 0.3 * rng.normal(size=w.shape)
    eps = 1e-6
    e = np.eye(w.size)
    num_grad = np.array(
        [(T.objective(X, y, w1 + eps * k, L2) - T.objective(X, y, w1 - eps * k, L2)) / (2 * eps) for k in e]
    )
    np.testing.assert_allclose(T.gradient(X, y, w1, L2), num_grad, atol=1e-8)
    num_hess = np.array(
        [(T.gradient(X, y, w1 + eps * k, L2) - T.gradient(X, y, w1 - eps * k, L2)) / (2 * eps) for k in e]
    )
    np.testing.assert_allclose(T.hessian(X, w1, L2), num_hess, atol=1e-7)
    np.testing.assert_allclose(T.grads(X, y, w1).mean(axis=0) + L2 * w1, T.gradient(X, y, w1, L2), atol=1e-14)


@pytest.mark.parametrize("renormalise", [False, True])
def test_loo_matches_an_independent_refit(problem, renormalise: bool) -> None:
    X, y, Xq, yq, _, w = problem
    n = X.shape[0]
    idx = [0, 17, 123]
    loo = T.loo_influence(X, y, Xq, yq, L2, w=w, indices=idx, renormalise=renormalise)
    for row, i in enumerate(idx):
        keep = np.arange(n) != i
        if renormalise:
            # Retrain from scratch on the n − 1 others, mean loss, same l2.
            w_i = T.fit_logreg(X[keep], y[keep], L2)
        else:
            # Retrain from scratch with example i's weight set to zero and the others kept at 1/n:
            # written out as a separate Newton solve on the weighted objective.
            w_i = _weighted_newton(X, y, keep.astype(float) / n, L2)
        np.testing.assert_allclose(loo[row], T.losses(Xq, yq, w_i) - T.losses(Xq, yq, w), rtol=1e-8, atol=1e-13)


def test_loo_fallback_to_full_newton_agrees(problem) -> None:
    X, y, Xq, yq, _, w = problem
    for renormalise in (False, True):
        chord = T.loo_influence(X, y, Xq, yq, L2, w=w, indices=[3, 4], renormalise=renormalise)
        full = T.loo_influence(X, y, Xq, yq, L2, w=w, indices=[3, 4], renormalise=renormalise, max_chord=0)
        np.testing.assert_allclose(chord, full, rtol=1e-8, atol=1e-13)


def _weighted_newton(X: np.ndarray, y: np.ndarray, a: np.ndarray, l2: float) -> np.ndarray:
    """Minimise Σ_k a_k ℓ_k + (l2/2)‖w‖² from w = 0 (independent of `fit_logreg`)."""
    w = np.zeros(X.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(X @ w)))
        g = X.T @ (a * (p - y)) + l2 * w
        if np.linalg.norm(g) < 1e-13:
            break
        h = (X * (a * p * (1 - p))[:, None]).T @ X + l2 * np.eye(X.shape[1])
        w = w - np.linalg.solve(h, g)
    return w


def test_influence_function_approximates_loo(problem) -> None:
    X, y, Xq, yq, _, w = problem
    loo = T.loo_influence(X, y, Xq, yq, L2, w=w)
    est = T.influence_function(X, y, Xq, yq, L2, w=w)
    assert est.shape == loo.shape == (X.shape[0], Xq.shape[0])
    assert T.spearman(est, loo) > 0.99
    assert T.spearman(T.per_example(est), T.per_example(loo)) > 0.99
    assert T.relative_error(est, loo) < 0.05
    # The renormalised pair agrees as well, and differs from the default by a per-query shift only.
    loo_r = T.loo_influence(X, y, Xq, yq, L2, w=w, renormalise=True)
    est_r = T.influence_function(X, y, Xq, yq, L2, w=w, renormalise=True)
    assert T.relative_error(est_r, loo_r) < 0.05
    shift = est_r - est * X.shape[0] / (X.shape[0] - 1)
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-14)


def test_closed_forms(problem) -> None:
    X, y, Xq, yq, _, w = problem
    g, v = T.grads(X, y, w), T.grads(Xq, yq, w)
    np.testing.assert_allclose(T.tracin(g, v), g @ v.T)
    cos = T.cosine(g, v)
    assert np.all(np.abs(cos) <= 1 + 1e-12)
    np.testing.assert_allclose(cos[3, 4], g[3] @ v[4] / np.linalg.norm(g[3]) / np.linalg.norm(v[4]))
    h = T.hessian(X, w, L2)
    np.testing.assert_allclose(T.influence_function(X, y, Xq, yq, L2, w=w), g @ np.linalg.inv(h) @ v.T / len(y))


def test_datainf_on_a_hand_case() -> None:
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    v = np.array([[1.0, 1.0]])
    # lambda = 1: I_1 = 1 − ½·(1·1/2 + 2·0/5) = 0.75;  I_2 = 2 − ½·(1·0/2 + 2·4/5) = 1.2
    np.testing.assert_allclose(T.datainf(g, v, lam=1.0), [[0.75], [1.2]])
    # default lambda: 0.1 × mean of squared entries (1 + 0 + 0 + 4) / 4
    assert T.datainf_lambda(g) == pytest.approx(0.125)
    lam = 0.125
    np.testing.assert_allclose(T.datainf(g, v), T.datainf(g, v, lam=lam))


def test_datainf_is_the_averaged_rank_one_inverse() -> None:
    rng = np.random.default_rng(3)
    g, v = rng.normal(size=(7, 4)), rng.normal(size=(3, 4))
    lam = 0.3
    inv = np.mean([np.linalg.inv(np.outer(gk, gk) + lam * np.eye(4)) for gk in g], axis=0)
    np.testing.assert_allclose(T.datainf(g, v, lam=lam), g @ inv @ v.T, rtol=1e-10)
    # With one training example the average of inverses is the inverse of the average.
    np.testing.assert_allclose(T.datainf(g[:1], v, lam=lam), T.fisher_influence(g[:1], v, lam), rtol=1e-10)
    fisher = np.linalg.inv(g.T @ g / 7 + lam * np.eye(4))
    np.testing.assert_allclose(T.fisher_influence(g, v, lam), g @ fisher @ v.T, rtol=1e-10)
    # Huge damping: DataInf -> TracIn / lambda.
    np.testing.assert_allclose(T.datainf(g, v, lam=1e8) * 1e8, T.tracin(g, v), rtol=1e-6)


def test_sign_convention_noisy_examples_score_low() -> None:
    X, y, Xq, yq, noisy = T.synthetic_problem(n=300, m=40, d=5, noise_rate=0.2, seed=1)
    scores = T.score_all(X, y, Xq, yq, L2)
    assert set(scores) == {"loo", *T.TEACHING_METHODS}
    for name, s in scores.items():
        per = T.per_example(s)
        assert per[noisy].mean() < per[~noisy].mean(), name
        assert metrics.ndr_at(per, noisy, 0.3) > 0.5, name
    # Removing the lowest-LOO (most harmful) example lowers the mean query loss.
    worst = int(np.argmin(T.per_example(scores["loo"])))
    assert T.per_example(scores["loo"])[worst] < 0


def test_flipping_a_label_makes_the_example_harmful(problem) -> None:
    X, y, Xq, yq, _, w = problem
    loo = T.per_example(T.loo_influence(X, y, Xq, yq, L2, w=w))
    best = int(np.argmax(loo))
    y2 = T.flip_labels(y, [best])
    assert y2[best] == 1 - y[best] and np.sum(y2 != y) == 1
    after = T.per_example(T.loo_influence(X, y2, Xq, yq, L2, indices=[best]))[0]
    assert loo[best] > 0 > after


def test_percentile_ranks_and_l2_sweep(problem) -> None:
    np.testing.assert_allclose(T.percentile_ranks(np.array([3.0, -1.0, 3.0, 0.0])), [0.875, 0.25, 0.875, 0.5])
    X, y, Xq, yq, _, _ = problem
    points = T.l2_sweep(X, y, Xq, yq, Xq, yq, [0.01, 1.0], indices=np.arange(0, 200, 10))
    assert [p.l2 for p in points] == [0.01, 1.0]
    # More curvature: the first-order estimate gets closer to exact leave-one-out.
    assert points[1].rel_error < points[0].rel_error
    assert all(p.spearman > 0.9 and 0 <= p.eval_accuracy <= 1 for p in points)


def test_text_problem_featurises_the_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    import layerinf.data

    words = ["good", "great", "bad", "awful", "film", "plot", "actors", "boring", "fun", "story"]
    rng = np.random.default_rng(5)

    def split(k: int) -> SimpleNamespace:
        return SimpleNamespace(texts=[" ".join(rng.choice(words, size=5)) for _ in range(k)], labels=np.arange(k) % 2)

    def fake_make_splits(task, n_train, n_query, n_eval, seed, noise_rate):
        noisy = np.zeros(n_train, dtype=bool)
        noisy[:2] = True
        train = split(n_train)
        return SimpleNamespace(
            num_classes=2,
            train=train,
            query=split(n_query),
            eval=split(n_eval),
            clean_train_labels=np.where(noisy, 1 - train.labels, train.labels),
            noisy_mask=noisy,
        )

    monkeypatch.setattr(layerinf.data, "make_splits", fake_make_splits)
    prob = T.text_problem("rt", 30, 8, 6, 0, 0.1, n_features=4)
    assert prob.X.shape == (30, 4) and prob.Xq.shape == (8, 4) and prob.Xe.shape == (6, 4)
    assert prob.noisy_mask.sum() == 2 and np.all((prob.clean_labels != prob.y) == prob.noisy_mask)
    assert prob.y.dtype == np.float64 and len(prob.train_texts) == 30


def test_noisy_gradients_oppose_clean_ones() -> None:
    X, y, _, _, noisy = T.synthetic_problem(n=300, m=5, d=5, noise_rate=0.2, seed=4)
    w = T.fit_logreg(X, y, L2)
    clean = T.flip_labels(y, np.flatnonzero(noisy))
    al = T.gradient_alignment(X, y, w, clean, noisy)
    assert al.mean_cos(noisy=True) < 0 < al.mean_cos(noisy=False)
    feat_only = T.gradient_alignment(X, y, w, clean, noisy, exclude_intercept=True)
    assert feat_only.mean_cos(noisy=True) < 0 < feat_only.mean_cos(noisy=False)
    # Residual sign is set by the given label.
    assert np.all(al.residual[y == 1] < 0) and np.all(al.residual[y == 0] > 0)


def test_featuriser_is_deterministic_and_shaped() -> None:
    words = ["good", "great", "bad", "awful", "film", "plot", "actors", "boring", "fun", "story"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=6)) for _ in range(40)]
    f1 = T.fit_featuriser(texts, n_features=5)
    f2 = T.fit_featuriser(list(texts), n_features=5)
    Z = f1.transform(texts)
    assert Z.shape == (40, 5) and f1.n_features == 5
    np.testing.assert_array_equal(Z, f2.transform(texts))
    np.testing.assert_allclose(Z[:, -1], 1.0)
    np.testing.assert_allclose(Z[:, :-1].mean(axis=0), 0.0, atol=1e-12)
    assert f1.transform(["unknown words only"]).shape == (1, 5)
    with pytest.raises(ConfigError, match="n_features"):
        T.fit_featuriser(texts, n_features=50)


def test_bad_values_are_refused(problem) -> None:
    X, y, Xq, yq, _, _ = problem
    with pytest.raises(ConfigError, match="l2"):
        T.fit_logreg(X, y, 0.0)
    with pytest.raises(ConfigError, match="0 or 1"):
        T.fit_logreg(X, y * 2, L2)
    with pytest.raises(ConfigError, match="indices"):
        T.loo_influence(X, y, Xq, yq, L2, indices=[len(y)])
    with pytest.raises(ConfigError, match="share d"):
        T.tracin(np.ones((3, 2)), np.ones((2, 3)))


def test_similarity_methods_are_the_pipelines_own() -> None:
    from layerinf import influence

    rng = np.random.default_rng(6)
    g, v = rng.normal(size=(9, 4)), rng.normal(size=(3, 4))
    for name in ("tracin", "cosine"):
        np.testing.assert_array_equal(getattr(T, name)(g, v), influence.pairwise(g, v, name))
    np.testing.assert_allclose(T.datainf(g, v, lam_scale=0.3), influence.pairwise(g, v, "datainf", datainf_lambda=0.3))


def test_import_stays_free_of_torch() -> None:
    import subprocess
    import sys

    code = "import sys, layerinf.teaching; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
