"""Per-module influence of training on query examples, for every method of `layerinf.methods`.

This module owns the numerics the methods share: the float64 inner products of one module's
gradients (`products`, for dense tensors in column slabs, `sparse_inner` for the word embedding's
sparse rows) and the loop over modules (`compute_scores`). What a method makes of them is its own
file in `layerinf.methods`: an inner-product method (TracIn, cosine, DataInf, TracIn-WE) gets the
products and so covers every module, the word embedding included; a method that needs the gradients
themselves (a preconditioner) gets each module's dense gradients, and the sparse word-embedding
rows only if it says how to score them.

Sign convention: larger = more beneficial (a training example whose gradient agrees with the
query's gradient lowers the query loss when trained on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from layerinf import methods
from layerinf.config import ConfigError, allowed
from layerinf.gradient_files import StoredRows, as_rows, count_non_finite
from layerinf.gram import DenseGram, SparseGram
from layerinf.methods import Method, Products
from layerinf.scores import ModuleScores

if TYPE_CHECKING:  # gradients imports torch; the NumPy-only callers (teaching) need none of it
    from layerinf.gradient_types import Gradients, SparseRows

#: The paper computes DataInf only for tensors with fewer entries than this (`bench/bench_scores.py`
#: restricts its DataInf timing the same way); this project computes it for every module.
#: Size of the float64 copy of gradient columns `pairwise` makes at a time (the inputs stay float32).
CONVERT_BLOCK_BYTES = 64 * 2**20


def dense_methods() -> tuple[str, ...]:
    """The methods `pairwise` accepts: every registered method not restricted to the word embedding."""
    return tuple(m.name for m in methods.specs() if not m.we_only)


def pairwise(
    train_grads: np.ndarray, query_grads: np.ndarray, method: str, *, datainf_lambda: float = 0.1
) -> np.ndarray:
    """Scores [n, m] of `method` between dense per-example gradients [n, p] and [m, p] of one module.

    tracin: ⟨v_j, g_i⟩. cosine: ⟨v_j, g_i⟩ / (‖v_j‖ ‖g_i‖) (0 where a norm is 0). datainf:
    (1/λ)⟨v, g_i⟩ − 1/(nλ) Σ_k ⟨v, g_k⟩⟨g_k, g_i⟩ / (λ + ‖g_k‖²) with λ = `datainf_lambda` × the
    mean squared entry of the training gradients. Any other method: see its file in `layerinf.methods`.
    """
    allowed("method", method, dense_methods())
    if train_grads.ndim != 2 or query_grads.ndim != 2 or train_grads.shape[1] != query_grads.shape[1]:
        raise ConfigError(
            f"train_grads {train_grads.shape} and query_grads {query_grads.shape} must be [n, p] and [m, p]"
        )
    return _score_dense(methods.get(method), train_grads, query_grads, datainf_lambda)


def products(train_grads: np.ndarray, query_grads: np.ndarray, *, with_norms: bool, with_gram: bool) -> Products:
    """The float64 `Products` of dense gradients [n, p] and [m, p] (see `_products`)."""
    dots, train_sq, query_sq, gram = _products(train_grads, query_grads, with_norms=with_norms, with_gram=with_gram)
    return Products(dots, train_sq, query_sq, gram, int(np.shape(train_grads)[1]))


def _refuse_non_finite(train_grads: np.ndarray | StoredRows, query_grads: np.ndarray | StoredRows) -> None:
    for name, g in (("train_grads", train_grads), ("query_grads", query_grads)):
        bad = count_non_finite(as_rows(g))
        if bad:
            raise ConfigError(f"{name} has {bad} non-finite entries (NaN or inf)")


def _score_dense(
    spec: Method, train_grads: np.ndarray | StoredRows, query_grads: np.ndarray | StoredRows, damping: float
) -> np.ndarray:
    """[n, m] scores of one dense module; `ConfigError` if a gradient entry is NaN or inf."""
    if spec.from_gradients is not None:
        _refuse_non_finite(train_grads, query_grads)  # a preconditioner may divide by what NaN makes
        return spec.from_gradients(train_grads, query_grads, damping)
    assert spec.from_products is not None
    with np.errstate(invalid="ignore"):  # only non-finite inputs make invalid products: refused below
        prods = products(train_grads, query_grads, with_norms=spec.needs_norms, with_gram=spec.needs_gram)
    # A NaN or inf entry of either input makes a whole row or column of the products non-finite, so
    # the [n, m] products are checked and the [n, p] inputs (a pass as long as the product's own
    # memory traffic) only counted when something is wrong.
    if prods.dots.size == 0 or not np.isfinite(prods.dots).all():
        _refuse_non_finite(train_grads, query_grads)
    return spec.from_products(prods, damping)


def _products(
    t: np.ndarray | StoredRows, q: np.ndarray | StoredRows, *, with_norms: bool, with_gram: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | DenseGram | None]:
    """Inner products in float64: ⟨g_i, v_j⟩ [n, m]; ‖g_i‖² [n] and ‖v_j‖² [m] (zeros unless
    `with_norms`); the Gram matrix ⟨g_i, g_k⟩ [n, n] if `with_gram` (else None) — for stored
    gradients a `DenseGram`, which forms it a block of rows at a time.

    Float32 gradients are converted to float64 a slab of columns (parameters) at a time, into reused
    buffers of about `CONVERT_BLOCK_BYTES`, and the slab products summed: a float64 copy of a whole
    [n, p] module would double the memory of the largest module (and, freshly allocated, can cost
    more than the product itself). Column slabs — not row blocks — keep every matrix product as large
    as [n, m] (or [n, n]), so the multiply runs at full speed. Stored gradients (`StoredRows`) are
    read one slab at a time from their file: the arithmetic, and so every bit of the result, is that
    of the in-RAM arrays, while only one slab of the module is ever resident.
    """
    t, q = as_rows(t), as_rows(q)
    n, p = t.shape
    m = q.shape[0]
    train_sq, query_sq = np.zeros(n, dtype=np.float64), np.zeros(m, dtype=np.float64)
    if t.dtype == np.float64 and q.dtype == np.float64:  # exactness checks: small, read whole
        t, q = np.asarray(t), np.asarray(q)
        if with_norms:
            train_sq, query_sq = np.einsum("ip,ip->i", t, t), np.einsum("jp,jp->j", q, q)
        return t @ q.T, train_sq, query_sq, (t @ t.T if with_gram else None)
    width = int(min(p, max(256, CONVERT_BLOCK_BYTES // (8 * max(n, 1)))))
    dots, part = np.zeros((n, m), dtype=np.float64), np.empty((n, m), dtype=np.float64)
    gram = gram_part = None
    lazy_gram = with_gram and isinstance(t, StoredRows)
    if lazy_gram:  # formed a block of rows at a time when DataInf multiplies by it (`layerinf.gram`)
        with_gram = False
    if with_gram:
        gram, gram_part = np.zeros((n, n), dtype=np.float64), np.empty((n, n), dtype=np.float64)
    t_buf, q_buf = np.empty((n, width), dtype=np.float64), np.empty((m, width), dtype=np.float64)
    for lo in range(0, p, width):
        hi = min(p, lo + width)
        tb, qb = t_buf[:, : hi - lo], q_buf[:, : hi - lo]
        tb[...] = t[:, lo:hi]
        qb[...] = q[:, lo:hi]
        np.matmul(tb, qb.T, out=part)
        dots += part
        if with_gram:
            np.matmul(tb, tb.T, out=gram_part)
            gram += gram_part
        if with_norms:
            train_sq += np.einsum("ip,ip->i", tb, tb)
            query_sq += np.einsum("jp,jp->j", qb, qb)
    return dots, train_sq, query_sq, (DenseGram(t, width) if lazy_gram else gram)


def sparse_inner(a: SparseRows, b: SparseRows) -> np.ndarray:
    """[len(a), len(b)] inner products of sparse embedding gradients: for every pair, the sum over
    the token ids the two examples share of the dot products of their rows (exact TracIn-WE).

    Rows stored on disk are read in blocks of examples (`SparseRows.blocks`) and each pair of blocks
    multiplied on its own; the same token order is summed either way, but a block's row products
    may round differently in the last bit (a smaller matrix product)."""
    a_blocks, b_blocks = a.blocks(), b.blocks()
    if len(a_blocks) == 1 and len(b_blocks) == 1:
        return _sparse_inner(a, b)
    out = np.empty((len(a), len(b)), dtype=np.float64)
    for b_lo, b_hi in b_blocks:
        b_part = b.block(b_lo, b_hi)
        for a_lo, a_hi in a_blocks:
            out[a_lo:a_hi, b_lo:b_hi] = _sparse_inner(a.block(a_lo, a_hi), b_part)
    return out


def _sparse_inner(a: SparseRows, b: SparseRows) -> np.ndarray:
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    a_ex, b_ex = a.example_index, b.example_index
    a_order = np.argsort(a.tokens, kind="stable")
    b_order = np.argsort(b.tokens, kind="stable")
    a_tok, b_tok = a.tokens[a_order], b.tokens[b_order]
    shared = np.intersect1d(a_tok, b_tok, assume_unique=False)
    a_lo, a_hi = np.searchsorted(a_tok, shared, "left"), np.searchsorted(a_tok, shared, "right")
    b_lo, b_hi = np.searchsorted(b_tok, shared, "left"), np.searchsorted(b_tok, shared, "right")
    a_rows = np.asarray(a.rows, dtype=np.float64)  # a stored file (one block): read whole
    b_rows = np.asarray(b.rows, dtype=np.float64)
    for s in range(len(shared)):
        ia = a_order[a_lo[s] : a_hi[s]]
        ib = b_order[b_lo[s] : b_hi[s]]
        # rows of one token are distinct examples within a side, so fancy-index += is safe
        out[np.ix_(a_ex[ia], b_ex[ib])] += a_rows[ia] @ b_rows[ib].T
    return out


def _score_we(spec: Method, train: Gradients, query: Gradients, n_params: int, damping: float) -> np.ndarray:
    """[n, m] scores of the word embedding from its sparse rows (exact: no dense [vocab, hidden])."""
    assert train.we is not None and query.we is not None
    a, b = (spec.we_rows(train), spec.we_rows(query)) if spec.we_rows is not None else (train.we, query.we)
    if spec.from_products is None:
        assert spec.from_sparse is not None
        return spec.from_sparse(a, b, n_params, damping)
    gram: np.ndarray | SparseGram | None = None
    if spec.needs_gram and len(a.blocks()) > 1:  # stored rows: never the whole [n, n]
        gram = SparseGram(a)
        train_sq = gram.diagonal()
    elif spec.needs_gram:
        gram = sparse_inner(a, a)
        train_sq = np.diag(gram).copy()
    else:
        train_sq = a.norms_sq()
    return spec.from_products(Products(sparse_inner(a, b), train_sq, b.norms_sq(), gram, n_params), damping)


def compute_scores(
    train: Gradients,
    query: Gradients,
    method: str,
    *,
    datainf_lambda: float = 0.1,
    out_dtype: type = np.float32,
    train_ids: np.ndarray | None = None,
    query_ids: np.ndarray | None = None,
    progress: bool = True,
) -> ModuleScores:
    """Per-module scores of `method` for every module the method covers.

    Every LoRA tensor and head tensor, and the word embedding (if collected and the method can
    score it: the inner-product methods and those with a sparse scorer); a word-embedding-only
    method (tracin_we, tracin_we_top10) scores the word embedding alone.
    """
    spec = methods.get(method)
    if spec.we_only and (train.we is None or query.we is None):
        raise ValueError(f"method={method!r} needs word-embedding gradients; collect them with with_we=True")
    if spec.we_only:
        infos = [i for i in train.infos if i.kind == "we"]
    else:
        infos = [i for i in train.infos if i.kind != "we" or (train.we is not None and spec.scores_we)]
    values = np.empty((len(infos), len(train), len(query)), dtype=out_dtype)
    for row, info in enumerate(tqdm(infos, desc=f"influence {method}", disable=not progress, leave=False)):
        if info.kind == "we":
            values[row] = _score_we(spec, train, query, info.n_params, datainf_lambda)
        else:
            values[row] = _score_dense(spec, train.dense[info.name], query.dense[info.name], datainf_lambda)
    return ModuleScores(
        values=values,
        modules=tuple(infos),
        n_layers=train.n_layers,
        method=method,
        train_ids=np.arange(len(train)) if train_ids is None else np.asarray(train_ids),
        query_ids=np.arange(len(query)) if query_ids is None else np.asarray(query_ids),
    )
