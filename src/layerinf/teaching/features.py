"""Features of the teaching model: TF-IDF of a restricted vocabulary, reduced by a truncated SVD
(latent semantic analysis), fitted on the training texts and then frozen (a fixed "encoder")."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from layerinf.config import ConfigError

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


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
