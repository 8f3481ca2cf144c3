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

from layerinf.config import METHODS, WE_ONLY_METHODS, allowed
from layerinf.gradients import Gradients, SparseRows
from layerinf.scores import ModuleInfo, ModuleScores

#: DataInf in the paper is computed only for tensors with fewer entries than this (we compute it
#: for all modules and mark the ones the paper left out).
PAPER_DATAINF_MAX_PARAMS = 100_000
TOP_K_TOKENS = 10


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
        raise ValueError(f"need [n, p] and [m, p] gradients, got {train_grads.shape} and {query_grads.shape}")
    t = np.asarray(train_grads, dtype=np.float64)
    q = np.asarray(query_grads, dtype=np.float64)
    gram = t @ t.T if method == "datainf" else None
    train_sq = np.einsum("ip,ip->i", t, t)
    return _from_products(method, t @ q.T, train_sq, np.einsum("jp,jp->j", q, q), gram, t.shape[1], datainf_lambda)


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
