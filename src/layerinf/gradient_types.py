"""What the gradient stage hands on: per-example gradients of every module, dense for the LoRA and
head tensors and sparse (`SparseRows`) for the word embedding. NumPy only: the influence methods
and the cancellation ratio read these without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerinf.scores import ModuleInfo


@dataclass(frozen=True)
class SparseRows:
    """Per-example rows of a word-embedding gradient.

    Example b owns entries ``offsets[b]:offsets[b+1]`` of `tokens` (distinct token ids, ascending)
    and `rows` ([T, hidden], dL/d(embedding row of that token), summed over its occurrences).
    """

    offsets: np.ndarray
    tokens: np.ndarray
    rows: np.ndarray
    vocab_size: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def example_index(self) -> np.ndarray:
        """[T]: which example each row belongs to."""
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def norms_sq(self) -> np.ndarray:
        """[k]: squared Frobenius norm of each example's (dense) embedding gradient."""
        sq = np.einsum("td,td->t", self.rows, self.rows, dtype=np.float64)
        return np.add.reduceat(sq, self.offsets[:-1]) * (np.diff(self.offsets) > 0) if len(sq) else np.zeros(len(self))

    def dense(self, b: int) -> np.ndarray:
        """Example b's gradient as a dense [vocab, hidden] array (tests only: it is large)."""
        out = np.zeros((self.vocab_size, self.rows.shape[1]), dtype=self.rows.dtype)
        lo, hi = self.offsets[b], self.offsets[b + 1]
        out[self.tokens[lo:hi]] = self.rows[lo:hi]
        return out

    def top_k(self, k: int, counts: np.ndarray) -> SparseRows:
        """Keep, per example, the k rows with the largest row norm / token count (TracIn-WE-top-k).

        counts: [T] number of occurrences of each row's token in its example.
        """
        keep = np.zeros(len(self.tokens), dtype=bool)
        score = np.linalg.norm(self.rows.astype(np.float64), axis=1) / counts
        for b in range(len(self)):
            lo, hi = self.offsets[b], self.offsets[b + 1]
            if hi - lo <= k:
                keep[lo:hi] = True
            else:  # stable: ties keep the lower token id
                best = np.argsort(-score[lo:hi], kind="stable")[:k]
                keep[lo + best] = True
        sizes = np.add.reduceat(keep.astype(np.int64), self.offsets[:-1]) * (np.diff(self.offsets) > 0)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return SparseRows(offsets, self.tokens[keep], self.rows[keep], self.vocab_size)

    @staticmethod
    def concat(parts: list[SparseRows]) -> SparseRows:
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for part in parts:
            offsets.append(part.offsets[1:] + base)
            base += int(part.offsets[-1])
        return SparseRows(
            np.concatenate(offsets),
            np.concatenate([p.tokens for p in parts]),
            np.concatenate([p.rows for p in parts]),
            parts[0].vocab_size,
        )


@dataclass(frozen=True)
class Gradients:
    """Per-example gradients of every module for one set of examples (training or query).

    dense: module name -> [k, n_params] for every LoRA and head tensor (row-major flattening).
    we: sparse word-embedding gradients (None if not collected); `token_counts` [T] the number of
        occurrences of each row's token in its example (for TracIn-WE-top-k).
    infos: every module in canonical order (incl. ``we``); n_layers: transformer layers.
    losses: [k] per-example loss; logits: [k, classes]; labels: [k] labels the losses used.
    """

    dense: dict[str, np.ndarray]
    we: SparseRows | None
    token_counts: np.ndarray | None
    infos: tuple[ModuleInfo, ...]
    n_layers: int
    losses: np.ndarray
    logits: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.losses)

    @property
    def correct(self) -> np.ndarray:
        """[k] bool: the model predicts the example's label."""
        return self.logits.argmax(axis=1) == self.labels
