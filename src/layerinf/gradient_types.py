"""What the gradient stage hands on: per-example gradients of every module, dense for the LoRA and
head tensors and sparse (`SparseRows`) for the word embedding. NumPy only: the influence methods
and the cancellation ratio read these without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerinf import gradient_files
from layerinf.gradient_files import StoredRows
from layerinf.scores import ModuleInfo


@dataclass(frozen=True)
class SparseRows:
    """Per-example rows of a word-embedding gradient.

    Example b owns entries ``offsets[b]:offsets[b+1]`` of `tokens` (distinct token ids, ascending)
    and `rows` ([T, hidden], dL/d(embedding row of that token), summed over its occurrences). `rows`
    is an ndarray or, from a gradient store, a `StoredRows` file read block by block (`blocks`).
    """

    offsets: np.ndarray
    tokens: np.ndarray
    rows: np.ndarray | StoredRows
    vocab_size: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def block(self, lo: int, hi: int) -> SparseRows:
        """Examples lo..hi-1 as an in-RAM `SparseRows` (their rows copied out of a stored file)."""
        a, b = int(self.offsets[lo]), int(self.offsets[hi])
        rows = self.rows[a:b]
        return SparseRows(self.offsets[lo : hi + 1] - a, self.tokens[a:b], np.asarray(rows), self.vocab_size)

    def blocks(self, block_bytes: int | None = None) -> list[tuple[int, int]]:
        """Example ranges (lo, hi) whose float64 rows fit `block_bytes` (default
        `gradient_files.BLOCK_BYTES`); one range if the rows are in RAM."""
        if not isinstance(self.rows, StoredRows) or len(self) == 0:
            return [(0, len(self))]
        block_bytes = gradient_files.BLOCK_BYTES if block_bytes is None else block_bytes
        per_row = 8 * max(1, self.rows.shape[1])
        out, lo = [], 0
        while lo < len(self):
            limit = self.offsets[lo] + max(1, block_bytes // per_row)
            hi = max(lo + 1, int(np.searchsorted(self.offsets, limit, side="right")) - 1)
            hi = min(hi, len(self))
            out.append((lo, hi))
            lo = hi
        return out

    @property
    def example_index(self) -> np.ndarray:
        """[T]: which example each row belongs to."""
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def norms_sq(self) -> np.ndarray:
        """[k]: squared Frobenius norm of each example's (dense) embedding gradient."""
        if isinstance(self.rows, StoredRows):
            return np.concatenate([self.block(lo, hi).norms_sq() for lo, hi in self.blocks()])
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
        if isinstance(self.rows, StoredRows):  # per block of examples: each example's choice is its own
            parts = [
                self.block(lo, hi).top_k(k, counts[self.offsets[lo] : self.offsets[hi]]) for lo, hi in self.blocks()
            ]
            return SparseRows.concat(parts)
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

    dense: module name -> [k, n_params] for every LoRA and head tensor (row-major flattening): an
        ndarray, or from a gradient store a `StoredRows` that reads its file by slices.
    we: sparse word-embedding gradients (None if not collected); `token_counts` [T] the number of
        occurrences of each row's token in its example (for TracIn-WE-top-k).
    infos: every module in canonical order (incl. ``we``); n_layers: transformer layers.
    losses: [k] per-example loss; logits: [k, classes]; labels: [k] labels the losses used.
    """

    dense: dict[str, np.ndarray | StoredRows]
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
