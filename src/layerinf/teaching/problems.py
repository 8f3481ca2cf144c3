"""Problems for the teaching model: a well-conditioned synthetic one and real text tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special

from layerinf.config import ConfigError
from layerinf.teaching.features import Featuriser, fit_featuriser


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
