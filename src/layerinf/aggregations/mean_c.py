"""mean_c: the mean over all modules and the *correctly predicted* queries only (``query_mask``).

The control of claim 3: it drops the wrongly predicted queries as Rank and Vote do, without
ranking, and so separates "ranking" from "dropping the wrong queries".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.aggregations import Aggregation, register

if TYPE_CHECKING:
    import numpy as np

    from layerinf.aggregation import Selection


def mean_c(selection: Selection) -> np.ndarray:
    """Σ_l Σ_{j selected} values[l, i, j] / (modules · selected queries)."""
    queries = selection.queries
    return selection.module_sums()[:, queries].sum(axis=1) / (selection.n_modules * queries.size)


register(
    Aggregation(
        name="mean_c",
        label="Mean (correct queries)",
        colour="tab:brown",
        description="Mean over all modules and the correctly predicted queries only (the control of Rank and Vote).",
        compute=mean_c,
        default=True,
    )
)
