"""Per-example gradients on disk, one memory-mapped ``.npy`` file [n, p] per module, read lazily.

A store directory of `gradients.collect` holds ``dense/<module>.npy`` (every example's gradient of
that module, one row per example, written chunk by chunk) and ``we_rows.npy`` (the sparse
word-embedding rows of all examples, assembled from the checksummed chunks). `StoredRows` is what
the rest of the code sees in place of an in-RAM array: it has the shape and dtype of the file, and
each slice opens a fresh memory map, copies what it asked for and unmaps again. The pages a slice
touched therefore leave this process's resident memory as soon as the slice is returned, and a whole
module — 2.4 GB for MiniLM's head at n = 4,000 — is never resident at once.

NumPy only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Bytes of one block of rows that `row_blocks` hands out (float64 work copies stay this small).
BLOCK_BYTES = 32 * 2**20
#: Rows read through one mapping. A column slab touches a few pages of every row, and the kernel maps
#: a window around each faulting page (fault-around, 64 KiB by default) — for 4,000 rows of the
#: head that is ~0.5 GB of resident pages per slab; one mapping per this many rows bounds it.
ROWS_PER_MAP = 256


class StoredRows:
    """A read-only [n, p] array in a ``.npy`` file; indexing returns an in-RAM copy of the slice."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        self.shape: tuple[int, ...] = tuple(mapped.shape)
        self.dtype = mapped.dtype
        del mapped

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        parts = key if isinstance(key, tuple) else (key,)
        rows = parts[0] if parts else slice(None)
        if isinstance(rows, slice) and len(parts) > 1:
            span = range(*rows.indices(self.shape[0]))
            if span.step == 1 and len(span) > ROWS_PER_MAP:  # a column slab of many rows: piecewise
                out = None
                for lo in range(span.start, span.stop, ROWS_PER_MAP):
                    part = self._read((slice(lo, min(span.stop, lo + ROWS_PER_MAP)), *parts[1:]))
                    if out is None:
                        out = np.empty((len(span), *part.shape[1:]), dtype=part.dtype)
                    out[lo - span.start : lo - span.start + len(part)] = part
                return out
        return self._read(key)

    def _read(self, key: Any) -> np.ndarray:
        """A copy of ``file[key]`` through a mapping of its own, closed before returning."""
        mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        try:
            return np.array(mapped[key])
        finally:
            del mapped

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole array in RAM (tests and small modules; the scoring code reads it by slices)."""
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"StoredRows({self.path.name}, shape={self.shape}, dtype={self.dtype})"


def rows_per_block(a: np.ndarray | StoredRows, block_bytes: int | None = None) -> int:
    """Rows of `a` whose float64 copy fits `block_bytes` (default `BLOCK_BYTES`; at least 1)."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    width = int(np.prod(a.shape[1:])) if len(a.shape) > 1 else 1
    return max(1, block_bytes // (8 * max(width, 1)))


def row_blocks(a: np.ndarray | StoredRows, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) over consecutive row blocks of an in-RAM or stored array."""
    step = rows or rows_per_block(a)
    for lo in range(0, a.shape[0], step):
        yield lo, a[lo : lo + step]


def as_rows(a: Any) -> np.ndarray | StoredRows:
    """`a` itself if it is stored (read by slices), else as an ndarray."""
    return a if isinstance(a, StoredRows) else np.asarray(a)


def row_norms_sq(rows: np.ndarray | StoredRows) -> np.ndarray:
    """‖row‖² of every row, in float64, block by block."""
    out = np.zeros(rows.shape[0])
    for lo, block in row_blocks(rows):
        g = block.astype(np.float64)
        out[lo : lo + len(g)] = np.einsum("ip,ip->i", g, g)
    return out


def count_non_finite(a: np.ndarray | StoredRows) -> int:
    """Entries of `a` that are NaN or inf, counted block by block."""
    return sum(int(b.size - np.count_nonzero(np.isfinite(b))) for _, b in row_blocks(a))


def column_sums(a: np.ndarray | StoredRows) -> tuple[np.ndarray, np.ndarray]:
    """(Σ_i |a_ip|, |Σ_i a_ip|) [p] in float64, streamed over the rows.

    Accumulated row after row in float64, as ``np.abs(a).sum(0, dtype=np.float64)`` does for a
    C-ordered array (an axis-0 reduction adds the rows in order), so the sums are bitwise those of
    the in-RAM reduction (tests check it)."""
    p = int(np.prod(a.shape[1:]))
    sum_abs, total = np.zeros(p, dtype=np.float64), np.zeros(p, dtype=np.float64)
    first = True
    for _, block in row_blocks(a, rows_per_block(a, BLOCK_BYTES // 2)):
        for row in block.reshape(len(block), p):
            if first:  # the reduction starts from the first row itself, not from 0 + row
                sum_abs[...], total[...] = np.abs(row), row
                first = False
            else:
                sum_abs += np.abs(row)
                total += row
    return sum_abs, np.abs(total)


def open_rows(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.memmap:
    """A writable memory map of ``path`` with this shape and dtype; the file is (re)created if it is
    missing, unreadable or of another shape or dtype (its rows were then unusable anyway)."""
    try:
        mapped = np.load(path, mmap_mode="r+", allow_pickle=False)
        if mapped.shape == tuple(shape) and mapped.dtype == dtype:
            return mapped
        del mapped
    except (OSError, ValueError, EOFError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))


def write_rows(path: Path, n: int, start: int, rows: np.ndarray) -> None:
    """Write `rows` as rows start.. of the [n, ...] file ``path`` and flush them to disk."""
    mapped = open_rows(path, (n, *rows.shape[1:]), rows.dtype)
    mapped[start : start + len(rows)] = rows
    mapped.flush()
    del mapped


def read_rows(path: Path, start: int, count: int) -> np.ndarray | None:
    """Rows start..start+count-1 of ``path`` (a copy), or None if the file is missing or too short."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    try:
        if mapped.ndim < 1 or mapped.shape[0] < start + count:
            return None
        return np.array(mapped[start : start + count])
    finally:
        del mapped
