"""Small analyses the teaching chapter narrates: per-example means, rank agreement, and how training
gradients line up with the clean gradients of their true class (the output-side cancellation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from layerinf.teaching.model import _check_xy, grads, residuals


def per_example(scores: np.ndarray) -> np.ndarray:
    """Mean over query examples ([n, m] → [n]): the ``mean`` aggregation of a single module."""
    return np.asarray(scores, dtype=np.float64).mean(axis=1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flat arrays, as a Python float."""
    return float(scipy.stats.spearmanr(np.ravel(a), np.ravel(b)).statistic)


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """‖estimate − truth‖_F / ‖truth‖_F."""
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each training example as a fraction in (0, 1], [n]: small = scored as harmful.

    Puts methods with different units on one axis (average ranks for ties).
    """
    s = np.asarray(scores, dtype=np.float64)
    return scipy.stats.rankdata(s, method="average") / s.size


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
