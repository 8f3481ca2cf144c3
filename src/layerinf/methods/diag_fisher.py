"""TracIn preconditioned by the diagonal empirical Fisher of the module's training gradients:

    I(i, j) = ⟨g_i, v_j / (F + λ)⟩,   F_p = (1/n) Σ_i g_ip²,   λ = damping × mean_p F_p,

per parameter p of the module. The cheapest curvature correction: parameters whose gradients are
large for every training example (which dominate TracIn's inner products) count less. mean_p F_p
is the mean squared entry of the training gradients, so λ is exactly DataInf's λ at the same
``datainf_lambda``. All zeros if every training gradient is zero (λ = 0).

Exact on the sparse word-embedding rows too: F is zero on the rows of tokens no training example
contains, and there g_i is zero as well, so only the rows the examples have are ever touched.
Not in any default grid (`default=False`): the book's tables do not depend on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.methods import Method, register

if TYPE_CHECKING:
    import numpy as np

    from layerinf.gradient_types import SparseRows

#: Bytes of the float64 column slabs converted at a time (float32 gradients stay float32 in memory).
SLAB_BYTES = 64 * 2**20


def from_gradients(train: np.ndarray, query: np.ndarray, damping: float) -> np.ndarray:
    """[n, m] scores of dense gradients [n, p], [m, p], computed in float64 column slabs."""
    import numpy as np

    n, p = train.shape
    out = np.zeros((n, query.shape[0]), dtype=np.float64)
    if n == 0 or p == 0:
        return out
    width = int(min(p, max(256, SLAB_BYTES // (8 * n))))
    fisher = np.empty(p, dtype=np.float64)
    for lo in range(0, p, width):
        block = np.asarray(train[:, lo : lo + width], dtype=np.float64)
        fisher[lo : lo + width] = np.einsum("ip,ip->p", block, block) / n
    lam = damping * float(fisher.sum()) / p
    if lam == 0.0:
        return out
    for lo in range(0, p, width):
        block = np.asarray(train[:, lo : lo + width], dtype=np.float64)
        scaled = np.asarray(query[:, lo : lo + width], dtype=np.float64) / (fisher[lo : lo + width] + lam)
        out += block @ scaled.T
    return out


def from_sparse(train: SparseRows, query: SparseRows, n_params: int, damping: float) -> np.ndarray:
    """[n, m] scores of sparse word-embedding gradients (`n_params` = vocabulary × hidden)."""
    import numpy as np

    from layerinf.gradient_types import SparseRows
    from layerinf.influence import sparse_inner

    out = np.zeros((len(train), len(query)), dtype=np.float64)
    if len(train) == 0:
        return out
    rows = np.asarray(train.rows, dtype=np.float64)  # the sparse rows of all examples (a stored file: read whole)
    tokens, where = np.unique(train.tokens, return_inverse=True)
    fisher = np.zeros((len(tokens), rows.shape[1]), dtype=np.float64)
    np.add.at(fisher, where, rows * rows)  # rows of one example have distinct tokens: Σ_i g_i[t]²
    fisher /= len(train)
    lam = damping * float(fisher.sum()) / n_params
    if lam == 0.0:  # every training row is zero
        return out
    # F of each query row's token (0 for a token no training example has: it meets no g_i anyway).
    pos = np.minimum(np.searchsorted(tokens, query.tokens), len(tokens) - 1)
    curvature = np.where((tokens[pos] == query.tokens)[:, None], fisher[pos], 0.0)
    scaled = SparseRows(
        query.offsets, query.tokens, np.asarray(query.rows, dtype=np.float64) / (curvature + lam), query.vocab_size
    )
    return sparse_inner(train, scaled)


register(
    Method(
        name="diag_fisher",
        label="TracIn (diagonal Fisher)",
        colour="teal",
        description=(
            "TracIn preconditioned by the damped diagonal empirical Fisher of the module's training gradients."
        ),
        from_gradients=from_gradients,
        from_sparse=from_sparse,
    )
)
