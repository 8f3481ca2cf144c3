"""Influence on a model small enough to retrain exactly: L2-regularised logistic regression.

The teaching chapter of the book compares TracIn, cosine, DataInf and the influence function with
the ground truth they all try to approximate: the exact change of the query loss when one training
example is removed and the model is retrained (leave-one-out, LOO). That ground truth is only
affordable for a small, strictly convex model, so this module provides one:

    L(w) = (1/n) Σ_i ℓ(x_i, y_i; w) + (l2/2) ‖w‖²,    ℓ(x, y; w) = log(1 + e^{xᵀw}) − y·xᵀw,

with labels y ∈ {0, 1} and features X of shape [n, d] (the last column is a constant 1, i.e. the
intercept, regularised like every other weight). For l2 > 0 the objective is strictly convex, so the
optimum is unique and Newton's method finds it to machine precision: LOO retraining is exact up to
a solver tolerance of 1e-12 on the gradient norm.

**Sign convention** (the project's, see CONTRIBUTING.md): every score is oriented so that
**larger = more beneficial; harmful = lowest; removal drops the lowest**. For LOO this means

    LOO(i, j) = ℓ_j(w_{-i}) − ℓ_j(w)         ("change in query loss when i is removed"):

removing a beneficial example raises the query loss (positive score), removing a harmful one
lowers it (negative score).

**What "removing i" means.** By default the remaining examples keep their weight 1/n, i.e. the
term of example i is dropped from the sum and nothing else changes. That is the same as retraining
on the other n − 1 examples with the mean loss and l2 scaled by n/(n − 1). With
``renormalise=True`` the model is instead retrained on the n − 1 others with the unchanged l2 (the
"retrain on what is left" reading); both agree to first order up to a shift that is the same for
every training example (see `influence_function`).

NumPy/SciPy only; everything is float64. Shapes: n training examples, m query examples,
d features.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
import scipy.special
import scipy.stats

from layerinf.config import ConfigError

#: Names of the score matrices `score_all` returns, in display order.
TEACHING_METHODS: tuple[str, ...] = ("influence_function", "tracin", "cosine", "datainf")

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


# ----------------------------------------------------------------------------------------------
# Features: TF-IDF of a restricted vocabulary, reduced by a truncated SVD (latent semantic analysis)
# ----------------------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters/digits, with an optional ``'s``-style suffix)."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Featuriser:
    """A fitted, deterministic text → [d] feature map (d = `n_features`).

    Steps: tokens → counts over `vocabulary` → sublinear TF-IDF (1 + log count) · idf, each row
    scaled to unit L2 norm → projection on the top `n_features − 1` right singular vectors of the
    training TF-IDF matrix → standardised with the training mean/std → a constant 1 appended as the
    last column (the intercept).

    vocabulary: [V] words; idf: [V]; components: [V, d−1]; mean, scale: [d−1].
    """

    vocabulary: tuple[str, ...]
    idf: np.ndarray
    components: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @property
    def n_features(self) -> int:
        """d: number of SVD components plus the intercept column."""
        return int(self.components.shape[1]) + 1

    def tfidf(self, texts: Sequence[str]) -> scipy.sparse.csr_matrix:
        """Row-normalised sublinear TF-IDF, sparse [len(texts), V]."""
        return _tfidf(texts, {w: k for k, w in enumerate(self.vocabulary)}, self.idf)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Features [len(texts), d], float64; last column is 1."""
        z = np.asarray(self.tfidf(texts) @ self.components)
        z = (z - self.mean) / self.scale
        return np.hstack([z, np.ones((z.shape[0], 1))])


def _tfidf(texts: Sequence[str], index: dict[str, int], idf: np.ndarray) -> scipy.sparse.csr_matrix:
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, text in enumerate(texts):
        counts = Counter(t for t in tokenize(text) if t in index)
        for word, c in sorted(counts.items()):
            rows.append(r)
            cols.append(index[word])
            vals.append((1.0 + np.log(c)) * float(idf[index[word]]))
    mat = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(index)), dtype=np.float64)
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1))).ravel()
    norms[norms == 0] = 1.0
    return scipy.sparse.csr_matrix(scipy.sparse.diags(1.0 / norms) @ mat)


