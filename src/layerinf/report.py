"""Claim-by-claim summaries and verdicts computed from a grid's tables (pure pandas).

Each `claimN` function returns a flat dict of plain Python values — the numbers a notebook glues
into its prose — including a ``verdict`` of "held", "partly held" or "did not hold" decided by the
explicit criteria in its docstring. The scorecard calls the same functions, so a verdict cannot
differ between the claim page and the scorecard.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from layerinf import comparison
from layerinf.counterexample import evaluate

RUN = ["model", "task", "seed"]
ACC = "acc_best"  # the paper reports the best epoch; acc_last is shown beside it
MIDDLE = ("block2", "block3")
BLOCKS = ("block1", "block2", "block3", "block4")


def _f(x: object) -> float:
    return float(x) if x is not None and np.isfinite(float(x)) else math.nan


def cancellation_summary(cancellation: pd.DataFrame) -> pd.DataFrame:
    """Per layer group: mean ± std over runs of C, and mean over runs of the median/min/max per-parameter ratio."""
    g = cancellation.replace([np.inf], np.nan).groupby("group", sort=False)
    return pd.DataFrame(
        {
            "C mean": g["ratio"].mean(),
            "C std": g["ratio"].std(ddof=1),
            "median c_p": g["median"].mean(),
            "min c_p": g["min"].mean(),
            "max c_p": cancellation.groupby("group", sort=False)["max"].max(),
            "#params": g["n_params"].first(),
        }
    )


def joined(detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, method, group, aggregation) that was retrained: detection metrics, the
    retrained accuracies and the group's cancellation ratio."""
    ret = retraining[~retraining.setup.isin(["random", "oracle", "none"])]
    keys = [*RUN, "method", "group", "aggregation"]
    out = ret.merge(detection, on=keys, how="left").merge(
        cancellation[[*RUN, "group", "ratio"]].rename(columns={"ratio": "cancellation"}), on=[*RUN, "group"], how="left"
    )
    return out


def baseline_means(retraining: pd.DataFrame, value: str = ACC) -> dict[str, float]:
    base = retraining[retraining.setup.isin(["random", "oracle", "none"])]
    return {k: _f(v) for k, v in base.groupby("setup")[value].mean().items()}


def claim1(
    detection: pd.DataFrame,
    retraining: pd.DataFrame,
    cancellation: pd.DataFrame,
    method: str = "tracin",
    aggregation: str = "mean",
) -> dict[str, Any]:
    """Cancellation is not a reliable guide. Criteria: held if the counterexample separates more
    with the cancelling block (it does by construction: a check of the code) AND across layer groups
    the Spearman ρ between cancellation and retrained accuracy is weak (|ρ| < 0.5) or not significant
    (p > 0.05); "did not hold" if ρ is significant and ≥ 0.5 in absolute value."""
    ce = evaluate()
    df = joined(detection, retraining, cancellation)
    df = df[(df.method == method) & (df.aggregation == aggregation) & np.isfinite(df.cancellation)]
    acc = comparison.spearman(df.cancellation.to_numpy(), df[ACC].to_numpy())
    det = detection[(detection.method == method) & (detection.aggregation == aggregation)].merge(
        cancellation[[*RUN, "group", "ratio"]], on=[*RUN, "group"]
    )
    det = det[np.isfinite(det.ratio)]
    ndr = comparison.spearman(det.ratio.to_numpy(), det["ndr@30"].to_numpy())
    weak = (abs(acc[0]) < 0.5) or (acc[1] > 0.05) or math.isnan(acc[0])
    sep_ok = ce["theta+omega"]["separation"] > ce["theta"]["separation"]
    verdict = "held" if weak and sep_ok else ("partly held" if sep_ok else "did not hold")
    return {
        "ce_sep_theta": _f(ce["theta"]["separation"]),
        "ce_sep_both": _f(ce["theta+omega"]["separation"]),
        "rho_cancel_acc": _f(acc[0]),
        "p_cancel_acc": _f(acc[1]),
        "n_cancel_acc": int(acc[2]),
        "rho_cancel_ndr": _f(ndr[0]),
        "p_cancel_ndr": _f(ndr[1]),
        "n_cancel_ndr": int(ndr[2]),
        "verdict": verdict,
    }


