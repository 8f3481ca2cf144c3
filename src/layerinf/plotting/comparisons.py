"""Figures of the claims' evidence: the forest of paired comparisons, scatter plots with their
Spearman ρ, per-run lines, and the counterexample's sweep."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from layerinf.plotting.style import (
    _TAB,
    COLOURS,
    OUTCOME_COLOURS,
    UNITS,
    _clip_unit,
    _figure,
    _legend_above,
    _legend_right,
    label,
)

#: Columns that hold fractions (accuracies, NDR@q, AUCs): their axes stay within [0, 1].
_FRACTION_COLUMN = re.compile(r"^(b?acc(_\w+)?|ndr@[\d.]+|auc_ndr|roc_auc)$")


def _is_fraction(df: pd.DataFrame, column: str) -> bool:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return bool(_FRACTION_COLUMN.match(column)) and len(values) > 0 and values.min() >= 0 and values.max() <= 1


def comparisons_forest(
    comparisons: Sequence,
    *,
    band: tuple[float, float] | None = None,
    band_label: str = "dropout noise floor",
    title: str | None = None,
) -> Figure:
    """One row per `stats.Comparison` (all of one unit): its per-run values (dots), the mean over runs
    (diamond) and the 95 % whole-run bootstrap interval (bar), coloured by outcome (green: supports
    the claim, red: opposes it, grey: undecided). `band` (in the comparisons' own units, e.g. ± the
    noise floor, or ±0.5 for claim 1's "not a reliable guide") is shaded."""
    rows = list(comparisons)
    units = {c.unit for c in rows}
    if len(units) != 1:
        raise ValueError(f"comparisons_forest: one unit per figure, got {sorted(units)}")
    unit = units.pop()
    scale, xlabel = UNITS[unit]
    labels = [textwrap.fill(c.name, 34) + f"\n(n = {c.n}, {c.role})" for c in rows]
    lines = sum(t.count("\n") + 1 for t in labels)
    fig, axes = _figure(max(2.6, 0.21 * lines + 0.25 * len(rows) + 1.6))
    ax = axes[0, 0]
    has_band = band is not None and all(np.isfinite(band))
    if has_band:
        ax.axvspan(scale * band[0], scale * band[1], color="0.87", zorder=0)
    ax.axvline(0, color="black", lw=0.8)
    for y, c in enumerate(rows):
        colour = OUTCOME_COLOURS.get(c.outcome, OUTCOME_COLOURS["undecided"])
        vals = scale * np.asarray(c.values, dtype=float)
        jitter = np.linspace(-0.2, 0.2, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        ax.scatter(vals, y + jitter, s=16, color=colour, alpha=0.45, zorder=2, lw=0)
        if np.isfinite(c.low) and np.isfinite(c.high):
            ax.plot([scale * c.low, scale * c.high], [y, y], color=colour, lw=3, zorder=3, solid_capstyle="butt")
        if np.isfinite(c.estimate):
            ax.scatter([scale * c.estimate], [y], marker="D", s=60, color=colour, edgecolor="black", zorder=4)
    ax.set_yticks(range(len(rows)), labels)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    if unit == "rho":  # a correlation: the axis is never wider than [−1, 1]
        lo, hi = ax.get_xlim()
        ax.set_xlim(max(-1.05, lo), min(1.05, hi))
    equivalence = any(getattr(c, "kind", "") == "equivalence" for c in rows)
    where = "inside the band" if equivalence else "right of 0"
    ax.set_xlabel(f"{xlabel}; {where} is what the claim predicts")
    handles = [
        plt.Line2D([], [], color=col, marker="D", lw=3, label=f"{name} the claim" if name != "undecided" else name)
        for name, col in OUTCOME_COLOURS.items()
    ]
    if has_band:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.87", label=band_label))
    _legend_above(fig, handles, [h.get_label() for h in handles], ncol=2)
    if title:
        ax.set_title(textwrap.fill(title, 80))
    return fig


def scatter_with_rho(df: pd.DataFrame, x: str, y: str, hue: str, xlabel: str, ylabel: str) -> Figure:
    """Scatter of y against x, one colour per `hue` value, Spearman ρ per hue in the legend (right of
    the data). Axes of fractions (accuracy, NDR@q) stay within [0, 1]."""
    from scipy.stats import spearmanr

    fig, axes = _figure(4.2)
    ax = axes[0, 0]
    markers = "osD^vP"
    for i, (key, part) in enumerate(df.groupby(hue, sort=False)):
        finite = part[np.isfinite(part[x]) & np.isfinite(part[y])]
        rho = spearmanr(finite[x], finite[y]).statistic if len(finite) > 2 and finite[x].nunique() > 1 else np.nan
        ax.scatter(
            finite[x],
            finite[y],
            s=22,
            alpha=0.75,
            marker=markers[i % len(markers)],
            color=COLOURS.get(str(key)),
            label=f"{label(str(key))} (ρ = {rho:.2f})",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for column, axis in ((x, "x"), (y, "y")):
        if _is_fraction(df, column):
            _clip_unit(ax, axis)
    _legend_right(ax, title=label(hue))
    return fig


def runs_lines(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, *, logx: bool = False) -> Figure:
    """One line per run (model, task, seed) through its points sorted by `x`, one colour per task:
    shows whether the relation of y to x has the same direction inside every run."""
    fig, axes = _figure(4.2)
    ax = axes[0, 0]
    tasks = sorted(df["task"].unique())
    colours = dict(zip(tasks, _TAB, strict=False))
    for (_, task, _), run in df.dropna(subset=[x, y]).groupby(["model", "task", "seed"]):
        run = run[np.isfinite(run[x])].sort_values(x)
        ax.plot(run[x], run[y], marker="o", ms=4, lw=1, alpha=0.7, color=colours[task])
    handles = [plt.Line2D([], [], color=colours[task], marker="o") for task in tasks]
    if logx:
        ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for column, axis in ((x, "x"), (y, "y")):
        if _is_fraction(df, column):
            _clip_unit(ax, axis)
    _legend_right(ax, handles, [f"task {task}" for task in tasks])
    return fig


def counterexample_sweep(df: pd.DataFrame) -> Figure:
    """Separation of clean vs noisy as the ω block is scaled, and its (infinite) cancellation."""
    fig, axes = _figure(3.6)
    ax = axes[0, 0]
    ax.plot(df["factor"], df["separation"], marker="o", label="separation (clean − noisy), θ+ω")
    ax.axhline(0, color="grey", lw=1.2, ls=":", label="separation with θ alone")
    ax.set_xlabel("scale of the ω block's training gradients")
    ax.set_ylabel("TracIn separation")
    _legend_above(fig, *ax.get_legend_handles_labels(), ncol=2)
    return fig
