"""The paper's gradient-similarity methods on the teaching model's single "module" (all of w).

TracIn, cosine and DataInf are the pipeline's own code (`layerinf.influence` and the method files
of `layerinf.methods`), so the chapter grades exactly what the book's experiments compute; only
the exact damped-Fisher influence DataInf approximates, affordable for small d, is computed here.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from layerinf.config import ConfigError
from layerinf.influence import pairwise, products
from layerinf.methods import datainf as datainf_method
from layerinf.teaching.loo import influence_function, loo_influence
from layerinf.teaching.model import fit_logreg, grads

#: Names of the score matrices `score_all` returns, in display order.
TEACHING_METHODS: tuple[str, ...] = ("influence_function", "tracin", "cosine", "datainf")


def _check_grads(train_grads: np.ndarray, query_grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(train_grads, dtype=np.float64)
    v = np.asarray(query_grads, dtype=np.float64)
    if g.ndim != 2 or v.ndim != 2 or g.shape[1] != v.shape[1]:
        raise ConfigError(f"train_grads [n, d] and query_grads [m, d] must share d; got {g.shape} and {v.shape}")
    return g, v


def tracin(train_grads: np.ndarray, query_grads: np.ndarray) -> np.ndarray:
    """TracIn at one checkpoint, no learning-rate factor: ⟨v_j, g_i⟩, [n, m]. Larger = more beneficial."""
    g, v = _check_grads(train_grads, query_grads)
    return pairwise(g, v, "tracin")


def cosine(train_grads: np.ndarray, query_grads: np.ndarray) -> np.ndarray:
    """⟨v_j, g_i⟩ / (‖v_j‖ ‖g_i‖), [n, m], in [−1, 1] (0 where a gradient is exactly 0).

    Larger = more beneficial. Discards the gradient norms, i.e. how badly an example is fitted.
    """
    g, v = _check_grads(train_grads, query_grads)
    return pairwise(g, v, "cosine")


def datainf_lambda(train_grads: np.ndarray, scale: float = 0.1) -> float:
    """DataInf damping λ = `scale` · mean over examples and entries of g_i² (the spec's rule, and the
    pipeline's: `layerinf.methods.datainf`)."""
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
    `datainf_lambda(train_grads, lam_scale)`. Computed through Gram matrices: O(n² d + n m d), by
    the pipeline's DataInf at an explicit λ (`layerinf.methods.datainf.with_lambda`).
    """
    g, v = _check_grads(train_grads, query_grads)
    lam = datainf_lambda(g, lam_scale) if lam is None else float(lam)
    if not lam > 0:
        raise ConfigError(f"lam={lam!r} must be > 0")
    return datainf_method.with_lambda(products(g, v, with_norms=True, with_gram=True), lam)


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
