"""Layer-wise figures: detection per module position, and the correlations between layer groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from layerinf.config import WE_ONLY_METHODS
from layerinf.plotting.style import COLOURS, MODULE_TYPES, _ci, _style, label


def layerwise_ndr(
    modules: pd.DataFrame,
    n_layers: int,
    *,
    aggregation: str = "mean",
    metric: str = "ndr@30",
    methods: Sequence[str] | None = None,
) -> Figure:
    """Layer-wise detection: x = WE, layer 0 … L−1, CL; one curve per LoRA module type; one panel per
    method; mean and 95 % interval over (task, seed). `modules` is `experiments.module_table` output."""
    _style()
    df = modules[(modules.aggregation == aggregation) & modules.kind.isin(["we", "cl", *MODULE_TYPES])].copy()
    methods = [m for m in (methods or df.method.unique()) if m in set(df.method) and m not in WE_ONLY_METHODS]
    # x position: WE at −1, layers 0..L−1, CL at L (head tensors pooled by mean per run)
    df["x"] = np.where(df.kind == "we", -1, np.where(df.kind == "cl", n_layers, df.layer.fillna(-1))).astype(int)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.6), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        sub = df[df.method == method]
        for kind in MODULE_TYPES:
            part = sub[sub.kind == kind]
            if len(part):
                sns.lineplot(
                    data=part,
                    x="x",
                    y=metric,
                    ax=ax,
                    color=COLOURS[kind],
                    label=label(kind),
                    errorbar=("ci", 95),
                    marker="o",
                    markersize=4,
                    legend=ax is axes[0][0],
                )
        for kind in ("we", "cl"):
            part = sub[sub.kind == kind].groupby(["task", "seed"])[metric].mean()
            if len(part):
                x = -1 if kind == "we" else n_layers
                lo, hi = _ci(part.to_numpy())
                ax.errorbar(
                    [x],
                    [part.mean()],
                    yerr=[[part.mean() - lo], [hi - part.mean()]],
                    fmt="s",
                    color=COLOURS[kind],
                    capsize=3,
                    label=label(kind) if ax is axes[0][0] else None,
                )
        ax.set_xticks(
            [-1, *range(n_layers), n_layers],
            ["WE", *map(str, range(n_layers)), "CL"],
            fontsize=8 if n_layers <= 12 else 6,
        )
        ax.set_title(label(method))
        ax.set_xlabel("module position (layer)")
        ax.set_ylabel(f"{metric.upper()} ({label(aggregation)})")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def correlation_heatmap(matrix: pd.DataFrame, title: str, labels_: Mapping[str, str] | None = None) -> Figure:
    _style()
    fig, ax = plt.subplots(figsize=(0.8 * len(matrix) + 2, 0.7 * len(matrix) + 1.2))
    names = [(labels_ or {}).get(c, label(c)) for c in matrix.columns]
    sns.heatmap(
        matrix,
        annot=True,
        fmt=".2f",
        vmin=-1,
        vmax=1,
        cmap="vlag",
        ax=ax,
        xticklabels=names,
        yticklabels=names,
        cbar_kws={"label": "Spearman ρ"},
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
