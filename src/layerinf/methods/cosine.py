"""Cosine similarity of the gradients: I(i, j) = ⟨g_i, v_j⟩ / (‖g_i‖ ‖v_j‖), 0 where a norm is 0."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.methods import Method, Products, register

if TYPE_CHECKING:
    import numpy as np


def from_products(products: Products, damping: float) -> np.ndarray:
    """Normalised inner products; discards how badly each example is fitted (its gradient norm)."""
    import numpy as np

    denom = np.sqrt(products.train_sq)[:, None] * np.sqrt(products.query_sq)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, products.dots / np.where(denom > 0, denom, 1.0), 0.0)


register(
    Method(
        name="cosine",
        label="Cosine",
        colour="tab:orange",
        description="Cosine similarity of the training and query gradients (TracIn without the gradient norms).",
        from_products=from_products,
        needs_norms=True,
        default=True,
    )
)
