"""The ground truth of the teaching chapter, exact leave-one-out retraining, and its first-order
approximation, the influence function (how far apart they are as the regularisation changes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.special

from layerinf.config import ConfigError
from layerinf.teaching.analysis import per_example, relative_error, spearman
from layerinf.teaching.model import _check_l2, _check_xy, accuracy, fit_logreg, grads, hessian, losses


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
