"""Tidy tables of one run, computed from its per-module scores and gradients (pure functions).

`detection_table` and `cancellation_table` are what `runner.run` records; `module_table`,
`vote_k_table` and `noisy_score_correlation` are derived by the claim pages from a `RunResult`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from layerinf import aggregation, metrics
from layerinf.gradient_files import column_sums
from layerinf.scores import ModuleScores, group_mask

if TYPE_CHECKING:
    from layerinf.gradient_types import Gradients
    from layerinf.results import RunResult


def detection_table(
    scores: ModuleScores,
    groups: Sequence[str],
    hows: Sequence[str],
    noisy: np.ndarray,
    query_correct: np.ndarray,
    k: int,
) -> pd.DataFrame:
    """One row per (group, aggregation) of one method: NDR@q, AUC-NDR and ROC-AUC."""
    rows = []
    for group in groups:
        sub = scores.group(group)
        if len(sub.modules) == 0:
            continue
        for how, agg in aggregation.aggregate_many(sub.values, hows, k=k, query_mask=query_correct).items():
            rows.append(
                {
                    "method": scores.method,
                    "group": group,
                    "aggregation": how,
                    "n_modules": len(sub.modules),
                    **metrics.ndr_table(agg, noisy),
                    "auc_ndr": metrics.auc_ndr(agg, noisy),
                    "roc_auc": metrics.roc_auc(agg, noisy),
                }
            )
    return pd.DataFrame(rows)


def detection_or_agreement(
    scores: Iterable[ModuleScores],
    groups: Sequence[str],
    hows: Sequence[str],
    noisy: np.ndarray,
    query_correct: np.ndarray,
    k: int,
    frac: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(detection, agreement) of a run's methods: the detection metrics when some label was flipped
    (agreement empty); without injected noise there is nothing to detect, so detection is empty and
    agreement says which examples the layer groups flag alike (`examples.agreement_table`). `scores`
    may be a generator: each method's scores are read, tabled and let go before the next (a run's
    memory must not grow with the number of methods × n)."""
    if noisy.any():
        frames = [detection_table(s, groups, hows, noisy, query_correct, k) for s in scores]
        return pd.concat(frames, ignore_index=True), pd.DataFrame()
    from layerinf.examples import agreement_table

    frames = [agreement_table(s, groups, hows, query_correct, k, frac) for s in scores]
    return pd.DataFrame(), pd.concat(frames, ignore_index=True)


def cancellation_table(train: Gradients, groups: Sequence[str]) -> pd.DataFrame:
    """Cancellation ratio of every layer group over the training examples (entry-wise L1)."""
    per_module: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for info in train.infos:
        if info.kind == "we":
            if train.we is None:
                continue
            we = train.we
            sum_abs = np.zeros((we.vocab_size, we.rows.shape[1]))
            total = np.zeros_like(sum_abs)
            for lo, hi in we.blocks():  # np.add.at adds in row order: blocks change no bit
                part = we.block(lo, hi)
                rows = part.rows.astype(np.float64)
                np.add.at(sum_abs, part.tokens, np.abs(rows))
                np.add.at(total, part.tokens, rows)
            per_module["we"] = (sum_abs.ravel(), np.abs(total).ravel())
        else:
            # Streamed over the examples in float64, bitwise the in-RAM reduction (`column_sums`).
            per_module[info.name] = column_sums(train.dense[info.name])
    rows = []
    for group in groups:
        mask = group_mask(train.infos, train.n_layers, group)
        names = [i.name for i, keep in zip(train.infos, mask, strict=True) if keep and i.name in per_module]
        if not names:
            continue
        sum_abs = np.concatenate([per_module[n][0] for n in names])
        abs_sum = np.concatenate([per_module[n][1] for n in names])
        rows.append({"group": group, **metrics.cancellation_from_sums(sum_abs, abs_sum)})
    return pd.DataFrame(rows)


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
