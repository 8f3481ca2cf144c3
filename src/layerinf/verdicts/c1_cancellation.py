"""Claim 1: cancellation is not a reliable guide to layer choice."""

from __future__ import annotations

import pandas as pd

from layerinf import correlation, stats
from layerinf.stats import RUN
from layerinf.verdicts.common import (
    ACC,
    GROUPS,
    GUIDE_BOUND,
    METHOD,
    MIDDLE,
    ClaimResult,
    _decide,
    _diff,
    _n_runs,
    _one_model,
    _retrained,
    _setups,
    joined,
    setup_name,
)


def claim1(
    detection: pd.DataFrame,
    retraining: pd.DataFrame,
    cancellation: pd.DataFrame,
    *,
    value: str = ACC,
    method: str = METHOD,
) -> ClaimResult:
    """Cancellation is not a reliable guide to layer choice (criterion: ``CRITERIA["c1"]``)."""
    model = _one_model(detection, "claim1")
    df = joined(detection, retraining, cancellation)
    df = df[(df["method"] == method) & (df["aggregation"] == "mean") & df["group"].isin(GROUPS)]
    within = stats.summarise(
        correlation.spearman_within(df, "cancellation", value).to_numpy(),
        "ρ(cancellation, accuracy) within runs",
        unit="rho",
    )
    within = stats.equivalence(within, GUIDE_BOUND, key="rho_within")
    pooled = correlation.spearman_pooled(df, "cancellation", value)
    pooled = stats.equivalence(pooled, GUIDE_BOUND, name="ρ(cancellation, accuracy) pooled", key="rho_pooled")
    middle = [setup_name(method, g, "mean") for g in MIDDLE]
    direct = _diff(
        _retrained(retraining),
        middle,
        setup_name(method, "we", "mean"),
        "middle − WE (Yeh's advice)",
        "middle_we",
        "guards",
        value,
    )
    det = _setups(detection)
    det = det[(det["method"] == method) & (det["aggregation"] == "mean") & det["group"].isin(GROUPS)].merge(
        cancellation[[*RUN, "group", "ratio"]].rename(columns={"ratio": "cancellation"}), on=[*RUN, "group"]
    )
    ndr_within = stats.equivalence(
        stats.summarise(
            correlation.spearman_within(det, "cancellation", "ndr@30").to_numpy(),
            "ρ(cancellation, NDR@30) within runs (proxy)",
            unit="rho",
        ),
        GUIDE_BOUND,
        key="rho_ndr_within",
        role="context",
    )
    ndr_pooled = stats.equivalence(
        correlation.spearman_pooled(det, "cancellation", "ndr@30"),
        GUIDE_BOUND,
        name="ρ(cancellation, NDR@30) pooled (proxy)",
        key="rho_ndr_pooled",
        role="context",
    )
    decisive, context, verdict = _decide([within, pooled, direct], [ndr_within, ndr_pooled])
    order = (
        cancellation[cancellation["group"].isin(GROUPS)].groupby("group")["ratio"].mean().sort_values()
        if len(cancellation)
        else pd.Series(dtype=float)
    )
    facts = {
        "least_cancelling_group": str(order.index[0]) if len(order) else "",
        "n_points": int(df[value].notna().sum()) if value in df else 0,
        "runs": _n_runs(detection),
    }
    return ClaimResult("c1", model, verdict, decisive, context, facts)
