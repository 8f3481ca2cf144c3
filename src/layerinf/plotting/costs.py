"""Cost figures: per-example-gradient contenders, batched retraining, and the scaling of a whole run."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from layerinf.plotting.style import _TAB, FONT, _figure, _legend_right


def gradient_costs(df: pd.DataFrame) -> Figure:
    """Milliseconds per example of each per-example-gradient contender, one panel per model (one
    above the other), at the size where every contender ran (`report.gradient_cost_frame`); shorter
    bars are faster."""
    full = df[df["all_contenders"]]
    if full.empty:
        raise ValueError("gradient_costs: no size at which every contender ran")
    full = full[full["n"] == full.groupby("model")["n"].transform("max")]
    models = list(dict.fromkeys(full["model"]))
    palette = dict(
        zip(("batched", "vmap", "loop", "train"), (_TAB[0], _TAB[1], _TAB[3], (0.55, 0.55, 0.55)), strict=True)
    )
    fig, axes = _figure(0.35 + 2.05 * len(models), len(models), 1)
    for ax, model in zip(axes[:, 0], models, strict=True):
        sub = full[full["model"] == model].set_index("contender").reindex(list(palette)).dropna(subset=["seconds"])
        y = np.arange(len(sub))
        ax.barh(y, sub["ms_per_example"], color=[palette[c] for c in sub.index], height=0.7)
        ours = float(sub.loc["batched", "ms_per_example"])
        for yi, (contender, row) in zip(y, sub.iterrows(), strict=True):
            ratio = "" if contender == "batched" else f"  {row['ms_per_example'] / ours:.2f}× ours"
            text = f" {row['ms_per_example']:.0f} ms{ratio}"
            ax.text(row["ms_per_example"], yi, text, va="center", fontsize=FONT["annot"])
        ax.set_yticks(y, sub["label"])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.45 * float(sub["ms_per_example"].max()))
        ax.set_xlabel("milliseconds per example")
        ax.set_title(f"{model}, n = {int(sub['n'].iloc[0])}", loc="left")
    return fig


def scaling(df: pd.DataFrame) -> Figure:
    """Time per stage and memory of a whole run against the number of training examples (log–log),
    from `report.scaling_frame`: two panels, one above the other, legends right of the data."""
    n = df["n_train"].to_numpy()
    fig, axes = _figure(6.4, 2, 1)
    ax_t, ax_m = axes[:, 0]
    ax_t.loglog(n, df["run_s"], "o-", color="black", label="whole run")
    guide = float(df["run_s"].iloc[0]) * n / n[0]
    ax_t.loglog(n, guide, ":", color="grey", lw=1.2, label="∝ n (linear growth)")
    for column, style, text in (
        ("load_s", "x:", "load (data, model)"),
        ("finetune_s", "s--", "fine-tuning"),
        ("gradients_s", "^--", "gradients"),
        ("influence_s", "v--", "influence (all methods)"),
    ):
        ax_t.loglog(n, df[column], style, label=text)
    ax_t.set_ylabel("wall time (s)")
    ax_t.set_title("time", loc="left")
    ax_m.loglog(n, df["peak_rss_mb"], "o-", color="black", label="peak resident memory")
    ax_m.loglog(n, df["gradients_mib"], "s--", label="gradients on disk")
    ax_m.set_ylabel("MiB")
    ax_m.set_title("memory and storage", loc="left")
    for ax in (ax_t, ax_m):
        ax.set_xlabel("training examples n")
        ax.set_xticks(n, [f"{x:,}" for x in n])
        ax.minorticks_off()
        _legend_right(ax)
    return fig


def retrain_packs(df: pd.DataFrame) -> Figure:
    """Batched retraining against sequential (`benchreport.retrain_frame`): the speed-up over the
    sequential path (K = 1) as the pack grows, and how much of the machine's dense matrix-multiply
    FLOP/s a retraining achieves; two panels, one above the other, one line per model."""
    fig, axes = _figure(5.6, 2, 1)
    ax_s, ax_f = axes[:, 0]
    for i, (model, sub) in enumerate(df.groupby("model", sort=False)):
        sub = sub.sort_values("K")
        ax_s.plot(sub["K"], sub["speedup"], "o-", color=_TAB[i], label=model)
        ax_f.plot(sub["K"], 100 * sub["flops_fraction"], "o-", color=_TAB[i], label=model)
    ax_s.axhline(1.0, color="grey", ls=":", lw=1.2, label="sequential")
    for ax in (ax_s, ax_f):
        ax.set_xscale("log", base=2)
        ks = sorted(df["K"].unique())
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("retrainings per pack (K; 1 = sequential)")
        _legend_right(ax)
    ax_s.set_ylabel("speed-up over sequential")
    ax_s.set_ylim(bottom=0)
    ax_s.set_title("retraining throughput", loc="left")
    ax_f.set_ylabel("% of dense matmul FLOP/s")
    ax_f.set_ylim(bottom=0)
    ax_f.set_title("how close to the machine", loc="left")
    return fig