def fit_featuriser(texts: Sequence[str], n_features: int, *, min_df: int = 2, max_vocab: int = 5000) -> Featuriser:
    """Fit the TF-IDF + SVD featuriser on training texts (labels are not used).

    Vocabulary: words in at least `min_df` training texts, the `max_vocab` most frequent (ties
    broken alphabetically). `n_features` = d counts the intercept, so the SVD keeps d − 1
    components. Deterministic: ARPACK is started from a fixed vector and each component's sign is
    fixed so that its largest-magnitude loading is positive.
    """
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 2:
        raise ConfigError(f"n_features={n_features!r} must be an integer >= 2 (components + intercept)")
    docs = [set(tokenize(t)) for t in texts]
    df = Counter(w for d in docs for w in d)
    kept = sorted((w for w, c in df.items() if c >= min_df), key=lambda w: (-df[w], w))[:max_vocab]
    vocabulary = tuple(sorted(kept))
    k = n_features - 1
    if k >= min(len(texts), len(vocabulary)):
        raise ConfigError(
            f"n_features={n_features} needs more than {k} training texts and vocabulary words; "
            f"got {len(texts)} texts and {len(vocabulary)} words (min_df={min_df})"
        )
    n_docs = len(texts)
    idf = np.array([np.log((1.0 + n_docs) / (1.0 + df[w])) + 1.0 for w in vocabulary])
    tf = _tfidf(texts, {w: i for i, w in enumerate(vocabulary)}, idf)
    v0 = np.ones(min(tf.shape)) / np.sqrt(min(tf.shape))
    _, s, vt = scipy.sparse.linalg.svds(tf, k=k, v0=v0, solver="arpack", tol=0.0)
    order = np.argsort(-s, kind="stable")
    comps = vt[order].T  # [V, k]
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
    comps = comps * np.where(signs == 0, 1.0, signs)
    z = np.asarray(tf @ comps)
    mean = z.mean(axis=0)
    scale = z.std(axis=0)
    scale[scale == 0] = 1.0
    return Featuriser(vocabulary=vocabulary, idf=idf, components=comps, mean=mean, scale=scale)


# ----------------------------------------------------------------------------------------------
# The model: losses, gradients, Hessian, Newton's method
# ----------------------------------------------------------------------------------------------