def group_ranking(
    detection: pd.DataFrame,
    method: str,
    aggregation: str = "mean",
    metric: str = "ndr@30",
    groups: Sequence[str] = ("we", *BLOCKS, "cl"),
) -> pd.Series:
    """Mean `metric` over runs per layer group, best first."""
    d = detection[(detection.method == method) & (detection.aggregation == aggregation) & detection.group.isin(groups)]
    return d.groupby("group")[metric].mean().sort_values(ascending=False)


def claim2(
    detection: pd.DataFrame,
    retraining: pd.DataFrame,
    methods: Sequence[str] = ("tracin", "cosine", "datainf"),
    aggregation: str = "mean",
) -> dict[str, Any]:
    """Middle attention beats WE; CL is worst. Per method (detection, NDR@30, Mean aggregation, mean
    over runs): "middle wins" if the best LoRA block is block2 or block3 AND beats WE and TracIn-WE;
    "CL worst" if CL has the lowest NDR@30 of all groups. Held if both happen for a majority of
    methods; partly held if one of them does; did not hold otherwise. Retraining accuracies per group
    are reported beside it (too few runs here to decide on them alone)."""
    out: dict[str, Any] = {}
    middle_wins = cl_worst = 0
    tracin_we = detection[
        (detection.method == "tracin_we") & (detection.aggregation == aggregation) & (detection.group == "we")
    ]["ndr@30"].mean()
    out["ndr30_tracin_we"] = _f(tracin_we)
    used = [m for m in methods if m in set(detection.method)]
    for m in used:
        rank = group_ranking(detection, m, aggregation)
        blocks = rank[rank.index.isin(BLOCKS)]
        best_block = str(blocks.index[0])
        win = (
            best_block in MIDDLE
            and blocks.iloc[0] > rank.get("we", -1)
            and blocks.iloc[0] > (tracin_we if np.isfinite(tracin_we) else -1)
        )
        middle_wins += bool(win)
        cl_worst += bool(rank.index[-1] == "cl")
        out[f"best_block_{m}"] = best_block
        out[f"ndr30_best_block_{m}"] = _f(blocks.iloc[0])
        out[f"ndr30_we_{m}"] = _f(rank.get("we", np.nan))
        out[f"ndr30_cl_{m}"] = _f(rank.get("cl", np.nan))
    out["n_methods"] = len(used)
    out["n_middle_wins"] = middle_wins
    out["n_cl_worst"] = cl_worst
    acc = retraining[~retraining.setup.isin(["random", "oracle", "none"]) & (retraining.aggregation == aggregation)]
    if len(acc):
        by_group = acc.groupby("group")[ACC].mean().sort_values(ascending=False)
        out["retrain_best_group"] = str(by_group.index[0])
        out["retrain_best_acc"] = _f(by_group.iloc[0])
        out["retrain_cl_acc"] = _f(by_group.get("cl", np.nan))
        out["retrain_we_acc"] = _f(by_group.get("we", np.nan))
    out.update({f"acc_{k}": v for k, v in baseline_means(retraining).items()})
    majority = len(used) / 2
    a, b = middle_wins > majority, cl_worst > majority
    out["verdict"] = "held" if a and b else ("partly held" if a or b else "did not hold")
    return out


