"""Retraining figures: accuracy after removal per layer group, the aggregation differences, and
the Vote-k heat-map."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from layerinf.plotting.style import _TAB, COLOURS, FONT, _figure, _fit_xticklabels, _legend_above, label


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
    run = ["model", "task", "seed"]
    none = retraining[retraining.setup == "none"].set_index(run)[value].rename("none_value")
    rel = retraining.join(none, on=run)
    rel = rel.assign(change=100 * (rel[value] - rel["none_value"])).dropna(subset=["change"])
    df = rel[rel.aggregation == aggregation]
    groups = [g for g in group_order if g in set(df.group)]
    fig, axes = _figure(4.6)
    ax = axes[0, 0]
    if noise_floor is not None and np.isfinite(noise_floor):
        ax.axhspan(-100 * noise_floor, 100 * noise_floor, color="0.85", zorder=0)
    ax.axhline(0, color=COLOURS["none"], lw=1.2)
    with warnings.catch_warnings():  # seaborn 0.13 passes vert= to Matplotlib ≥ 3.11, which deprecates it
        warnings.filterwarnings("ignore", message="vert: bool was deprecated", category=DeprecationWarning)
        sns.boxplot(
            data=df,
            x="group",
            y="change",
            hue="method",
            order=groups,
            ax=ax,
            palette={m: COLOURS.get(m, _TAB[8]) for m in df.method.unique()},
            fliersize=3,
            width=0.7,
            linewidth=1.1,
        )
    for base in ("random", "oracle"):
        rows = rel[rel.setup == base]
        if len(rows):
            ax.axhline(rows["change"].mean(), color=COLOURS[base], ls="--", lw=1.4, label=f"{label(base)} (mean)")
    handles, labels_ = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color=COLOURS["none"], lw=1.2))
    labels_.append("no removal (0)")
    if noise_floor is not None and np.isfinite(noise_floor):
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.85"))
        labels_.append("dropout noise floor (±)")
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    _legend_above(fig, handles, [label(x) for x in labels_], ncol=3)
    names = group_labels or {}
    ax.set_xlabel("layer group whose scores chose the removed 30 %")
    ax.set_ylabel("accuracy change vs\nno removal (points)")
    _fit_xticklabels(fig, [ax], range(len(groups)), [names.get(g, label(g)) for g in groups])
    return fig


_AGG_DIFF_COLOURS = {"Rank − Mean": COLOURS["rank"], "Vote − Mean": COLOURS["vote"], "mean_c − Mean": COLOURS["mean_c"]}


def aggregation_differences(diffs: pd.DataFrame, group_labels: Mapping[str, str] | None = None) -> Figure:
    """Rank − Mean, Vote − Mean (and mean_c − Mean, the control) accuracy differences per layer group
    (points: runs; diamonds: mean with a 95 % interval over runs)."""
    fig, axes = _figure(4.2)
    ax = axes[0, 0]
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
    ticks = ax.get_xticks()
    shown = [names.get(t.get_text(), label(t.get_text())) for t in ax.get_xticklabels()]
    ax.set_xlabel("layer group")
    ax.set_ylabel("accuracy difference (points)")
    handles, labels_ = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    _legend_above(fig, handles, labels_, ncol=3)
    _fit_xticklabels(fig, [ax], ticks, shown)
    return fig


def vote_k_heatmap(table: pd.DataFrame, row_labels: Mapping[str, str] | None = None) -> Figure:
    """NDR@30 of Vote_k over k (fraction of n) × layer group, mean over runs."""
    pivot = table.pivot_table(index="group", columns="k_frac", values="ndr@30", aggfunc="mean", sort=False)
    height = 0.3 * len(pivot) + 1.4
    fig, axes = _figure(height)
    ax = axes[0, 0]
    names = row_labels or {}
    sns.heatmap(
        pivot,
        annot=True,
        fmt=".2f",
        cmap="viridis",
        ax=ax,
        xticklabels=[f"{float(k):.0%}" for k in pivot.columns],
        yticklabels=[names.get(str(g), label(str(g))) for g in pivot.index],
        annot_kws={"fontsize": FONT["annot"]},
        cbar_kws={"label": "NDR@30", "aspect": max(10, (height - 1) / 0.2), "pad": 0.02},
    )
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=0)
    ax.set_xlabel("Vote k as a fraction of the training set")
    ax.set_ylabel("layer group")
    return fig
