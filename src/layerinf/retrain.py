"""Ground truth for a ranking: remove the lowest-scored training examples and retrain.

Retraining starts from the *same* initial weights and LoRA initialisation as the original
fine-tuning, with the same hyper-parameters and a data order that depends only on the seed, so
the only difference between two retrained models is which examples were removed.
"""

from __future__ import annotations

import numpy as np

from layerinf.config import ConfigError, allowed
from layerinf.setups import BASELINES

#: Added to the run's seed to seed the dropout masks of the ``none_reseed`` retraining.
RESEED_OFFSET = 100_003


def n_removed(n: int, frac: float) -> int:
    return round(frac * n)


def lowest(scores: np.ndarray, frac: float) -> np.ndarray:
    """Indices of the round(frac·n) lowest scores (most harmful first; ties: lower index first)."""
    scores = np.asarray(scores)
    if not np.all(np.isfinite(scores)):
        raise ConfigError("scores contain NaN or inf; cannot choose examples to remove")
    return np.argsort(scores, kind="stable")[: n_removed(len(scores), frac)]


def baseline_removal(kind: str, noisy_mask: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """random: a uniformly random round(frac·n); oracle: every noisy example first, then random
    clean ones up to round(frac·n) (or a random subset of the noisy ones if there are more);
    none, none_reseed: nothing."""
    allowed("baseline", kind, BASELINES)
    n = len(noisy_mask)
    k = n_removed(n, frac)
    rng = np.random.default_rng(seed + 7919)
    if kind in ("none", "none_reseed"):
        return np.zeros(0, dtype=np.int64)
    if kind == "random":
        return np.sort(rng.choice(n, size=k, replace=False))
    noisy = np.flatnonzero(noisy_mask)
    clean = np.flatnonzero(~noisy_mask)
    if len(noisy) >= k:
        return np.sort(rng.choice(noisy, size=k, replace=False))
    return np.sort(np.concatenate([noisy, rng.choice(clean, size=k - len(noisy), replace=False)]))


def class_makeup(labels: np.ndarray, removed: np.ndarray, num_classes: int) -> dict[str, float]:
    """What removing `removed` does to the classes of the training set (`labels`: the labels the model
    is trained on, i.e. after noise).

    Returns ``removed_top_class_share`` (the largest share one class has among the removed
    examples; NaN if none removed) and ``kept_min_class_share`` (the smallest fraction of a class's
    training examples that is kept: 0 means the removal wiped that class out).
    """
    labels = np.asarray(labels, dtype=np.int64)
    total = np.bincount(labels, minlength=num_classes)
    gone = np.bincount(labels[np.asarray(removed, dtype=np.int64)], minlength=num_classes)
    present = total > 0
    kept = (total - gone)[present] / total[present]
    return {
        "removed_top_class_share": float(gone.max() / gone.sum()) if gone.sum() else float("nan"),
        "kept_min_class_share": float(kept.min()),
    }