def aggregation_differences(retraining: pd.DataFrame, value: str = ACC) -> pd.DataFrame:
    """Rank − Mean and Vote − Mean accuracy (in points) per (run, method, group)."""
    ret = retraining[retraining.aggregation.isin(["mean", "rank", "vote"])]
    wide = ret.pivot_table(index=[*RUN, "method", "group"], columns="aggregation", values=value).reset_index()
    rows = []
    for other in ("rank", "vote"):
        if other in wide and "mean" in wide:
            rows.append(
                wide.assign(comparison=f"{other.title()} − Mean", difference=100 * (wide[other] - wide["mean"]))
            )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def claim3(detection: pd.DataFrame, retraining: pd.DataFrame) -> dict[str, Any]:
    """Rank and Vote beat Mean. Criteria on retrained accuracy (mean difference over (run, method,
    group)) and on detection (mean NDR@30 over (run, method, group)): held if Rank and Vote both
    beat Mean on accuracy; partly held if one of them does, or if neither does on accuracy but both
    do on NDR@30; did not hold otherwise."""
    out: dict[str, Any] = {}
    det = detection[~detection.method.isin(["tracin_we", "tracin_we_top10"])]
    for how, v in det.groupby("aggregation")["ndr@30"].mean().items():
        out[f"ndr30_{how}"] = _f(v)
    for how, v in det.groupby("aggregation")["auc_ndr"].mean().items():
        out[f"auc_{how}"] = _f(v)
    diffs = aggregation_differences(retraining)
    for comp, key in (("Rank − Mean", "rank"), ("Vote − Mean", "vote")):
        part = diffs[diffs.comparison == comp]["difference"] if len(diffs) else pd.Series(dtype=float)
        out[f"diff_{key}"] = _f(part.mean()) if len(part) else math.nan
        out[f"wins_{key}"] = int((part > 0).sum())
        out[f"losses_{key}"] = int((part < 0).sum())
        out[f"n_{key}"] = len(part)
    acc_rank, acc_vote = out["diff_rank"] > 0, out["diff_vote"] > 0
    det_both = out.get("ndr30_rank", 0) > out.get("ndr30_mean", 1) and out.get("ndr30_vote", 0) > out.get(
        "ndr30_mean", 1
    )
    if acc_rank and acc_vote:
        out["verdict"] = "held"
    elif acc_rank or acc_vote or det_both:
        out["verdict"] = "partly held"
    else:
        out["verdict"] = "did not hold"
    out["ndr30_mean_c_minus_mean"] = _f(out.get("ndr30_mean_c", np.nan) - out.get("ndr30_mean", np.nan))
    return out


def spearman_predictiveness(
    detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame
) -> pd.DataFrame:
    """Spearman ρ (and p) between retrained accuracy and cancellation / NDR@30 / AUC-NDR, pooled over
    (layer group, task, seed), one row per (aggregation, method)."""
    df = joined(detection, retraining, cancellation)
    return comparison.spearman_table(
        df, by=("aggregation", "method"), x_cols=("cancellation", "ndr@30", "auc_ndr"), y_col=ACC
    )


def claim4(detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame) -> dict[str, Any]:
    """NDR predicts retraining; cancellation does not. Criteria: held if, for a majority of the
    (aggregation, method) rows, ρ(NDR@30, accuracy) is positive and larger than |ρ(cancellation,
    accuracy)|, and it is significant (p ≤ 0.05) in at least one row; partly held if it is larger in
    a majority but nowhere significant; did not hold otherwise."""
    table = spearman_predictiveness(detection, retraining, cancellation)
    out: dict[str, Any] = {"n_rows": len(table)}
    better = sig = 0
    for _, row in table.iterrows():
        key = f"{row['aggregation']}_{row['method']}"
        out[f"rho_ndr_{key}"] = _f(row["ndr@30_rho"])
        out[f"p_ndr_{key}"] = _f(row["ndr@30_p"])
        out[f"rho_cancel_{key}"] = _f(row["cancellation_rho"])
        ok = row["ndr@30_rho"] > 0 and row["ndr@30_rho"] > abs(
            row["cancellation_rho"] if np.isfinite(row["cancellation_rho"]) else 0
        )
        better += bool(ok)
        sig += bool(ok and row["ndr@30_p"] <= 0.05)
    out["n_better"] = better
    out["n_significant"] = sig
    if better > len(table) / 2 and sig:
        out["verdict"] = "held"
    elif better > len(table) / 2:
        out["verdict"] = "partly held"
    else:
        out["verdict"] = "did not hold"
    return out


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where it exists), for the cost page and benchmarks."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def glue_all(values: Mapping[str, Any], prefix: str = "") -> None:
    """Glue every value (floats as Python floats, strings as strings) without displaying it."""
    from myst_nb import glue

    for key, value in values.items():
        if isinstance(value, (bool, np.bool_)):
            value = str(bool(value))
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        glue(f"{prefix}{key}", value, display=False)


