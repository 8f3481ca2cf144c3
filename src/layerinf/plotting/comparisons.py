"""Figures of the claims' evidence: the forest of paired comparisons, scatter plots with their
Spearman ρ, per-run lines, and the counterexample's sweep."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from layerinf.plotting.style import _TAB, COLOURS, OUTCOME_COLOURS, UNITS, _style, label


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
    import textwrap

    _style()
    rows = list(comparisons)
    units = {c.unit for c in rows}
    if len(units) != 1:
        raise ValueError(f"comparisons_forest: one unit per figure, got {sorted(units)}")
    scale, xlabel = UNITS[units.pop()]
    fig, ax = plt.subplots(figsize=(9, 0.62 * len(rows) + 1.9))
    has_band = band is not None and all(np.isfinite(band))
    if has_band:
        ax.axvspan(scale * band[0], scale * band[1], color="0.87", zorder=0)
    ax.axvline(0, color="black", lw=0.8)
    for y, c in enumerate(rows):
        colour = OUTCOME_COLOURS.get(c.outcome, OUTCOME_COLOURS["undecided"])
        vals = scale * np.asarray(c.values, dtype=float)
        jitter = np.linspace(-0.2, 0.2, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        ax.scatter(vals, y + jitter, s=14, color=colour, alpha=0.45, zorder=2)
        if np.isfinite(c.low) and np.isfinite(c.high):
            ax.plot([scale * c.low, scale * c.high], [y, y], color=colour, lw=3, zorder=3)
        if np.isfinite(c.estimate):
            ax.scatter([scale * c.estimate], [y], marker="D", s=60, color=colour, edgecolor="black", zorder=4)
    labels = [textwrap.fill(c.name, 26) + f"\n(n = {c.n}, {c.role})" for c in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=11)
    ax.tick_params(axis="x", labelsize=11)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    equivalence = any(getattr(c, "kind", "") == "equivalence" for c in rows)
    where = "inside the band" if equivalence else "right of 0"
    ax.set_xlabel(f"{xlabel}; {where} is what the claim predicts", fontsize=11)
    handles = [
        plt.Line2D([], [], color=col, marker="D", lw=3, label=f"{name} the claim" if name != "undecided" else name)
        for name, col in OUTCOME_COLOURS.items()
    ]
    if has_band:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.87", label=band_label))
    ax.legend(handles=handles, fontsize=10, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False)
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def scatter_with_rho(df: pd.DataFrame, x: str, y: str, hue: str, xlabel: str, ylabel: str) -> Figure:
    """Scatter of y against x, one colour per `hue` value, Spearman ρ per hue in the legend."""
    from scipy.stats import spearmanr

    _style()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for key, part in df.groupby(hue, sort=False):
        finite = part[np.isfinite(part[x]) & np.isfinite(part[y])]
        rho = spearmanr(finite[x], finite[y]).statistic if len(finite) > 2 and finite[x].nunique() > 1 else np.nan
        ax.scatter(
            finite[x],
            finite[y],
            s=18,
            alpha=0.75,
            color=COLOURS.get(str(key)),
            label=f"{label(str(key))} (ρ = {rho:.2f})",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def runs_lines(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, *, logx: bool = False) -> Figure:
    """One line per run (model, task, seed) through its points sorted by `x`, one colour per task:
    shows whether the relation of y to x has the same direction inside every run."""
    _style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    tasks = sorted(df["task"].unique())
    colours = dict(zip(tasks, _TAB, strict=False))
    for (_, task, _), run in df.dropna(subset=[x, y]).groupby(["model", "task", "seed"]):
        run = run[np.isfinite(run[x])].sort_values(x)
        ax.plot(run[x], run[y], marker="o", ms=4, lw=1, alpha=0.7, color=colours[task])
    for task in tasks:
        ax.plot([], [], color=colours[task], marker="o", label=f"task {task}")
    if logx:
        ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def counterexample_sweep(df: pd.DataFrame) -> Figure:
    """Separation of clean vs noisy as the ω block is scaled, and its (infinite) cancellation."""
    _style()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(df["factor"], df["separation"], marker="o", label="separation (clean − noisy), θ+ω")
    ax.axhline(0, color="grey", lw=0.8, ls=":", label="separation with θ alone")
    ax.set_xlabel("scale of the ω block's training gradients")
    ax.set_ylabel("TracIn separation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
