"""Vote: −Σ_c max(k − r_c(i), 0) over the columns c = (module, selected query): each column hands
k points to its most harmful example, k − 1 to the next, …; default k = round(0.2·n), at least 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerinf.aggregations import Aggregation, register

if TYPE_CHECKING:
    import numpy as np

    from layerinf.aggregation import Selection


def vote(selection: Selection) -> np.ndarray:
    """Minus the points, so that the most voted-against examples score lowest."""
    return 0.0 - selection.vote_sums()  # (0 − x keeps +0.0 for examples without points)


register(
    Aggregation(
        name="vote",
        label="Vote",
        colour="tab:pink",
        description="Each (module, correct query) column gives k points to its most harmful example, k − 1 to the next",
        compute=vote,
        uses_k=True,
        statistics=("votes",),
        default=True,
    )
)
