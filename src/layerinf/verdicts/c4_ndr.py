"""Claim 4: the noise detection rate (NDR) predicts retrained accuracy."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from layerinf import correlation, stats
from layerinf.stats import RUN
from layerinf.verdicts.common import (
    ACC,
    GUIDE_BOUND,
    ClaimResult,
    _decide,
    _n_runs,
    _one_model,
    joined,
)


def regret(df: pd.DataFrame, value: str = ACC) -> pd.DataFrame:
    """Per run, accuracy lost against the best retrained setup of the run when the setup is picked by
    the highest NDR@30, by the least-cancelling group, or at random (expected value): columns run,
    best, by_ndr, by_cancellation, at_random (losses in accuracy, ≥ 0)."""
    rows = []
    for key, g in df.dropna(subset=[value]).groupby(list(RUN), sort=True):
        best = float(g[value].max())
        by_ndr = g[g["ndr@30"] == g["ndr@30"].max()][value].mean()
        canc = g[np.isfinite(g["cancellation"])]
        by_c = canc[canc["cancellation"] == canc["cancellation"].min()][value].mean() if len(canc) else math.nan
        rows.append(
            {
                **dict(zip(RUN, key, strict=True)),
                "best": best,
                "by_ndr": best - float(by_ndr),
                "by_cancellation": best - float(by_c),
                "at_random": best - float(g[value].mean()),
            }
        )
    return pd.DataFrame(rows, columns=[*RUN, "best", "by_ndr", "by_cancellation", "at_random"])


def claim4(
    detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame, *, value: str = ACC
) -> ClaimResult:
    """NDR@30 predicts retraining; cancellation does not (criterion: ``CRITERIA["c4"]``)."""
    model = _one_model(detection, "claim4")
    df = joined(detection, retraining, cancellation)
    rho_ndr = correlation.spearman_within(df, "ndr@30", value)
    rho_c = correlation.spearman_within(df, "cancellation", value)
    both = pd.concat([rho_ndr.rename("ndr"), rho_c.rename("c")], axis=1).dropna()
    decisive = [
        stats.summarise(rho_ndr.to_numpy(), "ρ(NDR@30, accuracy) within runs", key="rho_ndr_within", unit="rho"),
        stats.summarise(
            (both["ndr"] - both["c"].abs()).to_numpy(),
            "ρ(NDR@30, acc) − |ρ(cancellation, acc)| within runs",
            key="ndr_minus_c",
            unit="rho",
        ),
    ]
    context = [
        replace(
            correlation.spearman_pooled(df, "ndr@30", value),
            name="ρ(NDR@30, accuracy) pooled",
            key="rho_ndr_pooled",
            role="context",
        ),
        # "cancellation does not predict" read as claim 1 reads it: |ρ| < GUIDE_BOUND
        stats.equivalence(
            correlation.spearman_pooled(df, "cancellation", value),
            GUIDE_BOUND,
            name="ρ(cancellation, accuracy) pooled",
            key="rho_c_pooled",
            role="context",
        ),
        stats.equivalence(
            stats.summarise(rho_c.to_numpy(), "ρ(cancellation, accuracy) within runs", unit="rho"),
            GUIDE_BOUND,
            key="rho_c_within",
            role="context",
        ),
    ]
    picks = (
        regret(df, value) if len(df) else regret(pd.DataFrame(columns=[*RUN, value, "ndr@30", "cancellation"]), value)
    )
    context += [
        stats.summarise(
            (picks["at_random"] - picks["by_ndr"]).to_numpy(),
            "accuracy gained picking by NDR@30 instead of at random",
            key="gain_ndr_random",
            role="context",
        ),
        stats.summarise(
            (picks["by_cancellation"] - picks["by_ndr"]).to_numpy(),
            "accuracy gained picking by NDR@30 instead of by least cancellation",
            key="gain_ndr_cancel",
            role="context",
        ),
    ]
    decisive, context, verdict = _decide(decisive, context)
    facts = {
        f"regret_{c}": float(picks[c].mean()) if len(picks) else math.nan
        for c in ("by_ndr", "by_cancellation", "at_random")
    }
    facts["n_setups_per_run"] = float(df.groupby(list(RUN)).size().mean()) if len(df) else 0.0
    facts["runs"] = _n_runs(detection)
    return ClaimResult("c4", model, verdict, decisive, context, facts)
