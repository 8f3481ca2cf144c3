"""Retraining figures: accuracy after removal per layer group, the aggregation differences, and
the Vote-k heat-map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from layerinf.plotting.style import _TAB, COLOURS, _style, label


def retraining_boxes(
    retraining: pd.DataFrame,
    *,
    aggregation: str = "mean",
    value: str = "acc_selected",
    group_order: Sequence[str] = ("we", "block1", "block2", "block3", "block4", "cl", "all"),
    group_labels: Mapping[str, str] | None = None,
    noise_floor: float | None = None,
) -> Figure:
    """Accuracy after removal + retraining, *relative to no removal in the same run* (points), per
    (method, layer group) as box plots over runs; Random and Oracle as dashed lines (their mean
    paired change); ± `noise_floor` (accuracy units) shaded around 0: what another dropout seed
    alone changes. Pairing within runs takes the differences between tasks out of the picture."""
    _style()
    run = ["model", "task", "seed"]
    none = retraining[retraining.setup == "none"].set_index(run)[value].rename("none_value")
    rel = retraining.join(none, on=run)
    rel = rel.assign(change=100 * (rel[value] - rel["none_value"])).dropna(subset=["change"])
    df = rel[rel.aggregation == aggregation]
    groups = [g for g in group_order if g in set(df.group)]
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(groups) + 2.5), 4.2))
    if noise_floor is not None and np.isfinite(noise_floor):
        ax.axhspan(-100 * noise_floor, 100 * noise_floor, color="0.85", zorder=0)
    ax.axhline(0, color=COLOURS["none"], lw=1.2)
    sns.boxplot(
        data=df,
        x="group",
        y="change",
        hue="method",
        order=groups,
        ax=ax,
        palette={m: COLOURS.get(m, _TAB[8]) for m in df.method.unique()},
        fliersize=2,
    )
    for base in ("random", "oracle"):
        rows = rel[rel.setup == base]
        if len(rows):
            ax.axhline(rows["change"].mean(), color=COLOURS[base], ls="--", lw=1.2, label=f"{label(base)} (mean)")
    handles, labels_ = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color=COLOURS["none"], lw=1.2))
    labels_.append("no removal (0)")
    if noise_floor is not None and np.isfinite(noise_floor):
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.85"))
        labels_.append("dropout noise floor (±)")
    ax.legend(handles, [label(x) for x in labels_], fontsize=8, ncol=3, loc="lower left")
    names = group_labels or {}
    ax.set_xticks(range(len(groups)), [names.get(g, label(g)) for g in groups])
    ax.set_xlabel("layer group whose scores chose the removed 30 %")
    ax.set_ylabel("accuracy change vs no removal (points)")
    fig.tight_layout()
    return fig


_AGG_DIFF_COLOURS = {"Rank − Mean": COLOURS["rank"], "Vote − Mean": COLOURS["vote"], "mean_c − Mean": COLOURS["mean_c"]}


def aggregation_differences(diffs: pd.DataFrame, group_labels: Mapping[str, str] | None = None) -> Figure:
    """Rank − Mean, Vote − Mean (and mean_c − Mean, the control) accuracy differences per layer group
    (points: runs; diamonds: mean with a 95 % interval over runs)."""
    _style()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.stripplot(
        data=diffs,
        x="group",
        y="difference",
        hue="comparison",
        dodge=True,
        alpha=0.55,
        ax=ax,
        palette=_AGG_DIFF_COLOURS,
        legend=False,
    )
    sns.pointplot(
        data=diffs,
        x="group",
        y="difference",
        hue="comparison",
        dodge=0.4,
        linestyle="none",
        errorbar=("ci", 95),
        ax=ax,
        markers="D",
        palette=_AGG_DIFF_COLOURS,
    )
    ax.axhline(0, color="black", lw=0.8)
    names = group_labels or {}
    ax.set_xticks(ax.get_xticks(), [names.get(t.get_text(), label(t.get_text())) for t in ax.get_xticklabels()])
    ax.set_xlabel("layer group")
    ax.set_ylabel("accuracy difference (points)")
    ax.legend(title=None, fontsize=8)
    fig.tight_layout()
    return fig


def vote_k_heatmap(table: pd.DataFrame, row_labels: Mapping[str, str] | None = None) -> Figure:
    """NDR@30 of Vote_k over k (fraction of n) × layer group, mean over runs."""
    _style()
    pivot = table.pivot_table(index="group", columns="k_frac", values="ndr@30", aggfunc="mean", sort=False)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(pivot) + 1.5))
    sns.heatmap(pivot, annot=True, fmt=".2f", cmap="viridis", ax=ax, cbar_kws={"label": "NDR@30"})
    ax.set_xticklabels([f"{float(t.get_text()):.0%}" for t in ax.get_xticklabels()])
    names = row_labels or {}
    ax.set_yticklabels([names.get(t.get_text(), label(t.get_text())) for t in ax.get_yticklabels()], rotation=0)
    ax.set_xlabel("Vote k as a fraction of the training set")
    ax.set_ylabel("layer group")
    fig.tight_layout()
    return fig
