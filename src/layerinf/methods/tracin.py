"""TracIn at one checkpoint, without the learning-rate factor: I(i, j) = ⟨g_i, v_j⟩."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.methods import Method, Products, register

if TYPE_CHECKING:
    import numpy as np


def from_products(products: Products, damping: float) -> np.ndarray:
    """The inner products themselves (no damping)."""
    return products.dots


register(
    Method(
        name="tracin",
        label="TracIn",
        colour="tab:blue",
        description="TracIn (Pruthi et al.), final checkpoint: the inner product of the training and query gradients",
        from_products=from_products,
        default=True,
    )
)
