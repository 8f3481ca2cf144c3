"""Figures of the book. One colour and one name per method, group, module type and aggregation, on
every page (`COLOURS`, `LABELS`, from the registries for methods and aggregations); every function
labels its axes and returns the Figure.

One module per family of figures — `layerwise`, `retraining`, `comparisons`, `detection`, `costs`
— and `style` for the names, colours and look they share (every figure `FIG_WIDTH` inches wide at
`DPI`, no text under `MIN_FONT` pt); everything is re-exported here
(``from layerinf import plotting; plotting.layerwise_ndr(...)``).
"""

from __future__ import annotations

from layerinf.plotting.comparisons import comparisons_forest, counterexample_sweep, runs_lines, scatter_with_rho
from layerinf.plotting.costs import gradient_costs, retrain_packs, scaling
from layerinf.plotting.detection import ndr_curves, noise_histograms
from layerinf.plotting.layerwise import correlation_heatmap, layerwise_ndr
from layerinf.plotting.retraining import aggregation_differences, retraining_boxes, vote_k_heatmap
from layerinf.plotting.style import (
    COLOURS,
    DPI,
    FIG_WIDTH,
    LABELS,
    MIN_FONT,
    MODULE_TYPES,
    OUTCOME_COLOURS,
    UNITS,
    label,
)

__all__ = [
    "COLOURS",
    "DPI",
    "FIG_WIDTH",
    "LABELS",
    "MIN_FONT",
    "MODULE_TYPES",
    "OUTCOME_COLOURS",
    "UNITS",
    "aggregation_differences",
    "comparisons_forest",
    "correlation_heatmap",
    "counterexample_sweep",
    "gradient_costs",
    "label",
    "layerwise_ndr",
    "ndr_curves",
    "noise_histograms",
    "retrain_packs",
    "retraining_boxes",
    "runs_lines",
    "scaling",
    "scatter_with_rho",
    "vote_k_heatmap",
]
