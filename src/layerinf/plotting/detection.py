"""Detection figures: NDR curves and the share of noisy examples per score decile."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from layerinf import metrics
from layerinf.plotting.style import _TAB, _figure, _legend_right

#: Line styles cycled over the curves of `ndr_curves`, so that curves differ without colour (none
#: of them dotted or short-dashed: those are the random and the ideal order).
_LINE_STYLES = ("-", "-.", (0, (8, 2)), (0, (5, 1.5, 1, 1.5, 1, 1.5)))


def ndr_curves(
    curves: Mapping[str, np.ndarray], noise_rate: float, colours: Mapping[str, object] | None = None
) -> Figure:
    """NDR(t) against the fraction of training examples inspected, lowest score first (both axes in
    %, within [0, 100]); the legend right of the data."""
    fig, axes = _figure(4.4)
    ax = axes[0, 0]
    for i, (name, curve) in enumerate(curves.items()):
        x = np.arange(1, len(curve) + 1) / len(curve)
        ax.plot(100 * x, 100 * curve, label=name, color=(colours or {}).get(name), ls=_LINE_STYLES[i % 4], lw=1.6)
    x = np.linspace(0, 1, 101)
    ax.plot(100 * x, 100 * x, color="grey", ls=":", lw=1.4, label="random")
    ax.plot(100 * x, 100 * np.minimum(1, x / noise_rate), color="black", ls="--", lw=1, label="ideal")
    ax.axvline(30, color="grey", lw=0.8)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("training examples inspected (%)")
    ax.set_ylabel("noisy examples found (%)")
    _legend_right(ax)
    return fig


def noise_histograms(scores: Mapping[str, np.ndarray], noisy: np.ndarray, n_bins: int = 10) -> Figure:
    """Fraction of noisy examples in each score decile (decile 1 = lowest scores), one panel per
    setup (two per row), titled with the AUC-NDR; the dotted line is the overall noise rate."""
    n = max(1, len(scores))
    ncols = 1 if n == 1 else 2
    nrows = -(-n // ncols)
    fig, axes = _figure((2.7 if ncols == 2 else 3.2) * nrows + 0.4, nrows, ncols, sharey=True)
    flat = axes.ravel()
    top = 0.0
    for ax, (name, score) in zip(flat, scores.items(), strict=False):
        order = metrics.inspection_order(score)
        bins = np.array_split(order, n_bins)
        frac = [noisy[b].mean() for b in bins]
        top = max(top, *frac, noisy.mean())
        ax.bar(np.arange(1, n_bins + 1), frac, color=_TAB[0])
        ax.axhline(noisy.mean(), color="0.3", ls=":", lw=1.4)
        ax.set_title(f"{name}\nAUC-NDR = {metrics.auc_ndr(score, noisy):.3f}")
        ax.set_xticks(np.arange(1, n_bins + 1))
    for ax in flat[len(scores) :]:
        ax.set_visible(False)
    flat[0].set_ylim(0, min(1.0, np.ceil(10 * top + 0.5) / 10))  # a fraction: within [0, 1]
    fig.supxlabel("score decile (1 = most harmful)")
    fig.supylabel("fraction of noisy examples")
    return fig
