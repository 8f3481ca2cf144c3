"""One colour and one name per method, aggregation, group, module type and baseline, on every page
(`COLOURS`, `LABELS`), and the shared look of the figures. Methods and aggregations take theirs
from their registries (`layerinf.methods`, `layerinf.aggregations`): a new one is labelled and
coloured by its own file.

The figure standard of the book: every figure is `FIG_WIDTH` inches wide (the text column; heights
as the content needs), drawn at `DPI` (so its PNG is at least 1,100 px wide and is shown scaled
down, never up), with every text at least `MIN_FONT` pt. `_figure` makes such a figure with
constrained layout (legends placed outside the axes stay inside the figure); `_fit_xticklabels`
wraps, then rotates, category labels that would overlap."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

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


#: Width of every figure (inches): the book's text column. Shown at ~730 CSS px, a font of s pt
#: drawn at `DPI` appears at about 1.35·s px.
FIG_WIDTH = 7.5
#: Resolution of the figures (inline display and saved files): FIG_WIDTH · DPI = 1,125 px.
DPI = 150
#: Smallest font size (pt, figure units) of any text in a figure.
MIN_FONT = 9.0
#: Font sizes (pt) of the figures' text; `_style` puts them in the rcParams.
FONT = {"tick": 10.0, "label": 10.5, "title": 11.0, "legend": 10.0, "annot": 9.5}
#: Marker and line style per module type (the layer-wise curves), so curves differ without colour.
MODULE_STYLES: dict[str, tuple[str, str]] = {
    "query_A": ("o", "-"),
    "query_B": ("s", "--"),
    "value_A": ("^", "-."),
    "value_B": ("D", ":"),
}


def _style() -> None:
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        rc={
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "figure.figsize": (FIG_WIDTH, 4.0),
            "font.size": FONT["label"],
            "axes.labelsize": FONT["label"],
            "axes.titlesize": FONT["title"],
            "figure.titlesize": FONT["title"],
            "figure.labelsize": FONT["label"],
            "xtick.labelsize": FONT["tick"],
            "ytick.labelsize": FONT["tick"],
            "legend.fontsize": FONT["legend"],
            "legend.title_fontsize": FONT["legend"],
        },
    )


def _figure(height: float, nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[Figure, np.ndarray]:
    """A FIG_WIDTH × `height` figure of nrows × ncols axes (always a 2-D array), constrained layout."""
    _style()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(FIG_WIDTH, height), dpi=DPI, layout="constrained", squeeze=False, **kwargs
    )
    return fig, axes


def _legend_above(fig: Figure, handles: Sequence, labels: Sequence[str], ncol: int) -> None:
    """The figure's legend in a band above its axes (outside the data)."""
    fig.legend(handles, labels, loc="outside upper center", ncol=max(1, min(ncol, len(labels))), frameon=False)


def _legend_right(ax: Axes, handles: Sequence | None = None, labels: Sequence[str] | None = None, **kwargs) -> None:
    """The axes' legend to the right of its data (constrained layout makes room)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False, **kwargs)


def _clip_unit(ax: Axes, axis: str = "y") -> None:
    """Limit an axis showing a fraction to [0, 1] (its autoscaled range within it)."""
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    lo, hi = max(0.0, lo), min(1.0, hi)
    if hi <= lo:
        lo, hi = 0.0, 1.0
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


def _overlapping(fig: Figure, labels: Sequence, pad_px: float = 2.0) -> bool:
    """Whether any two of these (drawn) Text artists overlap horizontally or come closer than `pad_px`."""
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
    return any(
        a.x0 < b.x1 + pad_px and b.x0 < a.x1 + pad_px and a.y0 < b.y1 and b.y0 < a.y1
        for a, b in itertools.combinations(boxes, 2)
    )


def _fit_xticklabels(fig: Figure, axes: Sequence[Axes], ticks: Sequence[float], labels: Sequence[str]) -> None:
    """Category labels on the x axes that never overlap: as they are if they fit, else wrapped at
    spaces, else wrapped and rotated 30°."""
    labels = [str(t) for t in labels]
    for attempt in ("plain", "wrap", "rotate"):
        shown = labels
        if attempt != "plain":
            width = max(6, max((len(t) for t in labels), default=6) // 2 + 1)
            shown = [textwrap.fill(t, width, break_long_words=False) for t in labels]
        for ax in axes:
            ax.set_xticks(ticks, shown)
            if attempt == "rotate":
                ax.tick_params(axis="x", labelrotation=30)
                for t in ax.get_xticklabels():
                    t.set_horizontalalignment("right")
                    t.set_rotation_mode("anchor")
        fig.draw_without_rendering()
        if not any(_overlapping(fig, ax.xaxis.get_majorticklabels()) for ax in axes):
            return


def _ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval of the mean (t quantile for small samples)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)
