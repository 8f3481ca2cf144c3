"""Aggregation of per-module influence scores to one score per training example.

Input everywhere: ``values``, a real array [modules, n, m] (module l, training example i, query
example j), as in `layerinf.scores.ModuleScores.values`. Output: float64 [n].

**Sign convention: larger score = more beneficial; harmful = lowest; removal drops the lowest.**
Every aggregation keeps it: a training example that the modules consider harmful gets a low score.

Columns are the pairs c = (module l, query j) with ``query_mask[j]`` True. For a column c,
r_c(i) ∈ {0, …, n−1} is the position of example i when the column is sorted ascending
(0 = most harmful), ties broken stably (lower example index first).

Each aggregation is one file of `layerinf.aggregations` (mean, mean_c, rank, vote: the definitions
are there); this module is what other code imports (`aggregate`, `aggregate_many`,
`vote_k_sweep`), and it holds the numerics they share: input validation and the `Selection` with
the column statistics computed once per call.

Rank and Vote are computed without a Python loop over columns: the columns of one module are
gathered into [columns, n] blocks (the int64 arg-sorts of all blocks in flight stay under
`CHUNK_BYTES`) and arg-sorted along the example axis in one call per block, on a small thread
pool (one thread per available core). The sort is NumPy's fast unstable one; only the columns
that contain ties are sorted again with the stable algorithm, so the result equals
``np.argsort(column, kind="stable")`` everywhere. NumPy only.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from layerinf import aggregations
from layerinf.config import AGGREGATIONS as AGGREGATIONS  # re-exported: the default aggregations
from layerinf.config import ConfigError

if TYPE_CHECKING:
    from layerinf.aggregations import Aggregation

#: Default Vote k as a fraction of n.
DEFAULT_VOTE_FRAC: float = 0.2
#: Upper bound of the bytes of the [columns, n] int64 arg-sorts in flight (all threads together).
CHUNK_BYTES: int = 256 * 2**20
#: Rows of examples transposed at a time when gathering columns (cache-sized tiles).
_TILE = 256
#: Below this many selected entries, Rank / Vote run in the calling thread (no pool start-up).
_PARALLEL_MIN_ELEMENTS = 2**20


def default_k(n: int, frac: float = DEFAULT_VOTE_FRAC) -> int:
    """Vote k = round(frac · n) (Python rounding, half to even), at least 1."""
    return max(1, round(frac * n))


def _check_values(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 3:
        raise ConfigError(f"values must be a 3-d array [modules, n, m]; got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(f"values must be a real (float) array; got dtype {arr.dtype}")
    n_modules, n, m = arr.shape
    if n_modules == 0:
        raise ConfigError(f"values has 0 modules (shape {arr.shape}); at least one module is needed")
    if n == 0:
        raise ConfigError(f"values has 0 training examples (shape {arr.shape}); at least one is needed")
    if m == 0:
        raise ConfigError(f"values has 0 query examples (shape {arr.shape}); at least one is needed")
    if np.issubdtype(arr.dtype, np.floating):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ConfigError(f"values has {bad} non-finite entries (NaN or inf) out of {arr.size}; all must be finite")
    return arr


def _query_indices(query_mask: np.ndarray | None, m: int, how: str) -> np.ndarray:
    """Indices of the selected queries; ConfigError if the mask is malformed or selects nothing."""
    if query_mask is None:
        return np.arange(m)
    mask = np.asarray(query_mask)
    if mask.dtype != bool:
        raise ConfigError(f"query_mask must be a boolean array [m]; got dtype {mask.dtype}")
    if mask.shape != (m,):
        raise ConfigError(f"query_mask has shape {mask.shape} but values has m={m} queries; expected shape ({m},)")
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        raise ConfigError(f"query_mask selects no query (all {m} False); {how!r} needs at least one query")
    return idx


def _check_k(k: object, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ConfigError(f"k={k!r} must be an integer in 1..n = 1..{n}")
    if not 1 <= int(k) <= n:
        raise ConfigError(f"k={k} is outside the allowed range 1..n = 1..{n}")
    return int(k)


def _n_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _column_block(module_values: np.ndarray, qsel: np.ndarray, all_queries: bool) -> np.ndarray:
    """C-contiguous [len(qsel), n] copy of module_values[:, qsel].T, transposed in cache-sized tiles."""
    n = module_values.shape[0]
    out = np.empty((qsel.size, n), dtype=module_values.dtype)
    for i0 in range(0, n, _TILE):  # loop over tiles of examples, not over columns
        piece = module_values[i0 : i0 + _TILE]
        out[:, i0 : i0 + _TILE] = (piece if all_queries else piece[:, qsel]).T
    return out


def _stable_argsort_rows(block: np.ndarray) -> np.ndarray:
    """np.argsort(block, axis=1, kind="stable"), faster when most rows have no ties.

    Without ties the ascending order is unique, so the (faster) unstable sort gives the same
    permutation; the rows that do contain ties are sorted again with the stable algorithm.
    """
    order = np.argsort(block, axis=1, kind="quicksort")
    if block.shape[1] > 1:
        ordered = np.take_along_axis(block, order, axis=1)
        tied = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if tied.size:
            order[tied] = np.argsort(block[tied], axis=1, kind="stable")
    return order


def _unit_statistics(
    module_values: np.ndarray, qsel: np.ndarray, all_queries: bool, ks: Sequence[int], need_rank: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """Rank sums [n] (or None) and Vote sums [len(ks), n] of the columns (this module, queries qsel)."""
    n = module_values.shape[0]
    order = _stable_argsort_rows(_column_block(module_values, qsel, all_queries))  # [c, t] -> example
    rank_sum = None
    if need_rank:
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(n, dtype=order.dtype)[None, :], axis=1)  # inverse permutation
        rank_sum = ranks.sum(axis=0, dtype=np.int64)
        del ranks
    vote_sum = np.zeros((len(ks), n), dtype=np.float64)
    for row, k in enumerate(ks):
        # Only the k first positions of a column get points: k, k − 1, …, 1.
        weights = np.tile(np.arange(k, 0, -1, dtype=np.float64), order.shape[0])
        vote_sum[row] = np.bincount(order[:, :k].ravel(), weights=weights, minlength=n)
    return rank_sum, vote_sum


def _rank_statistics(
    values: np.ndarray,
    qidx: np.ndarray,
    ks: Sequence[int],
    *,
    need_rank: bool,
    chunk_bytes: int = CHUNK_BYTES,
    n_threads: int | None = None,
) -> tuple[np.ndarray | None, np.ndarray, int]:
    """Arg-sort every column once and accumulate the rank sums and the Vote sums for each k.

    Work units are (module, block of selected queries) with at most ``chunk_bytes // (8 n T)``
    columns each, T = number of threads; units run on a thread pool (NumPy's sort releases the
    GIL), so the int64 arg-sorts of all running units together stay under ``chunk_bytes``.
    Returns (Σ_c r_c [n] int64 or None, Σ_c max(k − r_c, 0) [len(ks), n] float64, number of columns).
    """
    n_modules, n, m = values.shape
    threads = _n_threads() if n_threads is None else max(1, n_threads)
    per_unit = max(1, chunk_bytes // (8 * n * threads))
    all_queries = qidx.size == m
    units = [
        (layer, qidx[q0 : q0 + per_unit], all_queries and per_unit >= m)
        for layer in range(n_modules)
        for q0 in range(0, qidx.size, per_unit)
    ]

    def run(unit: tuple[int, np.ndarray, bool]) -> tuple[np.ndarray | None, np.ndarray]:
        layer, qsel, whole = unit
        return _unit_statistics(values[layer], qsel, whole, ks, need_rank)

    rank_sum = np.zeros(n, dtype=np.int64) if need_rank else None
    vote_sum = np.zeros((len(ks), n), dtype=np.float64)
    if threads == 1 or len(units) == 1 or n * n_modules * qidx.size < _PARALLEL_MIN_ELEMENTS:
        results: Iterator[tuple[np.ndarray | None, np.ndarray]] = map(run, units)
        for part_rank, part_vote in results:
            if rank_sum is not None and part_rank is not None:
                rank_sum += part_rank
            vote_sum += part_vote
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(units))) as pool:
            for part_rank, part_vote in pool.map(run, units):
                if rank_sum is not None and part_rank is not None:
                    rank_sum += part_rank
                vote_sum += part_vote
    return rank_sum, vote_sum, n_modules * qidx.size


class Selection:
    """What an aggregation reads: the validated ``values`` [modules, n, m], the selected queries, Vote's
    k, and the statistics several aggregations share, each computed at most once.

    Build it with `Selection.build` for the aggregations of one call: it validates exactly what
    they use (the values always, k if one uses k, the query mask if one uses it) and arg-sorts the
    columns once for all that read ``ranks`` or ``votes``.
    """

    def __init__(self, values: np.ndarray, queries: np.ndarray | None, k: int | None, statistics: set[str]) -> None:
        self.values = values
        self.n_modules, self.n, self.m = values.shape
        self._queries = queries
        self.k = k
        self._statistics = statistics
        self._module_sums: np.ndarray | None = None
        self._columns: tuple[np.ndarray | None, np.ndarray, int] | None = None

    @classmethod
    def build(
        cls,
        values: np.ndarray,
        specs: Sequence[Aggregation],
        *,
        k: int | None = None,
        query_mask: np.ndarray | None = None,
    ) -> Selection:
        """Validate `values`, `k` and `query_mask` for the aggregations `specs` (`ConfigError` otherwise)."""
        arr = _check_values(values)
        _, n, m = arr.shape
        chosen_k = None
        if any(spec.uses_k for spec in specs):
            chosen_k = default_k(n) if k is None else _check_k(k, n)
        queries = None
        masked = [spec.name for spec in specs if spec.uses_query_mask]
        if masked:
            queries = _query_indices(query_mask, m, masked[0])
        return cls(arr, queries, chosen_k, {stat for spec in specs for stat in spec.statistics})

    @property
    def queries(self) -> np.ndarray:
        """Indices of the selected queries [q]."""
        if self._queries is None:
            raise ConfigError("this aggregation reads the query mask but was not declared with uses_query_mask=True")
        return self._queries

    def module_sums(self) -> np.ndarray:
        """[n, m] float64 sums over modules (a temporary of that size instead of a copy of the selection)."""
        if self._module_sums is None:
            self._module_sums = self.values.sum(axis=0, dtype=np.float64)
        return self._module_sums

    def _column_statistics(self) -> tuple[np.ndarray | None, np.ndarray, int]:
        if self._columns is None:
            ks = [self.k] if "votes" in self._statistics and self.k is not None else []
            self._columns = _rank_statistics(self.values, self.queries, ks, need_rank="ranks" in self._statistics)
        return self._columns

    @property
    def n_columns(self) -> int:
        """Number of columns (module, selected query)."""
        return self.n_modules * self.queries.size

    def rank_sums(self) -> np.ndarray:
        """Σ_c r_c(i), int64 [n] (needs ``statistics=("ranks",)``)."""
        rank_sum = self._column_statistics()[0] if "ranks" in self._statistics else None
        if rank_sum is None:
            raise ConfigError("rank_sums() needs the aggregation to declare statistics=('ranks',)")
        return rank_sum

    def vote_sums(self) -> np.ndarray:
        """Σ_c max(k − r_c(i), 0), float64 [n] (needs ``statistics=("votes",)`` and ``uses_k=True``)."""
        if "votes" not in self._statistics or self.k is None:
            raise ConfigError("vote_sums() needs the aggregation to declare statistics=('votes',) and uses_k=True")
        return self._column_statistics()[1][0]


def aggregate_many(
    values: np.ndarray,
    hows: Sequence[str],
    *,
    k: int | None = None,
    query_mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Several aggregations of ``values`` [modules, n, m] at once -> {how: float64 [n]}.

    The per-column ranks are computed once and shared by ``rank`` and ``vote``. See the files of
    `layerinf.aggregations` for the definitions; larger output = more beneficial.
    """
    return aggregations.aggregate_many(values, hows, k=k, query_mask=query_mask)