def _check_xy(X: np.ndarray, y: np.ndarray, name: str = "X") -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D array [examples, features]; got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ConfigError(f"labels for {name} must have shape ({X.shape[0]},); got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ConfigError(f"labels for {name} must be 0 or 1; got values {sorted(set(np.unique(y).tolist()))}")
    return X, y


def _check_l2(l2: float) -> float:
    if not np.isfinite(l2) or not l2 > 0:
        raise ConfigError(f"l2={l2!r} must be > 0 (strict convexity makes leave-one-out exact)")
    return float(l2)


def losses(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-example logistic loss [n] in nats: log(1 + e^{xᵀw}) − y·xᵀw (numerically stable)."""
    z = X @ w
    return np.logaddexp(0.0, z) - y * z


def objective(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> float:
    """Training objective: mean loss + (l2/2)‖w‖² (a float)."""
    return float(losses(X, y, w).mean() + 0.5 * l2 * (w @ w))


def residuals(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Output-side factor of the gradient, p − y [n], with p = σ(xᵀw).

    Its sign is fixed by the label (negative for y = 1, positive for y = 0): flipping a label flips
    the sign of the example's whole gradient.
    """
    return scipy.special.expit(X @ w) - y


def grads(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-example loss gradients ∇_w ℓ(x_i, y_i; w) = (p_i − y_i) x_i, shape [n, d].

    No regulariser: these are the g_i (training) and v_j (query) of the paper's definitions.
    """
    return residuals(X, y, w)[:, None] * X


def gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> np.ndarray:
    """Gradient of the training objective [d]: mean of `grads` + l2·w."""
    return (residuals(X, y, w) @ X) / X.shape[0] + l2 * w


def hessian(X: np.ndarray, w: np.ndarray, l2: float) -> np.ndarray:
    """Hessian of the training objective [d, d]: (1/n) Σ_i p_i(1 − p_i) x_i x_iᵀ + l2·I."""
    p = scipy.special.expit(X @ w)
    h = (X * (p * (1.0 - p))[:, None]).T @ X / X.shape[0]
    h[np.diag_indices_from(h)] += l2
    return h


def fit_logreg(
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    w0: np.ndarray | None = None,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> np.ndarray:
    """Minimise mean loss + (l2/2)‖w‖² with Newton's method; returns w [d].

    Stops when ‖gradient‖₂ ≤ `tol`. Each Newton step is damped by backtracking (Armijo) far from
    the optimum; near it (‖gradient‖ < 1e-6, the region of quadratic convergence) full steps are
    taken, because objective differences are then below float64 rounding. `w0` warm-starts the
    solver (leave-one-out starts from the full-data optimum and needs 2–4 steps).

    Raises RuntimeError if `max_iter` steps do not reach `tol`.
    """
    X, y = _check_xy(X, y)
    l2 = _check_l2(l2)
    w = np.zeros(X.shape[1]) if w0 is None else np.array(w0, dtype=np.float64)
    if w.shape != (X.shape[1],):
        raise ConfigError(f"w0 must have shape ({X.shape[1]},); got {w.shape}")
    for _ in range(max_iter):
        g = gradient(X, y, w, l2)
        gnorm = float(np.linalg.norm(g))
        if gnorm <= tol:
            return w
        step = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian(X, w, l2)), g)
        if gnorm < 1e-6:
            w = w - step
            continue
        f0, slope, t = objective(X, y, w, l2), float(g @ step), 1.0
        while objective(X, y, w - t * step, l2) > f0 - 1e-4 * t * slope and t > 1e-10:
            t *= 0.5
        w = w - t * step
    gnorm = float(np.linalg.norm(gradient(X, y, w, l2)))
    raise RuntimeError(f"Newton did not reach ‖gradient‖ <= {tol:g} in {max_iter} steps (at {gnorm:.3g})")


def accuracy(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Fraction of examples with (xᵀw > 0) == y."""
    return float(np.mean((X @ w > 0) == (np.asarray(y) == 1)))


# ----------------------------------------------------------------------------------------------
# Ground truth and its first-order approximation
# ----------------------------------------------------------------------------------------------


def loo_influence(
    X: np.ndarray,
    y: np.ndarray,
    Xq: np.ndarray,
    yq: np.ndarray,
    l2: float,
    *,
    w: np.ndarray | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
    renormalise: bool = False,
    tol: float = 1e-12,
    max_chord: int = 30,
) -> np.ndarray:
    """Exact leave-one-out influence, [len(indices), m] (all n training examples by default).

    LOO(i, j) = ℓ(x̄_j, ȳ_j; w_{-i}) − ℓ(x̄_j, ȳ_j; w), in nats: the change of query example j's
    loss when training example i is removed and the model retrained until the gradient norm of
    the new objective is ≤ `tol`. **Larger = more beneficial** (removing i would raise the query
    loss). The mean over j is the change in mean query loss.

    ``renormalise=False`` (default): w_{-i} minimises (1/n) Σ_{k≠i} ℓ_k + (l2/2)‖w‖², i.e. the
    other examples keep their weight; this is the quantity `influence_function` approximates.
    ``renormalise=True``: w_{-i} minimises the mean over the n − 1 others + (l2/2)‖w‖².
    `w` is the full-data optimum (fitted if None).

    Solver: each refit starts from w and takes Newton steps with the Hessian of the leave-one-out
    objective *at w* (the full-data curvature minus example i's rank-one term), kept fixed over
    the iterations (the "chord" variant of Newton's method). Because w_{-i} is close to w, every
    step gains several digits, and a step costs O(n d) instead of O(n d²). If `max_chord` steps
    are not enough, `fit_logreg` (full Newton) finishes the job. Either way the result is
    converged to `tol`, so it equals a from-scratch refit up to solver tolerance (see the tests).
    """
    X, y = _check_xy(X, y)
    Xq, yq = _check_xy(Xq, yq, "Xq")
    l2 = _check_l2(l2)
    n = X.shape[0]
    w_full = fit_logreg(X, y, l2) if w is None else np.asarray(w, dtype=np.float64)
    base = losses(Xq, yq, w_full)
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ConfigError(f"indices must lie in [0, {n}); got range [{idx.min()}, {idx.max()}]")
    # Objective without i: a · Σ_{k≠i} ℓ_k + (l2/2)‖w‖². Keeping 1/n (a = 1/n) is the same as the
    # mean over the n − 1 others with l2 scaled by n/(n − 1); renormalising uses a = 1/(n − 1).
    a = 1.0 / (n - 1) if renormalise else 1.0 / n
    p = scipy.special.expit(X @ w_full)
    curv = p * (1.0 - p)
    full_curv = (X * curv[:, None]).T @ X  # Σ_k p_k(1 − p_k) x_k x_kᵀ at w, [d, d]
    eye = np.eye(X.shape[1])
    out = np.empty((idx.size, Xq.shape[0]))
    for row, i in enumerate(idx):
        hess = a * (full_curv - curv[i] * np.outer(X[i], X[i])) + l2 * eye
        factor = scipy.linalg.cho_factor(hess)
        w_i = w_full.copy()
        for _ in range(max_chord):
            r = scipy.special.expit(X @ w_i) - y
            r[i] = 0.0
            g = a * (r @ X) + l2 * w_i
            if float(np.linalg.norm(g)) <= tol:
                break
            w_i -= scipy.linalg.cho_solve(factor, g)
        else:
            keep = np.arange(n) != i
            w_i = fit_logreg(X[keep], y[keep], l2 / (a * (n - 1)), w0=w_i, tol=tol)
        out[row] = losses(Xq, yq, w_i) - base
    return out


def influence_function(
    X: np.ndarray,
    y: np.ndarray,
    Xq: np.ndarray,
    yq: np.ndarray,
    l2: float,
    *,
    w: np.ndarray | None = None,
    renormalise: bool = False,
) -> np.ndarray:
    """First-order (Koh & Liang) estimate of `loo_influence`, [n, m], same units and orientation.

    Derivation (default, ``renormalise=False``): removing i changes the objective by −ℓ_i/n, so
    the gradient of the new objective at the old optimum w is −g_i/n; one Newton step moves w by
    Δw ≈ H⁻¹ g_i / n, and the query loss changes by v_jᵀ Δw:

        IF(i, j) = (1/n) · v_jᵀ H⁻¹ g_i,     H = hessian(X, w, l2).

    With ``renormalise=True`` the new objective's gradient at w is (ḡ − g_i)/(n − 1) with
    ḡ = mean_k g_k = −l2·w (optimality), giving (1/(n − 1)) · v_jᵀ H⁻¹ (g_i + l2·w): the extra
    term is the same for every i, so it shifts a query's column but never reorders it.
    Larger = more beneficial.
    """
    X, y = _check_xy(X, y)
    Xq, yq = _check_xy(Xq, yq, "Xq")
    l2 = _check_l2(l2)
    n = X.shape[0]
    w = fit_logreg(X, y, l2) if w is None else np.asarray(w, dtype=np.float64)
    g = grads(X, y, w)
    v = grads(Xq, yq, w)
    hinv_v = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian(X, w, l2)), v.T)  # [d, m]
    if renormalise:
        return (g + l2 * w) @ hinv_v / (n - 1)
    return g @ hinv_v / n


# ----------------------------------------------------------------------------------------------
# The gradient-similarity methods of the paper, on a single "module" (all of w)
# ----------------------------------------------------------------------------------------------


def _check_grads(train_grads: np.ndarray, query_grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(train_grads, dtype=np.float64)
    v = np.asarray(query_grads, dtype=np.float64)
    if g.ndim != 2 or v.ndim != 2 or g.shape[1] != v.shape[1]:
        raise ConfigError(f"train_grads [n, d] and query_grads [m, d] must share d; got {g.shape} and {v.shape}")
    return g, v


def tracin(train_grads: np.ndarray, query_grads: np.ndarray) -> np.ndarray:
    """TracIn at one checkpoint, no learning-rate factor: ⟨v_j, g_i⟩, [n, m]. Larger = more beneficial."""
    g, v = _check_grads(train_grads, query_grads)
    return g @ v.T


def cosine(train_grads: np.ndarray, query_grads: np.ndarray) -> np.ndarray:
    """⟨v_j, g_i⟩ / (‖v_j‖ ‖g_i‖), [n, m], in [−1, 1] (0 where a gradient is exactly 0).

    Larger = more beneficial. Discards the gradient norms, i.e. how badly an example is fitted.
    """
    g, v = _check_grads(train_grads, query_grads)
    gn = np.linalg.norm(g, axis=1)
    vn = np.linalg.norm(v, axis=1)
    denom = np.outer(gn, vn)
    return np.divide(g @ v.T, denom, out=np.zeros((g.shape[0], v.shape[0])), where=denom > 0)


def datainf_lambda(train_grads: np.ndarray, scale: float = 0.1) -> float:
    """DataInf damping λ = `scale` · mean over examples and entries of g_i² (the spec's rule)."""
    if not scale > 0:
        raise ConfigError(f"datainf lambda scale={scale!r} must be > 0")
    return float(scale * np.mean(np.square(np.asarray(train_grads, dtype=np.float64))))


def datainf(
    train_grads: np.ndarray, query_grads: np.ndarray, *, lam: float | None = None, lam_scale: float = 0.1
) -> np.ndarray:
    """DataInf (Kwon et al.) with the sign arranged so that larger = more beneficial, [n, m]:

        I(i, j) = (1/λ)⟨v_j, g_i⟩ − (1/(nλ)) Σ_k ⟨v_j, g_k⟩⟨g_k, g_i⟩ / (λ + ‖g_k‖²).

    This equals v_jᵀ [(1/n) Σ_k (g_k g_kᵀ + λI)⁻¹] g_i exactly (Sherman–Morrison on each rank-one
    term), DataInf's stand-in for v_jᵀ ((1/n) Σ_k g_k g_kᵀ + λI)⁻¹ g_i. `lam` defaults to
    `datainf_lambda(train_grads, lam_scale)`. Computed through Gram matrices: O(n² d + n m d).
    """
    g, v = _check_grads(train_grads, query_grads)
    lam = datainf_lambda(g, lam_scale) if lam is None else float(lam)
    if not lam > 0:
        raise ConfigError(f"lam={lam!r} must be > 0")
    n = g.shape[0]
    vg = g @ v.T  # [n, m]: ⟨v_j, g_k⟩
    gram = g @ g.T  # [n, n]: ⟨g_k, g_i⟩
    weights = 1.0 / (lam + np.diag(gram))  # [n]
    correction = gram @ (weights[:, None] * vg)  # [n(i), m]: Σ_k ⟨g_i,g_k⟩ ⟨v_j,g_k⟩ / (λ+‖g_k‖²)
    return vg / lam - correction / (n * lam)


def fisher_influence(train_grads: np.ndarray, query_grads: np.ndarray, lam: float) -> np.ndarray:
    """What DataInf approximates, computed exactly: v_jᵀ (F + λI)⁻¹ g_i, [n, m].

    F = (1/n) Σ_k g_k g_kᵀ is the empirical Fisher [d, d]. DataInf replaces the inverse of this
    average by the average of the rank-one inverses; with a single training example the two agree.
    Larger = more beneficial. O(n d² + d³): only for small d.
    """
    g, v = _check_grads(train_grads, query_grads)
    if not lam > 0:
        raise ConfigError(f"lam={lam!r} must be > 0")
    damped = g.T @ g / g.shape[0]
    damped[np.diag_indices_from(damped)] += lam
    return g @ scipy.linalg.cho_solve(scipy.linalg.cho_factor(damped), v.T)


def score_all(
    X: np.ndarray,
    y: np.ndarray,
    Xq: np.ndarray,
    yq: np.ndarray,
    l2: float,
    *,
    w: np.ndarray | None = None,
    with_loo: bool = True,
    lam_scale: float = 0.1,
) -> dict[str, np.ndarray]:
    """Every [n, m] score matrix of the chapter at the full-data optimum.

    Keys: ``loo`` (if `with_loo`), then `TEACHING_METHODS`: ``influence_function``, ``tracin``,
    ``cosine``, ``datainf`` (λ = `lam_scale` · mean squared gradient entry). All larger = more
    beneficial; ``loo`` and ``influence_function`` in nats of query loss.
    """
    w = fit_logreg(X, y, l2) if w is None else w
    g = grads(np.asarray(X, float), np.asarray(y, float), w)
    v = grads(np.asarray(Xq, float), np.asarray(yq, float), w)
    out: dict[str, np.ndarray] = {}
    if with_loo:
        out["loo"] = loo_influence(X, y, Xq, yq, l2, w=w)
    out["influence_function"] = influence_function(X, y, Xq, yq, l2, w=w)
    out["tracin"] = tracin(g, v)
    out["cosine"] = cosine(g, v)
    out["datainf"] = datainf(g, v, lam_scale=lam_scale)
    return out


# ----------------------------------------------------------------------------------------------
# Small analyses the chapter narrates
# ----------------------------------------------------------------------------------------------


def per_example(scores: np.ndarray) -> np.ndarray:
    """Mean over query examples ([n, m] → [n]): the ``mean`` aggregation of a single module."""
    return np.asarray(scores, dtype=np.float64).mean(axis=1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flat arrays, as a Python float."""
    return float(scipy.stats.spearmanr(np.ravel(a), np.ravel(b)).statistic)


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """‖estimate − truth‖_F / ‖truth‖_F."""
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


@dataclass(frozen=True)
class Alignment:
    """How each training gradient lines up with the clean gradients of its true class.

    cos_to_clean: [n] cosine between g_i and the mean gradient of the *other* clean examples of
    the same true class (leave-self-out for clean examples). residual: [n] p − y (the output-side
    factor). true_labels: [n]. noisy_mask: [n].
    """

    cos_to_clean: np.ndarray
    residual: np.ndarray
    true_labels: np.ndarray
    noisy_mask: np.ndarray

    def mean_cos(self, noisy: bool) -> float:
        """Mean `cos_to_clean` over the noisy (True) or clean (False) examples."""
        sel = self.noisy_mask if noisy else ~self.noisy_mask
        return float(self.cos_to_clean[sel].mean())


def gradient_alignment(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    clean_labels: np.ndarray,
    noisy_mask: np.ndarray,
    *,
    exclude_intercept: bool = False,
) -> Alignment:
    """Cosines between each training gradient and the clean gradients of its *true* class.

    A noisy example of true class c carries label 1 − c, so its residual p − y has the sign of the
    other class and its gradient points against the clean examples of class c even when its
    features look like theirs: this is the output-side cancellation of the paper's claim 1.
    With `exclude_intercept` the cosines use the feature weights only (the last column of X, the
    intercept, whose gradient entry is the residual itself, is left out).
    """
    X, y = _check_xy(X, y)
    true = np.asarray(clean_labels, dtype=np.float64)
    noisy = np.asarray(noisy_mask, dtype=bool)
    g = grads(X, y, w)
    if exclude_intercept:
        g = g[:, :-1]
    cos = np.empty(X.shape[0])
    for c in (0.0, 1.0):
        clean_c = (~noisy) & (true == c)
        total = g[clean_c].sum(axis=0)
        count = int(clean_c.sum())
        for i in np.flatnonzero(true == c):
            ref = (total - g[i]) / (count - 1) if clean_c[i] else total / count
            cos[i] = float(g[i] @ ref / (np.linalg.norm(g[i]) * np.linalg.norm(ref) + 1e-300))
    return Alignment(cos_to_clean=cos, residual=residuals(X, y, w), true_labels=true, noisy_mask=noisy)


def flip_labels(y: np.ndarray, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """A copy of the 0/1 labels `y` [n] with the labels at `indices` flipped."""
    out = np.array(y, dtype=np.float64)
    out[np.asarray(indices, dtype=np.int64)] = 1.0 - out[np.asarray(indices, dtype=np.int64)]
    return out


def synthetic_problem(
    n: int = 200, m: int = 40, d: int = 5, noise_rate: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A well-conditioned toy problem: Gaussian features (+ intercept) and logistic labels.

    Returns X [n, d], y [n] (with round(noise_rate·n) labels flipped), Xq [m, d], yq [m] (clean),
    noisy_mask [n]. Used by the tests and by the chapter's warm-up.
    """
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=d - 1) * 1.5
    X = np.hstack([rng.normal(size=(n, d - 1)), np.ones((n, 1))])
    Xq = np.hstack([rng.normal(size=(m, d - 1)), np.ones((m, 1))])
    y = (rng.random(n) < scipy.special.expit(X[:, :-1] @ w_true)).astype(np.float64)
    yq = (rng.random(m) < scipy.special.expit(Xq[:, :-1] @ w_true)).astype(np.float64)
    noisy = np.zeros(n, dtype=bool)
    noisy[rng.choice(n, size=round(noise_rate * n), replace=False)] = True
    return X, flip_labels(y, np.flatnonzero(noisy)), Xq, yq, noisy


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each training example as a fraction in (0, 1], [n]: small = scored as harmful.

    Puts methods with different units on one axis (average ranks for ties).
    """
    s = np.asarray(scores, dtype=np.float64)
    return scipy.stats.rankdata(s, method="average") / s.size


@dataclass(frozen=True)
class L2Point:
    """Agreement of `influence_function` with `loo_influence` at one regularisation strength.

    l2: the strength; spearman: rank correlation of the per-example means (over queries) on the
    examples `l2_sweep` retrained without; rel_error: ‖IF − LOO‖_F / ‖LOO‖_F on those rows [k, m];
    eval_accuracy: accuracy of the full-data model on the evaluation examples.
    """

    l2: float
    spearman: float
    rel_error: float
    eval_accuracy: float


def l2_sweep(
    X: np.ndarray,
    y: np.ndarray,
    Xq: np.ndarray,
    yq: np.ndarray,
    Xe: np.ndarray,
    ye: np.ndarray,
    l2_values: Sequence[float],
    indices: Sequence[int] | np.ndarray,
) -> list[L2Point]:
    """Refit at each l2 and compare the influence function with exact LOO on `indices` only.

    Costs len(l2_values) × len(indices) Newton refits. Stronger regularisation makes the objective
    more curved, so removing one example moves w less and the first-order estimate is closer.
    """
    idx = np.asarray(indices, dtype=np.int64)
    points: list[L2Point] = []
    for l2 in l2_values:
        w = fit_logreg(X, y, l2)
        loo = loo_influence(X, y, Xq, yq, l2, w=w, indices=idx)
        est = influence_function(X, y, Xq, yq, l2, w=w)[idx]
        points.append(
            L2Point(
                l2=float(l2),
                spearman=spearman(per_example(est), per_example(loo)),
                rel_error=relative_error(est, loo),
                eval_accuracy=accuracy(Xe, ye, w),
            )
        )
    return points


@dataclass(frozen=True)
class TextProblem:
    """A text task turned into the teaching model's arrays.

    X [n, d], Xq [m, d], Xe [k, d]: features (last column 1); y [n]: the (noisy) training labels
    the model is fitted on; yq [m], ye [k]: clean labels; clean_labels [n]: training labels
    before noise; noisy_mask [n]: True where the label was flipped (from `data.make_splits`);
    train_texts: the n training texts; featuriser: the fitted `Featuriser`.
    """

    X: np.ndarray
    y: np.ndarray
    Xq: np.ndarray
    yq: np.ndarray
    Xe: np.ndarray
    ye: np.ndarray
    clean_labels: np.ndarray
    noisy_mask: np.ndarray
    train_texts: list[str]
    featuriser: Featuriser


def text_problem(
    task: str, n_train: int, n_query: int, n_eval: int, seed: int, noise_rate: float, n_features: int
) -> TextProblem:
    """Sample the splits of a binary text task (`data.make_splits`) and featurise them.

    The featuriser is fitted on the training texts only and is then frozen: it plays the role of a
    fixed, pre-trained encoder, and leave-one-out retrains the logistic model, not the features.
    """
    from layerinf.data import make_splits  # data reads files: keep `import teaching` light

    splits = make_splits(task, n_train, n_query, n_eval, seed, noise_rate)
    if splits.num_classes != 2:
        raise ConfigError(f"task={task!r} has {splits.num_classes} classes; the teaching model is binary (rt, spam)")
    feat = fit_featuriser(splits.train.texts, n_features)
    return TextProblem(
        X=feat.transform(splits.train.texts),
        y=splits.train.labels.astype(np.float64),
        Xq=feat.transform(splits.query.texts),
        yq=splits.query.labels.astype(np.float64),
        Xe=feat.transform(splits.eval.texts),
        ye=splits.eval.labels.astype(np.float64),
        clean_labels=splits.clean_train_labels.astype(np.float64),
        noisy_mask=np.asarray(splits.noisy_mask, dtype=bool),
        train_texts=list(splits.train.texts),
        featuriser=feat,
    )
