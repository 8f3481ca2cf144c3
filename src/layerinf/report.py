"""Tables the pages show beside the verdicts (pure pandas): cancellation per group, the confounds of
the ground truth (fine-tuned accuracy against the majority class, the class make-up of each removed
set, the dropout noise floor), the pooled Spearman table, and the benchmark parsers of the cost page.

The verdicts themselves are decided in `layerinf.verdicts`.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from layerinf import comparison, stats
from layerinf.verdicts import ACC, WIPEOUT, joined

RUN = ["model", "task", "seed"]
BLOCKS = ("block1", "block2", "block3", "block4")
BASELINE_SETUPS = ("random", "oracle", "none", "none_reseed")


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


def baseline_means(retraining: pd.DataFrame, value: str = ACC) -> dict[str, float]:
    base = retraining[retraining.setup.isin(BASELINE_SETUPS)]
    return {k: _f(v) for k, v in base.groupby("setup")[value].mean().items()}


def group_ranking(
    detection: pd.DataFrame,
    method: str,
    aggregation: str = "mean",
    metric: str = "ndr@30",
    groups: Sequence[str] = ("we", *BLOCKS, "cl"),
) -> pd.Series:
    """Mean `metric` over runs per layer group, best first (a proxy, for display)."""
    d = detection[(detection.method == method) & (detection.aggregation == aggregation) & detection.group.isin(groups)]
    return d.groupby("group")[metric].mean().sort_values(ascending=False)


# --------------------------------------------------------------------------- confounds of the ground truth


def finetune_table(info: pd.DataFrame) -> pd.DataFrame:
    """Per run: the fine-tuned model's evaluation accuracy (at the epoch chosen on the query set), its
    balanced accuracy, and the majority-class rate of the evaluation set it must beat."""
    cols = ["model", "task", "seed", "n_classes", "majority_eval", "acc_selected", "bacc_selected", "acc_best"]
    out = info[cols].copy()
    out["margin"] = out["acc_selected"] - out["majority_eval"]
    return out.sort_values(["model", "task", "seed"], ignore_index=True)


def finetune_summary(info: pd.DataFrame) -> dict[str, float]:
    """The weakest fine-tuning of the grid: smallest accuracy margin over the majority class."""
    t = finetune_table(info)
    return {
        "min_margin": _f(t["margin"].min()) if len(t) else math.nan,
        "min_acc": _f(t["acc_selected"].min()) if len(t) else math.nan,
        "max_majority": _f(t["majority_eval"].max()) if len(t) else math.nan,
        "n_runs": len(t),
    }


def removal_makeup(retraining: pd.DataFrame, runs: int | None = None) -> pd.DataFrame:
    """Per setup, over runs: the noisy share of the removed examples, the largest share one class has
    among them, the smallest share of a class kept, and in how many runs a class was wiped out
    (fewer than `verdicts.WIPEOUT` of its training examples kept)."""
    r = retraining[retraining["removed"] > 0].copy()
    r["noisy share"] = r["removed_noisy"] / r["removed"]
    g = r.groupby("setup", sort=False)
    out = pd.DataFrame(
        {
            "noisy share of removed": g["noisy share"].mean(),
            "top class share of removed": g["removed_top_class_share"].mean(),
            "min class share kept": g["kept_min_class_share"].mean(),
            "runs with a class wiped out": g["kept_min_class_share"].apply(lambda x: int((x < WIPEOUT).sum())),
            "runs": g.size(),
        }
    )
    return out


def noise_floor(retraining: pd.DataFrame, value: str = ACC) -> dict[str, float]:
    """The dropout noise floor: per run, the accuracy of the no-removal retraining with another
    dropout seed minus that of the fine-tuning (same data, initialisation and order). Returns the root
    mean square of these differences (the typical gap between two retrainings that differ in dropout
    alone), their mean, the largest, and n."""
    d = stats.paired_difference(retraining, "none_reseed", "none", value=value) if len(retraining) else pd.Series()
    d = d.dropna()
    return {
        "rms": float(np.sqrt(np.mean(d.to_numpy() ** 2))) if len(d) else math.nan,
        "mean": _f(d.mean()) if len(d) else math.nan,
        "max_abs": _f(d.abs().max()) if len(d) else math.nan,
        "n": len(d),
    }


def spearman_predictiveness(
    detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame, value: str = ACC
) -> pd.DataFrame:
    """Spearman ρ (and p, rows taken as independent) between retrained accuracy and cancellation /
    NDR@30 / AUC-NDR, pooled over (layer group, task, seed), one row per (aggregation, method): the
    paper's table. The verdict of claim 4 uses within-run correlations instead (`verdicts.claim4`)."""
    df = joined(detection, retraining, cancellation)
    return comparison.spearman_table(
        df, by=("aggregation", "method"), x_cols=("cancellation", "ndr@30", "auc_ndr"), y_col=value
    )


def scorecard_row(model: str, results: Mapping[str, Any], claim: str) -> dict[str, Any]:
    """One row of the scorecard: the deciding comparisons of `claim` as "estimate [low, high]" text."""
    r = results[claim]
    parts = []
    for c in r.comparisons:
        scale = 1.0 if c.kind == "equivalence" or c.key.startswith(("rho", "ndr_minus")) else 100.0
        unit = "" if scale == 1.0 else " pts"
        parts.append(
            f"{c.name}: {scale * c.estimate:+.2f}{unit} [{scale * c.low:+.2f}, {scale * c.high:+.2f}] → {c.outcome}"
        )
    return {
        "model": model,
        "claim": claim,
        "n runs": r.n_runs,
        "evidence (95 % interval)": "; ".join(parts),
        "verdict": r.verdict,
    }


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
