"""TracIn-WE (Yeh et al.): TracIn on the word-embedding matrix only, exact over the shared tokens."""

from __future__ import annotations

from layerinf.methods import Method, register
from layerinf.methods.tracin import from_products

register(
    Method(
        name="tracin_we",
        label="TracIn-WE",
        colour="tab:red",
        description="TracIn-WE (Yeh et al.): TracIn on the word-embedding matrix, summed over the shared tokens.",
        from_products=from_products,
        we_only=True,
        default=True,
    )
)
