"""One colour and one name per method, aggregation, group, module type and baseline, on every page
(`COLOURS`, `LABELS`), and the shared look of the figures. Methods and aggregations take theirs
from their registries (`layerinf.methods`, `layerinf.aggregations`): a new one is labelled and
coloured by its own file."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.colors import to_rgb

from layerinf import aggregations, methods

_TAB = plt.get_cmap("tab10").colors
LABELS: dict[str, str] = {
    **{m.name: m.label for m in methods.specs()},
    **{a.name: a.label for a in aggregations.specs()},
    "query_A": "Query A",
    "query_B": "Query B",
    "value_A": "Value A",
    "value_B": "Value B",
    "we": "WE",
    "cl": "CL",
    "all": "all",
    "random": "Random",
    "oracle": "Oracle",
    "none": "No removal",
    "none_reseed": "No removal, other dropout seed",
}
COLOURS: dict[str, tuple[float, float, float]] = {
    **{m.name: to_rgb(m.colour) for m in methods.specs()},
    **{a.name: to_rgb(a.colour) for a in aggregations.specs()},
    "query_A": _TAB[0],
    "query_B": _TAB[9],
    "value_A": _TAB[3],
    "value_B": _TAB[1],
    "we": _TAB[2],
    "cl": _TAB[4],
    "random": (0.4, 0.4, 0.4),
    "oracle": (0.1, 0.6, 0.1),
    "none": (0.6, 0.2, 0.2),
}
MODULE_TYPES = ("query_A", "query_B", "value_A", "value_B")


OUTCOME_COLOURS = {"supports": (0.13, 0.55, 0.13), "opposes": (0.75, 0.15, 0.15), "undecided": (0.45, 0.45, 0.45)}


#: How each `stats.Comparison.unit` is drawn: scale and axis label.
UNITS: dict[str, tuple[float, str]] = {
    "accuracy": (100.0, "difference in accuracy (points)"),
    "ndr": (100.0, "difference in NDR@30 (points)"),
    "rho": (1.0, "Spearman ρ"),
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def _style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)


def _ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval of the mean (t quantile for small samples)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)
