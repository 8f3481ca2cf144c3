"""The training Gram matrix ⟨g_i, g_k⟩ [n, n] of stored gradients, a block of rows at a time.

DataInf needs the Gram matrix only through ``gram @ Y`` (`layerinf.methods.datainf.with_lambda`).
Held whole it is n² float64 — 128 MB at n = 4,000, and twice that while it is summed over column
slabs — the one term of a run's memory that grows faster than n. For gradients read from a store
(`layerinf.gradient_files.StoredRows`) `influence` hands DataInf one of these instead: ``@``
computes the rows of K a block at a time, multiplies them by Y and drops them, so at most
`GRAM_BLOCK_BYTES` of K exist at once. The price is one more read of the module per block of rows.

The row blocks are smaller matrix products than the whole Gram matrix (which NumPy may form with a
symmetric rank-k update), so an entry can differ from the in-RAM value in the last bits.
NumPy only.
"""

from __future__ import annotations

import numpy as np

from layerinf.gradient_files import StoredRows
from layerinf.gradient_types import SparseRows

#: Bytes of the float64 rows of K formed at a time.
GRAM_BLOCK_BYTES = 64 * 2**20


class _RowGram:
    """Base: ``@`` over blocks of rows; subclasses say what the blocks are and how a block is formed."""

    shape: tuple[int, int]

    def row_blocks(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def rows(self, lo: int, hi: int) -> np.ndarray:
        raise NotImplementedError

    def __matmul__(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        out = np.empty((self.shape[0], *y.shape[1:]), dtype=np.result_type(y.dtype, np.float64))
        for lo, hi in self.row_blocks():
            out[lo:hi] = self.rows(lo, hi) @ y
        return out

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """The whole matrix (tests only)."""
        whole = np.concatenate([self.rows(lo, hi) for lo, hi in self.row_blocks()])
        return whole if dtype is None else whole.astype(dtype)


class DenseGram(_RowGram):
    """K of a dense stored module [n, p], from the same float64 column slabs as `influence.products`."""

    def __init__(self, t: StoredRows, width: int) -> None:
        self.t, self.width = t, width
        n = t.shape[0]
        self.shape = (n, n)

    def row_blocks(self) -> list[tuple[int, int]]:
        n = self.shape[0]
        step = max(1, GRAM_BLOCK_BYTES // (8 * max(n, 1)))
        return [(lo, min(n, lo + step)) for lo in range(0, n, step)]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        n, p = self.t.shape
        out = np.zeros((hi - lo, n), dtype=np.float64)
        part = np.empty_like(out)
        for c in range(0, p, self.width):
            slab = np.asarray(self.t[:, c : c + self.width], dtype=np.float64)
            np.matmul(slab[lo:hi], slab.T, out=part)
            out += part
        return out


class SparseGram(_RowGram):
    """K of stored word-embedding rows, from the same example blocks as `influence.sparse_inner`."""

    def __init__(self, a: SparseRows) -> None:
        from layerinf.influence import _sparse_inner

        self.a, self._inner = a, _sparse_inner
        self.blocks = a.blocks()
        self.shape = (len(a), len(a))

    def row_blocks(self) -> list[tuple[int, int]]:
        return self.blocks

    def rows(self, lo: int, hi: int) -> np.ndarray:
        part = self.a.block(lo, hi)
        out = np.empty((hi - lo, self.shape[1]), dtype=np.float64)
        for b_lo, b_hi in self.blocks:
            out[:, b_lo:b_hi] = self._inner(part, self.a.block(b_lo, b_hi))
        return out

    def diagonal(self) -> np.ndarray:
        """⟨g_i, g_i⟩, each from its own block's product (so equal to the diagonal of `rows`)."""
        parts = [np.diag(self._inner(self.a.block(lo, hi), self.a.block(lo, hi))) for lo, hi in self.blocks]
        return np.concatenate(parts)