def aggregate(
    values: np.ndarray,
    how: str,
    *,
    k: int | None = None,
    query_mask: np.ndarray | None = None,
) -> np.ndarray:
    """One score per training example, float64 [n], from ``values`` [modules, n, m].

    how: a registered aggregation (``mean``, ``mean_c``, ``rank``, ``vote``; `layerinf.aggregations`).
    k: Vote k in 1..n (default round(0.2·n), at least 1); ignored by the other aggregations.
    query_mask: boolean [m], the queries used by ``mean_c``, ``rank`` and ``vote`` (default: all);
    ignored by ``mean``.
    Larger output = more beneficial; harmful = lowest.
    """
    return aggregations.aggregate(values, how, k=k, query_mask=query_mask)


def vote_k_sweep(values: np.ndarray, fracs: Sequence[float], *, query_mask: np.ndarray | None = None) -> np.ndarray:
    """Vote scores for several k at once: float64 [len(fracs), n], row r uses k = round(fracs[r]·n).

    Each frac must lie in (0, 1]; k is at least 1. The columns are arg-sorted once for all k.
    """
    arr = _check_values(values)
    _, n, m = arr.shape
    fracs = [float(f) for f in fracs]
    if not fracs:
        raise ConfigError("fracs=[] is empty; give at least one fraction in (0, 1]")
    for frac in fracs:
        if not (math.isfinite(frac) and 0.0 < frac <= 1.0):
            raise ConfigError(f"fracs contains {frac!r}; every Vote fraction must be in (0, 1]")
    ks = [default_k(n, frac) for frac in fracs]
    qidx = _query_indices(query_mask, m, "vote")
    _, vote_sum, _ = _rank_statistics(arr, qidx, ks, need_rank=False)
    return 0.0 - vote_sum