#: Contenders of the gradient benchmark (`bench/bench_gradients.py`), in display order.
GRADIENT_CONTENDERS = {
    "batched": "ours (batched)",
    "vmap": "torch.func.vmap",
    "loop": "batch-size-1 loop",
    "train": "one training pass",
}


def gradient_cost_frame(raw: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Tidy per-(model, n, contender) rows from the raw results of the gradient benchmark.

    `raw` is ``results["sections"]["gradients"]["raw"]`` of ``bench/results.json``: per model,
    ``sizes[n][contender]["median_s"]``. Columns: model, n, contender, label, seconds,
    ms_per_example, runs, all_contenders (True at the n where every contender ran).
    """
    rows = []
    for model, res in raw.items():
        for n_text, timing in res["sizes"].items():
            n = int(n_text)
            for contender, t in timing.items():
                if contender not in GRADIENT_CONTENDERS:
                    raise ValueError(
                        f"gradient benchmark: unknown contender {contender!r}; known: {list(GRADIENT_CONTENDERS)}"
                    )
                rows.append(
                    {
                        "model": model,
                        "n": n,
                        "contender": contender,
                        "label": GRADIENT_CONTENDERS[contender],
                        "seconds": float(t["median_s"]),
                        "ms_per_example": 1000 * float(t["median_s"]) / n,
                        "runs": len(t["runs_s"]),
                        "all_contenders": set(timing) == set(GRADIENT_CONTENDERS),
                    }
                )
    return pd.DataFrame(rows)


def gradient_cost_summary(costs: pd.DataFrame) -> str:
    """One sentence per model of `gradient_cost_frame` output, at the size where every contender ran:
    our milliseconds per example and how it compares with the loop, vmap and a training pass."""
    full = costs[costs["all_contenders"]]
    full = full[full["n"] == full.groupby("model")["n"].transform("max")]
    ms = full.pivot_table(index="model", columns="contender", values="ms_per_example", sort=False)
    return " ".join(
        f"On `{model}`, ours took {r['batched']:.0f} ms per example: {r['loop'] / r['batched']:.2f}× faster than "
        f"the batch-size-1 loop, {r['vmap'] / r['batched']:.2f}× faster than vmap, and "
        f"{r['batched'] / r['train']:.2f}× the cost of a training pass."
        for model, r in ms.iterrows()
    )


def scaling_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per training-set size from the raw results of the scaling benchmark
    (``results["sections"]["scaling"]["raw"]``): wall time per stage (influence summed over methods),
    peak resident memory and gradient storage."""
    out = []
    for r in rows:
        stages = r["stages_s"]
        out.append(
            {
                "n_train": int(r["n_train"]),
                "run_s": float(r["run_s"]),
                "load_s": float(stages.get("load", math.nan)),
                "finetune_s": float(stages.get("finetune", math.nan)),
                "gradients_s": float(stages.get("gradients", math.nan)),
                "influence_s": float(sum(v for k, v in stages.items() if k.startswith("influence/"))),
                "metrics_s": float(stages.get("metrics", math.nan)),
                "peak_rss_mb": float(r["peak_rss_mb"]),
                "gradients_mib": r["gradient_bytes"] / 2**20,
                "bytes_per_example": r["gradient_bytes"] / (r["n_train"] + r["n_query"]),
            }
        )
    return pd.DataFrame(out).sort_values("n_train", ignore_index=True)
