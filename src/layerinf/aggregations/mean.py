"""Mean: the mean of the scores over all modules and *all* queries (the query mask is ignored)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.aggregations import Aggregation, register

if TYPE_CHECKING:
    import numpy as np

    from layerinf.aggregation import Selection


def mean(selection: Selection) -> np.ndarray:
    """Σ_l Σ_j values[l, i, j] / (modules · m), summing over modules first."""
    return selection.module_sums().sum(axis=1) / (selection.n_modules * selection.m)


register(
    Aggregation(
        name="mean",
        label="Mean",
        colour="tab:gray",
        description="Mean of the scores over all modules and all queries.",
        compute=mean,
        uses_query_mask=False,
        default=True,
    )
)
