"""The benchmark results as the cost page and `bench/` show them (pure pandas): the CPU's name, the
tidy frames of the gradient and scaling benchmarks, and the one-sentence summary of the gradient cost.

Tooling, not science: it reads ``bench/results.json`` (written by ``make bench``), nothing of a run.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


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


def retrain_frame(section: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (model, K) of the batched-retraining benchmark (``results["sections"]["retrain"]``),
    plus the sequential path as K = 1: seconds per retraining, speed-up over sequential, and the
    achieved FLOP/s as a fraction of the dense matrix multiply measured in the same run."""
    rows = [
        {
            "model": r["model"],
            "K": int(r["K"]),
            "seconds_per_retraining": float(r["seconds_per_retraining"]),
            "speedup": float(r["speedup"]),
            "flops_fraction": float(r["flops_fraction"]),
        }
        for r in section["per_k"]
    ]
    for model, seq in section.get("sequential", {}).items():
        rows.append(
            {
                "model": model,
                "K": 1,
                "seconds_per_retraining": seq["seconds"],
                "speedup": 1.0,
                "flops_fraction": seq["flops_fraction"],
            }
        )
    return pd.DataFrame(rows).sort_values(["model", "K"], ignore_index=True)


def retrain_summary(frame: pd.DataFrame, keys: Mapping[str, float]) -> str:
    """One sentence per model: the largest pack's speed-up and both paths' share of the machine,
    and the paired accuracy difference against the noise floor (from the benchmark's keys)."""
    parts = []
    for model, sub in frame.groupby("model", sort=False):
        seq, top = sub[sub["K"] == 1].iloc[0], sub.sort_values("K").iloc[-1]
        text = (
            f"{model}: K = {int(top['K'])} retrainings at once ran {top['speedup']:.2f}× as fast as one after "
            f"another ({top['seconds_per_retraining']:.1f} s against {seq['seconds_per_retraining']:.1f} s per "
            f"retraining), at {100 * top['flops_fraction']:.1f} % of the dense matmul FLOP/s against "
            f"{100 * seq['flops_fraction']:.1f} % sequentially."
        )
        diff = keys.get(f"retrain_paired_acc_abs_diff_{model}")
        floor = keys.get(f"retrain_noise_floor_abs_diff_{model}")
        if diff is not None and floor is not None:
            text += (
                f" Paired retrainings differ in accuracy by {100 * diff:.2f} points on average between the "
                f"two paths, against {100 * floor:.2f} points between two dropout seeds of the sequential one."
            )
        parts.append(text)
    return " ".join(parts)
