"""TracIn-WE-top-k (Yeh et al.): TracIn-WE on each example's `TOP_K_TOKENS` strongest embedding rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.methods import Method, register
from layerinf.methods.tracin import from_products

if TYPE_CHECKING:
    from layerinf.gradient_types import Gradients, SparseRows

TOP_K_TOKENS = 10


def top_rows(grads: Gradients) -> SparseRows:
    """Each example's `TOP_K_TOKENS` rows with the largest norm per occurrence of their token."""
    assert grads.we is not None and grads.token_counts is not None
    return grads.we.top_k(TOP_K_TOKENS, grads.token_counts)


register(
    Method(
        name="tracin_we_top10",
        label="TracIn-WE-top10",
        colour="tab:purple",
        description=(
            f"TracIn-WE on each example's {TOP_K_TOKENS} embedding rows with the largest norm per token occurrence."
        ),
        from_products=from_products,
        we_only=True,
        we_rows=top_rows,
        default=True,
    )
)
