"""Influence of training on query examples, per module: TracIn, cosine, DataInf, TracIn-WE(-top-k).

Every method is computed from inner products alone — D = ⟨g_i, v_j⟩ [n, m], the squared norms of
g_i and v_j, and for DataInf the training Gram matrix K = ⟨g_i, g_k⟩ [n, n] — so dense LoRA/head
tensors and the sparse word-embedding gradients share one code path (`_from_products`), and
DataInf is available for every module, including the word embedding.

Sign convention: larger = more beneficial (a training example whose gradient agrees with the
query's gradient lowers the query loss when trained on).
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from layerinf.config import METHODS, WE_ONLY_METHODS, ConfigError, allowed
from layerinf.gradients import Gradients, SparseRows
from layerinf.scores import ModuleInfo, ModuleScores

#: DataInf in the paper is computed only for tensors with fewer entries than this (we compute it
#: for all modules and mark the ones the paper left out).
PAPER_DATAINF_MAX_PARAMS = 100_000
TOP_K_TOKENS = 10
#: Size of the float64 copy of gradient columns `pairwise` makes at a time (the inputs stay float32).
CONVERT_BLOCK_BYTES = 64 * 2**20


def paper_excluded(info: ModuleInfo, method: str) -> bool:
    """True for the (method, module) pairs the paper did not compute (DataInf on big tensors)."""
    return method == "datainf" and info.n_params >= PAPER_DATAINF_MAX_PARAMS


def _from_products(
    method: str,
    dots: np.ndarray,
    train_sq: np.ndarray,
    query_sq: np.ndarray,
    gram: np.ndarray | None,
    n_params: int,
    datainf_lambda: float,
) -> np.ndarray:
    """[n, m] scores of one module from its inner products (float64 in, float64 out)."""
    if method in ("tracin", "tracin_we", "tracin_we_top10"):
        return dots
    if method == "cosine":
        denom = np.sqrt(train_sq)[:, None] * np.sqrt(query_sq)[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
    assert method == "datainf" and gram is not None
    n = len(train_sq)
    lam = datainf_lambda * float(train_sq.sum()) / (n * n_params)
    if lam == 0.0:  # all gradients zero: no influence at all
        return np.zeros_like(dots)
    # I = (1/λ)·D − 1/(nλ) · K · (D / (λ + ‖g_k‖²))
    return dots / lam - gram @ (dots / (lam + train_sq)[:, None]) / (n * lam)


def pairwise(
    train_grads: np.ndarray, query_grads: np.ndarray, method: str, *, datainf_lambda: float = 0.1
) -> np.ndarray:
    """Scores [n, m] of `method` between dense per-example gradients [n, p] and [m, p] of one module.

    tracin: ⟨v_j, g_i⟩. cosine: ⟨v_j, g_i⟩ / (‖v_j‖ ‖g_i‖) (0 where a norm is 0). datainf:
    (1/λ)⟨v, g_i⟩ − 1/(nλ) Σ_k ⟨v, g_k⟩⟨g_k, g_i⟩ / (λ + ‖g_k‖²) with λ = `datainf_lambda` × the
    mean squared entry of the training gradients.
    """
    allowed("method", method, ("tracin", "cosine", "datainf"))
    if train_grads.ndim != 2 or query_grads.ndim != 2 or train_grads.shape[1] != query_grads.shape[1]:
        raise ConfigError(
            f"train_grads {train_grads.shape} and query_grads {query_grads.shape} must be [n, p] and [m, p]"
        )
    with np.errstate(invalid="ignore"):  # only non-finite inputs make invalid products: refused below
        dots, train_sq, query_sq, gram = _products(
            train_grads, query_grads, with_norms=method != "tracin", with_gram=method == "datainf"
        )
    # A NaN or inf entry of either input makes a whole row or column of the products non-finite, so
    # the [n, m] products are checked and the [n, p] inputs (a pass as long as the product's own
    # memory traffic) only counted when something is wrong.
    if dots.size == 0 or not np.isfinite(dots).all():
        for name, g in (("train_grads", train_grads), ("query_grads", query_grads)):
            bad = g.size - int(np.count_nonzero(np.isfinite(g)))
            if bad:
                raise ConfigError(f"{name} has {bad} non-finite entries (NaN or inf)")
    return _from_products(method, dots, train_sq, query_sq, gram, train_grads.shape[1], datainf_lambda)


def _products(
    t: np.ndarray, q: np.ndarray, *, with_norms: bool, with_gram: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Inner products in float64: ⟨g_i, v_j⟩ [n, m]; ‖g_i‖² [n] and ‖v_j‖² [m] (zeros unless
    `with_norms`); the Gram matrix ⟨g_i, g_k⟩ [n, n] if `with_gram` (else None).

    Float32 gradients are converted to float64 a slab of columns (parameters) at a time, into reused
    buffers of about `CONVERT_BLOCK_BYTES`, and the slab products summed: a float64 copy of a whole
    [n, p] module would double the memory of the largest module (and, freshly allocated, can cost
    more than the product itself). Column slabs — not row blocks — keep every matrix product as large
    as [n, m] (or [n, n]), so the multiply runs at full speed.
    """
    t, q = np.asarray(t), np.asarray(q)
    n, p = t.shape
    m = q.shape[0]
    train_sq, query_sq = np.zeros(n, dtype=np.float64), np.zeros(m, dtype=np.float64)
    if t.dtype == np.float64 and q.dtype == np.float64:
        if with_norms:
            train_sq, query_sq = np.einsum("ip,ip->i", t, t), np.einsum("jp,jp->j", q, q)
        return t @ q.T, train_sq, query_sq, (t @ t.T if with_gram else None)
    width = int(min(p, max(256, CONVERT_BLOCK_BYTES // (8 * max(n, 1)))))
    dots, part = np.zeros((n, m), dtype=np.float64), np.empty((n, m), dtype=np.float64)
    gram = gram_part = None
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
    return dots, train_sq, query_sq, gram


def sparse_inner(a: SparseRows, b: SparseRows) -> np.ndarray:
    """[len(a), len(b)] inner products of sparse embedding gradients: for every pair, the sum over
    the token ids the two examples share of the dot products of their rows (exact TracIn-WE)."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    a_ex, b_ex = a.example_index, b.example_index
    a_order = np.argsort(a.tokens, kind="stable")
    b_order = np.argsort(b.tokens, kind="stable")
    a_tok, b_tok = a.tokens[a_order], b.tokens[b_order]
    shared = np.intersect1d(a_tok, b_tok, assume_unique=False)
    a_lo, a_hi = np.searchsorted(a_tok, shared, "left"), np.searchsorted(a_tok, shared, "right")
    b_lo, b_hi = np.searchsorted(b_tok, shared, "left"), np.searchsorted(b_tok, shared, "right")
    a_rows = a.rows.astype(np.float64)
    b_rows = b.rows.astype(np.float64)
    for s in range(len(shared)):
        ia = a_order[a_lo[s] : a_hi[s]]
        ib = b_order[b_lo[s] : b_hi[s]]
        # rows of one token are distinct examples within a side, so fancy-index += is safe
        out[np.ix_(a_ex[ia], b_ex[ib])] += a_rows[ia] @ b_rows[ib].T
    return out


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

    tracin, cosine, datainf: every LoRA tensor, the word embedding (if collected) and every head
    tensor. tracin_we / tracin_we_top10: the word embedding only (top-k keeps each example's
    `TOP_K_TOKENS` rows with the largest norm per occurrence).
    """
    allowed("method", method, METHODS)
    if method in WE_ONLY_METHODS and (train.we is None or query.we is None):
        raise ValueError(f"method={method!r} needs word-embedding gradients; collect them with with_we=True")
    if method in WE_ONLY_METHODS:
        infos = [i for i in train.infos if i.kind == "we"]
    else:
        infos = [i for i in train.infos if i.kind != "we" or train.we is not None]
    values = np.empty((len(infos), len(train), len(query)), dtype=out_dtype)
    for row, info in enumerate(tqdm(infos, desc=f"influence {method}", disable=not progress, leave=False)):
        if info.kind == "we":
            a, b = train.we, query.we
            if method == "tracin_we_top10":
                a = a.top_k(TOP_K_TOKENS, train.token_counts)
                b = b.top_k(TOP_K_TOKENS, query.token_counts)
            gram = sparse_inner(a, a) if method == "datainf" else None
            train_sq = np.diag(gram).copy() if gram is not None else a.norms_sq()
            values[row] = _from_products(
                method, sparse_inner(a, b), train_sq, b.norms_sq(), gram, info.n_params, datainf_lambda
            )
        else:
            values[row] = pairwise(
                train.dense[info.name], query.dense[info.name], method, datainf_lambda=datainf_lambda
            )
    return ModuleScores(
        values=values,
        modules=tuple(infos),
        n_layers=train.n_layers,
        method=method,
        train_ids=np.arange(len(train)) if train_ids is None else np.asarray(train_ids),
        query_ids=np.arange(len(query)) if query_ids is None else np.asarray(query_ids),
    )
