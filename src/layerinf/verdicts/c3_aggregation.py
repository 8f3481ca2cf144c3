"""Claim 3: Rank and Vote beat Mean aggregation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from layerinf import stats
from layerinf.stats import RUN, Comparison
from layerinf.verdicts.common import (
    ACC,
    AGGREGATION_GROUPS,
    GROUPS,
    METHOD,
    WIPEOUT,
    ClaimResult,
    _decide,
    _n_runs,
    _one_model,
    _retrained,
    _setups,
)


def aggregation_differences(
    retraining: pd.DataFrame, value: str = ACC, method: str = METHOD, groups: Sequence[str] = AGGREGATION_GROUPS
) -> pd.DataFrame:
    """Per (run, group): the accuracy of Rank, Vote and mean_c minus that of Mean (in points), for the
    groups where both were retrained. Long format: columns run, group, comparison, difference."""
    ret = _retrained(retraining)
    ret = ret[(ret["method"] == method) & ret["group"].isin(groups)] if len(ret) else ret
    if not len(ret):
        return pd.DataFrame(columns=[*RUN, "group", "comparison", "difference"])
    wide = ret.pivot_table(index=[*RUN, "group"], columns="aggregation", values=value, aggfunc="mean")
    rows = []
    for other, name in (("rank", "Rank − Mean"), ("vote", "Vote − Mean"), ("mean_c", "mean_c − Mean")):
        if other in wide and "mean" in wide:
            d = (100 * (wide[other] - wide["mean"])).dropna().rename("difference").reset_index()
            rows.append(d.assign(comparison=name))
    return (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=[*RUN, "group", "comparison", "difference"])
    )


def _agg_diff(ret: pd.DataFrame, a: str, b: str, name: str, key: str, role: str, value: str, method: str) -> Comparison:
    """Per run: mean over `AGGREGATION_GROUPS` of accuracy(a) − accuracy(b) (groups with both)."""
    if not len(ret) or value not in ret.columns:
        return stats.summarise(np.array([]), name, key=key, role=role)
    sub = ret[(ret["method"] == method) & ret["group"].isin(AGGREGATION_GROUPS)]
    wide = sub.pivot_table(index=[*RUN, "group"], columns="aggregation", values=value, aggfunc="mean")
    if a not in wide or b not in wide:
        return stats.summarise(np.array([]), name, key=key, role=role)
    per_run = (wide[a] - wide[b]).dropna().groupby(level=list(range(len(RUN)))).mean()
    return stats.summarise(per_run.to_numpy(), name, key=key, role=role)


def claim3(detection: pd.DataFrame, retraining: pd.DataFrame, *, value: str = ACC, method: str = METHOD) -> ClaimResult:
    """Rank and Vote beat Mean (criterion: ``CRITERIA["c3"]``)."""
    model = _one_model(detection, "claim3")
    ret = _retrained(retraining)
    decisive = [
        _agg_diff(ret, "rank", "mean", "Rank − Mean", "rank_mean", "decides", value, method),
        _agg_diff(ret, "vote", "mean", "Vote − Mean", "vote_mean", "decides", value, method),
    ]
    context = [
        _agg_diff(
            ret, "mean_c", "mean", "mean_c − Mean (dropping wrong queries only)", "meanc_mean", "context", value, method
        ),
        _agg_diff(ret, "rank", "mean_c", "Rank − mean_c (ranking only)", "rank_meanc", "context", value, method),
        _agg_diff(ret, "vote", "mean_c", "Vote − mean_c (ranking only)", "vote_meanc", "context", value, method),
    ]
    det = _setups(detection)
    det = det[~det["method"].isin(["tracin_we", "tracin_we_top10"]) & det["group"].isin(GROUPS)]
    for how in ("rank", "vote"):
        wide = det.pivot_table(index=[*RUN, "method", "group"], columns="aggregation", values="ndr@30")
        if how in wide and "mean" in wide:
            per_run = (wide[how] - wide["mean"]).groupby(level=list(range(len(RUN)))).mean()
            context.append(
                stats.summarise(
                    per_run.to_numpy(),
                    f"{how.title()} − Mean on NDR@30 (proxy; all methods, groups)",
                    key=f"{how}_mean_ndr",
                    role="context",
                    unit="ndr",
                )
            )
    decisive, context, verdict = _decide(decisive, context)
    facts: dict[str, Any] = {"runs": _n_runs(detection)}
    if len(ret) and "kept_min_class_share" in ret:
        sub = ret[(ret["method"] == method) & ret["group"].isin(AGGREGATION_GROUPS)]
        for how, g in sub.groupby("aggregation"):
            facts[f"wipeout_{how}"] = int((g["kept_min_class_share"] < WIPEOUT).sum())
            facts[f"sets_{how}"] = len(g)
    return ClaimResult("c3", model, verdict, decisive, context, facts)
