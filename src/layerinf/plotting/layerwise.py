"""Layer-wise figures: detection per module position, and the correlations between layer groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from layerinf.config import WE_ONLY_METHODS
from layerinf.plotting.style import (
    COLOURS,
    DPI,
    FONT,
    MODULE_STYLES,
    MODULE_TYPES,
    _ci,
    _figure,
    _fit_xticklabels,
    _legend_above,
    _overlapping,
    label,
)


def _layer_ticks(n_layers: int, step: int) -> tuple[list[int], list[str]]:
    """WE, every `step`-th layer and CL; a layer next to WE or CL is left out when step > 1 (so
    their labels keep apart)."""
    layers = [i for i in range(0, n_layers, step) if step == 1 or (i >= 1 and i <= n_layers - 2)]
    return [-1, *layers, n_layers], ["WE", *map(str, layers), "CL"]


def _bootstrap_interval(values: np.ndarray, seed: int = 0, n_boot: int = 1000) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean over `n_boot` resamples: seaborn's
    errorbar=("ci", 95), vectorised and with a fixed seed (the figure is the same at every build)."""
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return (float(values.mean()),) * 2 if len(values) else (np.nan, np.nan)
    idx = np.random.default_rng(seed).integers(0, len(values), (n_boot, len(values)))
    lo, hi = np.percentile(values[idx].mean(axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def layerwise_ndr(
    modules: pd.DataFrame,
    n_layers: int,
    *,
    aggregation: str = "mean",
    metric: str = "ndr@30",
    methods: Sequence[str] | None = None,
) -> Figure:
    """Layer-wise detection: x = WE, layer 0 … L−1, CL; one curve per LoRA module type (its own
    colour, marker and line style); one panel per method, one above the other, sharing the axes;
    mean and 95 % interval over (task, seed), clipped to [0, 1] (translucent bands for the curves,
    error bars for WE and CL). `modules` is `experiments.module_table` output."""
    df = modules[(modules.aggregation == aggregation) & modules.kind.isin(["we", "cl", *MODULE_TYPES])].copy()
    methods = [m for m in (methods or df.method.unique()) if m in set(df.method) and m not in WE_ONLY_METHODS]
    # x position: WE at −1, layers 0..L−1, CL at L (head tensors pooled by mean per run)
    df["x"] = np.where(df.kind == "we", -1, np.where(df.kind == "cl", n_layers, df.layer.fillna(-1))).astype(int)
    n = max(1, len(methods))
    fig, axes = _figure(0.9 + 2.25 * n, n, 1, sharex=True, sharey=True)
    axes = axes[:, 0]
    random_level = _random_level(metric)
    bounds = [] if random_level is None else [random_level]
    entries: dict[str, object] = {}
    for ax, method in zip(axes, methods, strict=False):
        sub = df[df.method == method]
        for kind in MODULE_TYPES:
            part = sub[sub.kind == kind]
            if not len(part):
                continue
            stats_ = [
                (x, float(np.nanmean(v)), *_bootstrap_interval(v))
                for x, v in ((x, g[metric].to_numpy(dtype=float)) for x, g in part.groupby("x"))
            ]
            x, mean, lo, hi = (np.array(c) for c in zip(*stats_, strict=True))
            lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
            marker, ls = MODULE_STYLES[kind]
            ax.fill_between(x, lo, hi, color=COLOURS[kind], alpha=0.12, lw=0, zorder=1)
            (line,) = ax.plot(
                x, mean, color=COLOURS[kind], marker=marker, ls=ls, lw=1.6, ms=5 if n_layers <= 12 else 3.5, zorder=3
            )
            entries.setdefault(label(kind), line)
            bounds += [np.nanmin(lo), np.nanmax(hi)]
        for kind in ("we", "cl"):
            part = sub[sub.kind == kind].groupby(["task", "seed"])[metric].mean()
            if len(part):
                x = -1 if kind == "we" else n_layers
                mean = float(part.mean())
                lo, hi = np.clip(_ci(part.to_numpy()), 0, 1)
                bar = ax.errorbar(
                    [x],
                    [mean],
                    yerr=[[mean - lo], [hi - mean]],
                    fmt="s",
                    ms=7,
                    color=COLOURS[kind],
                    capsize=4,
                    lw=1.6,
                    zorder=4,
                )
                for artist in bar.get_children():  # caps at 0 or 1 stay visible on the frame
                    artist.set_clip_on(False)
                entries.setdefault(label(kind), bar)
                bounds += [lo, hi]
        if random_level is not None:
            line = ax.axhline(random_level, color="0.35", ls=(0, (1, 2)), lw=1.2, zorder=0)
            entries.setdefault(f"random ranking ({random_level:.2f})", line)
        for edge in (-0.5, n_layers - 0.5):  # WE | layers | CL
            ax.axvline(edge, color="0.6", lw=0.8, zorder=0)
        ax.set_title(label(method), loc="left", fontweight="bold")
        ax.set_ylabel(f"{metric.upper()} ({label(aggregation)})")
    for ax in axes[len(methods) :]:
        ax.set_visible(False)
    finite = [b for b in bounds if np.isfinite(b)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    axes[0].set_ylim(max(0.0, np.floor(10 * lo - 0.5) / 10), min(1.0, np.ceil(10 * hi + 0.5) / 10))
    axes[0].set_xlim(-1.7, n_layers + 0.7)
    axes[-1].set_xlabel("module position (layer)")
    if entries:
        _legend_above(fig, list(entries.values()), list(entries), ncol=4)
    for step in (1, 2, 5, 10, 20, 50, 100):  # the smallest step whose labels keep apart
        ticks, names = _layer_ticks(n_layers, step)
        axes[0].set_xticks(ticks, names)
        fig.draw_without_rendering()
        if not _overlapping(fig, axes[-1].xaxis.get_majorticklabels(), pad_px=0.4 * FONT["tick"] * DPI / 72):
            break
    return fig


def _random_level(metric: str) -> float | None:
    """NDR@q of a random ranking (q %), for the reference line; None for other metrics."""
    head, _, q = metric.partition("@")
    return float(q) / 100 if head == "ndr" and q.replace(".", "", 1).isdigit() else None


def correlation_heatmap(matrix: pd.DataFrame, title: str, labels_: Mapping[str, str] | None = None) -> Figure:
    """Heat-map of a groups × groups correlation matrix, each cell annotated with its value."""
    import textwrap

    height = 0.42 * len(matrix) + 1.9
    fig, axes = _figure(height)
    ax = axes[0, 0]
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
        annot_kws={"fontsize": FONT["annot"]},
        cbar_kws={"label": "Spearman ρ", "aspect": max(10, (height - 1.5) / 0.2), "pad": 0.02},
    )
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_title(textwrap.fill(title, 70))
    _fit_xticklabels(fig, [ax], np.arange(len(names)) + 0.5, names)
    return fig
