"""DataInf (Kwon et al.), signed so that larger = more beneficial:

    I(i, j) = (1/λ)⟨v_j, g_i⟩ − 1/(nλ) Σ_k ⟨v_j, g_k⟩⟨g_k, g_i⟩ / (λ + ‖g_k‖²),

with λ = damping × the mean squared entry of the module's training gradients. Everything is an
inner product, so it is computed from D, the norms and the Gram matrix, on every module including
the word embedding. The paper computes DataInf only for tensors with fewer than `PAPER_MAX_PARAMS`
entries; this project computes it everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.methods import Method, Products, register

if TYPE_CHECKING:
    import numpy as np

#: The paper's size limit for DataInf (the benchmark of `influence.pairwise` restricts itself the same way).
PAPER_MAX_PARAMS = 100_000


def with_lambda(products: Products, lam: float) -> np.ndarray:
    """DataInf at an absolute damping `lam` > 0 (the teaching chapter sweeps it)."""
    n = len(products.train_sq)
    dots, gram = products.dots, products.gram
    assert gram is not None
    # I = (1/λ)·D − 1/(nλ) · K · (D / (λ + ‖g_k‖²))
    return dots / lam - gram @ (dots / (lam + products.train_sq)[:, None]) / (n * lam)


def from_products(products: Products, damping: float) -> np.ndarray:
    """DataInf with λ = `damping` × mean squared gradient entry; all zeros if every gradient is zero."""
    import numpy as np

    n = len(products.train_sq)
    lam = damping * float(products.train_sq.sum()) / (n * products.n_params)
    if lam == 0.0:  # all gradients zero: no influence at all
        return np.zeros_like(products.dots)
    return with_lambda(products, lam)


register(
    Method(
        name="datainf",
        label="DataInf",
        colour="tab:green",
        description=(
            "DataInf (Kwon et al.): the inverse damped empirical Fisher approximated by the mean of rank-one inverses."
        ),
        from_products=from_products,
        needs_norms=True,
        needs_gram=True,
        default=True,
    )
)
