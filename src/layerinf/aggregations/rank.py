"""Rank: the mean over the columns c = (module, selected query) of r_c(i), example i's position in
the column sorted ascending (0 = most harmful; ties broken stably, lower example index first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.aggregations import Aggregation, register

if TYPE_CHECKING:
    import numpy as np

    from layerinf.aggregation import Selection


def rank(selection: Selection) -> np.ndarray:
    """Σ_c r_c(i) / columns, from the arg-sort shared with Vote."""
    import numpy as np

    return selection.rank_sums().astype(np.float64) / selection.n_columns


register(
    Aggregation(
        name="rank",
        label="Rank",
        colour="tab:cyan",
        description="Mean over (module, correct query) columns of each example's position in the ascending column.",
        compute=rank,
        statistics=("ranks",),
        default=True,
    )
)
