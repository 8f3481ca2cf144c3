"""The teaching model: L2-regularised logistic regression, its losses, gradients, Hessian and an
exact Newton solver (see `layerinf.teaching` for the objective)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.special

from layerinf.config import ConfigError


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
