"""Detection figures: NDR curves and the share of noisy examples per score decile."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from layerinf import metrics
from layerinf.plotting.style import _TAB, _style


def ndr_curves(
    curves: Mapping[str, np.ndarray], noise_rate: float, colours: Mapping[str, object] | None = None
) -> Figure:
    """NDR(t) against the fraction of training examples inspected, lowest score first."""
    _style()
    fig, ax = plt.subplots(figsize=(5.2, 4))
    for name, curve in curves.items():
        x = np.arange(1, len(curve) + 1) / len(curve)
        ax.plot(100 * x, 100 * curve, label=name, color=(colours or {}).get(name))
    x = np.linspace(0, 1, 101)
    ax.plot(100 * x, 100 * x, color="grey", ls=":", label="random")
    ax.plot(100 * x, 100 * np.minimum(1, x / noise_rate), color="black", ls="--", lw=0.8, label="ideal")
    ax.axvline(30, color="grey", lw=0.6)
    ax.set_xlabel("training examples inspected (%)")
    ax.set_ylabel("noisy examples found (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def noise_histograms(scores: Mapping[str, np.ndarray], noisy: np.ndarray, n_bins: int = 10) -> Figure:
    """Fraction of noisy examples in each score decile (decile 1 = lowest scores), one panel per
    setup, titled with the AUC-NDR."""
    _style()
    fig, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores), 3), sharey=True, squeeze=False)
    for ax, (name, score) in zip(axes[0], scores.items(), strict=True):
        order = metrics.inspection_order(score)
        bins = np.array_split(order, n_bins)
        frac = [noisy[b].mean() for b in bins]
        ax.bar(np.arange(1, n_bins + 1), frac, color=_TAB[0])
        ax.axhline(noisy.mean(), color="grey", ls=":", lw=1)
        ax.set_title(f"{name}\nAUC-NDR = {metrics.auc_ndr(score, noisy):.3f}", fontsize=9)
        ax.set_xlabel("score decile (1 = most harmful)")
    axes[0][0].set_ylabel("fraction of noisy examples")
    fig.tight_layout()
    return fig
