"""Figures of the book. One colour and one name per method, group, module type and aggregation, on
every page (`COLOURS`, `LABELS`); every function labels its axes and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from layerinf import metrics

LABELS: dict[str, str] = {
    "tracin": "TracIn",
    "cosine": "Cosine",
    "datainf": "DataInf",
    "tracin_we": "TracIn-WE",
    "tracin_we_top10": "TracIn-WE-top10",
    "mean": "Mean",
    "mean_c": "Mean (correct queries)",
    "rank": "Rank",
    "vote": "Vote",
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
_TAB = plt.get_cmap("tab10").colors
COLOURS: dict[str, tuple[float, float, float]] = {
    "tracin": _TAB[0],
    "cosine": _TAB[1],
    "datainf": _TAB[2],
    "tracin_we": _TAB[3],
    "tracin_we_top10": _TAB[4],
    "mean": _TAB[7],
    "mean_c": _TAB[5],
    "rank": _TAB[9],
    "vote": _TAB[6],
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


def label(name: str) -> str:
    return LABELS.get(name, name)


def _style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)


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
    methods = [
        m for m in (methods or df.method.unique()) if m in set(df.method) and m not in ("tracin_we", "tracin_we_top10")
    ]
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


def _ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval of the mean (t quantile for small samples)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


OUTCOME_COLOURS = {"supports": (0.13, 0.55, 0.13), "opposes": (0.75, 0.15, 0.15), "undecided": (0.45, 0.45, 0.45)}


#: How each `stats.Comparison.unit` is drawn: scale and axis label.
UNITS: dict[str, tuple[float, str]] = {
    "accuracy": (100.0, "difference in accuracy (points)"),
    "ndr": (100.0, "difference in NDR@30 (points)"),
    "rho": (1.0, "Spearman ρ"),
}


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


def gradient_costs(df: pd.DataFrame) -> Figure:
    """Milliseconds per example of each per-example-gradient contender, one panel per model, at the
    size where every contender ran (`report.gradient_cost_frame`); shorter bars are faster."""
    _style()
    full = df[df["all_contenders"]]
    if full.empty:
        raise ValueError("gradient_costs: no size at which every contender ran")
    full = full[full["n"] == full.groupby("model")["n"].transform("max")]
    models = list(dict.fromkeys(full["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.4 * len(models), 2.6), squeeze=False)
    palette = dict(
        zip(("batched", "vmap", "loop", "train"), (_TAB[0], _TAB[1], _TAB[3], (0.55, 0.55, 0.55)), strict=True)
    )
    for ax, model in zip(axes[0], models, strict=True):
        sub = full[full["model"] == model].set_index("contender").reindex(list(palette)).dropna(subset=["seconds"])
        y = np.arange(len(sub))
        ax.barh(y, sub["ms_per_example"], color=[palette[c] for c in sub.index])
        ours = float(sub.loc["batched", "ms_per_example"])
        for yi, (contender, row) in zip(y, sub.iterrows(), strict=True):
            ratio = "" if contender == "batched" else f"  {row['ms_per_example'] / ours:.2f}× ours"
            ax.text(row["ms_per_example"], yi, f" {row['ms_per_example']:.0f} ms{ratio}", va="center", fontsize=8)
        ax.set_yticks(y, sub["label"])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.55 * float(sub["ms_per_example"].max()))
        ax.set_xlabel("milliseconds per example")
        ax.set_title(f"{model}, n = {int(sub['n'].iloc[0])}", fontsize=10)
    fig.tight_layout()
    return fig


def scaling(df: pd.DataFrame) -> Figure:
    """Time per stage and memory of a whole run against the number of training examples (log–log),
    from `report.scaling_frame`."""
    _style()
    n = df["n_train"].to_numpy()
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_t.loglog(n, df["run_s"], "o-", color="black", label="whole run")
    guide = float(df["run_s"].iloc[0]) * n / n[0]
    ax_t.loglog(n, guide, ":", color="grey", lw=1, label="∝ n (linear growth)")
    for column, style, text in (
        ("load_s", "x:", "load (data, model)"),
        ("finetune_s", "s--", "fine-tuning"),
        ("gradients_s", "^--", "gradients"),
        ("influence_s", "v--", "influence (all methods)"),
    ):
        ax_t.loglog(n, df[column], style, label=text)
    ax_t.set_xlabel("training examples n")
    ax_t.set_ylabel("wall time (s)")
    ax_t.set_title("time", fontsize=10)
    ax_t.legend(fontsize=8)
    ax_m.loglog(n, df["peak_rss_mb"], "o-", color="black", label="peak resident memory")
    ax_m.loglog(n, df["gradients_mib"], "s--", label="gradients on disk")
    ax_m.set_xlabel("training examples n")
    ax_m.set_ylabel("MiB")
    ax_m.set_title("memory and storage", fontsize=10)
    ax_m.legend(fontsize=8)
    for ax in (ax_t, ax_m):
        ax.set_xticks(n, [f"{x:,}" for x in n])
        ax.minorticks_off()
    fig.tight_layout()
    return fig
