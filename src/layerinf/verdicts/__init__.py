"""The four claims of the paper, each decided on its ground truth with its uncertainty.

A claim is decided on retrained accuracy (remove the 30 % lowest-scored training examples, retrain
from the same initialisation, evaluate at the epoch of lowest query loss), never on a proxy. The
comparisons are paired within runs (same model, task and seed), summarised over runs with a
whole-run bootstrap interval, tested with a signed-rank test and Holm-corrected across the
comparisons that decide the claim (`layerinf.stats`). Each claim has three outcomes: *held*, *did
not hold*, *inconclusive*. The criteria (`CRITERIA`, in `common`) are fixed before any data:
"middle" is blocks 2 and 3 of `np.array_split`, not the best block after the fact.

Each ``claimN`` function takes the tidy tables of one model's runs and returns a `ClaimResult`: the
verdict, the comparisons behind it (estimate, interval, n, test, p) and context that is shown but
never decides (proxies such as NDR@30, per-task splits, controls).
"""

from __future__ import annotations

import pandas as pd

from layerinf.verdicts.c1_cancellation import claim1
from layerinf.verdicts.c2_layers import claim2
from layerinf.verdicts.c3_aggregation import aggregation_differences, claim3
from layerinf.verdicts.c4_ndr import claim4, regret
from layerinf.verdicts.common import (
    ACC,
    AGGREGATION_GROUPS,
    ALTERNATIVES,
    CRITERIA,
    GROUPS,
    GUIDE_BOUND,
    METHOD,
    MIDDLE,
    VERDICTS,
    WIPEOUT,
    ClaimResult,
    joined,
    setup_name,
)

__all__ = [
    "ACC",
    "AGGREGATION_GROUPS",
    "ALTERNATIVES",
    "CRITERIA",
    "GROUPS",
    "GUIDE_BOUND",
    "METHOD",
    "MIDDLE",
    "VERDICTS",
    "WIPEOUT",
    "ClaimResult",
    "aggregation_differences",
    "claim1",
    "claim2",
    "claim3",
    "claim4",
    "decide_all",
    "joined",
    "regret",
    "setup_name",
]


def decide_all(
    detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame, *, value: str = ACC
) -> dict[str, ClaimResult]:
    """Every claim for one model's tables: {"c1": ..., "c4": ...}."""
    return {
        "c1": claim1(detection, retraining, cancellation, value=value),
        "c2": claim2(detection, retraining, value=value),
        "c3": claim3(detection, retraining, value=value),
        "c4": claim4(detection, retraining, cancellation, value=value),
    }
