"""Grids of runs (models × tasks × seeds) and the derived tables the claim notebooks plot.

Every claim notebook calls `run_grid` with the same profile parameters; the runs are cached, so the
first notebook computes them and the others read them. The derived tables are pure functions of a
`RunResult` (per-module detection, Vote-k sweeps, scores of noisy examples per group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from layerinf import aggregation, metrics
from layerinf.cache import Store
from layerinf.config import AGGREGATIONS, FIXED_GROUPS, ConfigError, allowed, preset
from layerinf.retrain import BASELINES
from layerinf.runner import RunResult, Setup, run


def parse_setups(specs: Sequence[str]) -> tuple[Setup, ...]:
    """``"tracin/block2/vote"`` → Setup(method, group, aggregation)."""
    out = []
    for spec in specs:
        parts = spec.split("/")
        if len(parts) != 3:
            raise ConfigError(f"setup {spec!r} must be 'method/group/aggregation', e.g. 'tracin/block2/vote'")
        out.append(Setup(*parts))
    return tuple(out)


def setup_grid(methods: Sequence[str], groups: Sequence[str], aggregations: Sequence[str]) -> list[str]:
    """Every (method, group, aggregation) combination as setup strings (WE-only methods: group we)."""
    from layerinf.config import WE_ONLY_METHODS

    return [
        f"{m}/{g}/{a}" for m in methods for g in (("we",) if m in WE_ONLY_METHODS else groups) for a in aggregations
    ]


@dataclass
class Grid:
    """Runs of a grid and their concatenated tables (columns model, task, seed identify the run)."""

    runs: dict[tuple[str, str, int], RunResult]
    detection: pd.DataFrame
    modules: pd.DataFrame
    cancellation: pd.DataFrame
    retraining: pd.DataFrame
    finetune: pd.DataFrame
    info: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)

    def run(self, model: str, task: str, seed: int) -> RunResult:
        return self.runs[(model, task, seed)]


def module_table(result: RunResult, hows: Sequence[str] = ("mean", "vote")) -> pd.DataFrame:
    """NDR@30 and AUC-NDR of every single module (the layer-wise curves), per method and aggregation."""
    noisy = result.splits.noisy_mask
    rows = []
    for method in result.cfg.methods:
        scores = result.scores(method)
        for idx, info in enumerate(scores.modules):
            aggs = aggregation.aggregate_many(
                scores.values[idx : idx + 1],
                hows,
                k=result.cfg.vote_k(scores.values.shape[1]),
                query_mask=result.query_correct,
            )
            for how, score in aggs.items():
                rows.append(
                    {
                        "method": method,
                        "module": info.name,
                        "layer": info.layer,
                        "kind": info.kind,
                        "aggregation": how,
                        "ndr@30": metrics.ndr_at(score, noisy, 0.3),
                        "auc_ndr": metrics.auc_ndr(score, noisy),
                    }
                )
    frame = pd.DataFrame(rows)
    return frame.assign(model=result.cfg.model, task=result.cfg.task, seed=result.cfg.seed)


def vote_k_table(result: RunResult, method: str, fracs: Sequence[float], groups: Sequence[str]) -> pd.DataFrame:
    """NDR@30 of Vote_k for k = frac·n over `fracs`, per layer group (the Vote-k heat-map)."""
    noisy = result.splits.noisy_mask
    scores = result.scores(method)
    rows = []
    for group in groups:
        sub = scores.group(group)
        if not len(sub.modules):
            continue
        sweep = aggregation.vote_k_sweep(sub.values, fracs, query_mask=result.query_correct)
        for frac, score in zip(fracs, sweep, strict=True):
            rows.append({"group": group, "k_frac": frac, "ndr@30": metrics.ndr_at(score, noisy, 0.3)})
    return pd.DataFrame(rows).assign(method=method, model=result.cfg.model, task=result.cfg.task, seed=result.cfg.seed)


def noisy_score_correlation(result: RunResult, method: str, groups: Sequence[str], how: str = "mean") -> pd.DataFrame:
    """Spearman ρ between layer groups of the aggregated scores of the *noisy* examples [groups × groups]."""
    from scipy.stats import spearmanr

    noisy = result.splits.noisy_mask
    cols = {}
    for group in groups:
        if len(result.scores(method).group(group).modules):
            cols[group] = result.aggregated(method, group, how)[noisy]
    frame = pd.DataFrame(cols)
    rho = spearmanr(frame.to_numpy()).statistic if frame.shape[1] > 2 else frame.corr(method="spearman").to_numpy()
    return pd.DataFrame(np.atleast_2d(rho), index=frame.columns, columns=frame.columns)


def run_grid(
    profile: str,
    models: Sequence[str],
    tasks: Sequence[str],
    seeds: Sequence[int],
    *,
    setups: Sequence[str] = (),
    baselines: Sequence[str] = BASELINES,
    groups: Sequence[str] = FIXED_GROUPS,
    aggregations: Sequence[str] = AGGREGATIONS,
    store: Store | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Grid:
    """Run (or read from the cache) every (model, task, seed) of the grid with the profile's settings.

    overrides: any `RunConfig` field (n_train, noise_rate, methods, ...); validated before any run.
    """
    if not models or not tasks or not seeds:
        raise ConfigError("models, tasks and seeds must each name at least one value")
    parsed = parse_setups(setups)
    for b in baselines:
        allowed("baselines", b, BASELINES)
    configs = [preset(profile, model=m, task=t, seed=int(s), **overrides) for m in models for t in tasks for s in seeds]
    runs: dict[tuple[str, str, int], RunResult] = {}
    for cfg in tqdm(configs, desc="runs", disable=not progress):
        result = run(
            cfg,
            groups=groups,
            aggregations=aggregations,
            setups=parsed,
            baselines=baselines,
            store=store,
            progress=progress,
        )
        runs[(cfg.model, cfg.task, cfg.seed)] = result

    def cat(name: str) -> pd.DataFrame:
        return pd.concat([getattr(r, name) for r in runs.values()], ignore_index=True)

    timings = pd.DataFrame(
        [
            {"model": m, "task": t, "seed": s, "stage": k, "compute_seconds": v, "wall_seconds": r.timings.get(k)}
            for (m, t, s), r in runs.items()
            for k, v in r.compute.items()
        ]
    )
    return Grid(
        runs=runs,
        detection=cat("detection"),
        cancellation=cat("cancellation"),
        retraining=cat("retraining"),
        finetune=cat("finetune"),
        info=cat("info"),
        modules=pd.concat([module_table(r) for r in runs.values()], ignore_index=True),
        timings=timings,
    )
