"""Tables the pages show beside the verdicts (pure pandas): cancellation per group, the confounds of
the ground truth (fine-tuned accuracy against the majority class, the class make-up of each removed
set, the dropout noise floor), the pooled Spearman table, and the benchmark parsers of the cost page.

The verdicts themselves are decided in `layerinf.verdicts`.
"""

from __future__ import annotations

import math
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


FINETUNE_COLUMNS = {
    "model": "model",
    "task": "task",
    "seed": "seed",
    "n_classes": "classes",
    "majority_eval": "majority rate",
    "acc_selected": "accuracy",
    "bacc_selected": "balanced acc.",
    "acc_best": "best-epoch acc.",
}


def finetune_table(info: pd.DataFrame) -> pd.DataFrame:
    """Per run, for display: the fine-tuned model's evaluation accuracy (at the epoch chosen on the
    query set), its balanced accuracy, the paper's best-epoch accuracy, the majority-class rate of the
    evaluation set it must beat, and the margin over that rate."""
    out = info[list(FINETUNE_COLUMNS)].sort_values(["model", "task", "seed"], ignore_index=True)
    out = out.assign(margin=out["acc_selected"] - out["majority_eval"]).rename(columns=FINETUNE_COLUMNS)
    return out


def show_finetune(info: pd.DataFrame) -> Any:
    """`finetune_table` as a formatted Styler (three decimals, signed margin, no index)."""
    t = finetune_table(info)
    numeric = ["majority rate", "accuracy", "balanced acc.", "best-epoch acc."]
    return t.style.format({**dict.fromkeys(numeric, "{:.3f}"), "margin": "{:+.3f}"}).hide(axis="index")


def finetune_summary(info: pd.DataFrame) -> dict[str, float]:
    """The weakest fine-tuning of the grid: smallest accuracy margin over the majority class."""
    if not len(info):
        return {"min_margin": math.nan, "min_acc": math.nan, "max_majority": math.nan, "n_runs": 0}
    margin = info["acc_selected"] - info["majority_eval"]
    return {
        "min_margin": _f(margin.min()),
        "min_acc": _f(info["acc_selected"].min()),
        "max_majority": _f(info["majority_eval"].max()),
        "n_runs": len(info),
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


def _scale(c: Any) -> tuple[float, str]:
    return (1.0, "") if c.unit == "rho" else (100.0, " pts")


def decision_table(comparisons: Sequence[Any]) -> pd.DataFrame:
    """The comparisons behind a verdict as display strings: the estimate with its 95 % interval
    (accuracy and NDR differences in points, correlations as ρ), runs (with how many were better /
    worse), the test, the Holm-adjusted p, the outcome and the role."""
    rows = []
    for c in comparisons:
        scale, unit = _scale(c)
        estimate = f"{scale * c.estimate:+.2f}{unit}" if np.isfinite(c.estimate) else "–"
        interval = f" [{scale * c.low:+.2f}, {scale * c.high:+.2f}]" if np.isfinite(c.low) else ""
        counts = c.kind == "difference" and c.unit != "rho"
        if c.kind == "equivalence":
            test = f"interval inside ±{c.null:g}?"
        else:
            test = "signed-rank" if c.test.startswith("Wilcoxon") else c.test
        rows.append(
            {
                "comparison": c.name,
                "estimate [95 % interval]": estimate + interval,
                "runs (better / worse)": f"{c.n} ({c.wins} / {c.losses})" if counts else str(c.n),
                "test": test,
                "p (Holm)": f"{c.p_holm:.3g}" if c.kind == "difference" and np.isfinite(c.p_holm) else "–",
                "outcome": c.outcome,
                "role": c.role,
            }
        )
    return pd.DataFrame(rows)


def parameters_frame(**params: Any) -> pd.DataFrame:
    """A notebook's parameters as a two-column table (lists joined with commas)."""

    def show(v: Any) -> str:
        return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return pd.DataFrame({"parameter": list(params), "value": [show(v) for v in params.values()]})


def model_key(model: str) -> str:
    """A model name as a glue-key fragment (``minilm``, ``Qwen_Qwen2_5_1_5B``, a path's last part)."""
    import re

    name = model.rstrip("/").split("/")[-1] if "/" in model and model.startswith(("/", ".")) else model
    return re.sub(r"\W+", "_", name).strip("_")


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


#: Where a page's downloadable tables go: beside the executed notebooks, so that a page's
#: ``{download}`` role (relative to ``book/_executed/<page>.ipynb``) finds them at build time.
TABLES_DIR = "book/_executed/tables"


def export_tables(page: str, root: str | None = None, **frames: pd.DataFrame) -> dict[str, str]:
    """Write the tables a page rests on as CSV (``<TABLES_DIR>/<page>/<name>.csv``, relative to the
    notebook's working directory, the book's root) and return each one's path relative to the
    executed page, for its ``{download}`` links. Numbers are written at full precision."""
    from pathlib import Path

    folder = Path(root or ".") / TABLES_DIR / page
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        out[name] = f"tables/{page}/{name}.csv"
    return out
