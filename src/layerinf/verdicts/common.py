"""What every claim shares: the criteria, fixed before the data, the result type and the table helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from layerinf import stats
from layerinf.config import ConfigError
from layerinf.stats import RUN, Comparison

VERDICTS = stats.VERDICTS  # held, did not hold, inconclusive
#: The primary accuracy: evaluation accuracy at the epoch chosen on the query set.
ACC = "acc_selected"
#: Other accuracies a claim is re-read on (shown, never deciding).
ALTERNATIVES = {"bacc_selected": "balanced accuracy", "acc_best": "best epoch on the evaluation set (the paper's)"}
GROUPS: tuple[str, ...] = ("we", "block1", "block2", "block3", "block4", "cl")
#: "Middle" attention, fixed in advance: blocks 2 and 3 of the four `np.array_split` blocks.
MIDDLE: tuple[str, ...] = ("block2", "block3")
#: The groups on which claim 3's aggregations are retrained: the embedding, a middle block, the head.
AGGREGATION_GROUPS: tuple[str, ...] = ("we", "block2", "cl")
#: Claim 1: a correlation weaker than this in absolute value is "not a reliable guide".
GUIDE_BOUND = 0.5
METHOD = "tracin"

CRITERIA: dict[str, str] = {
    "c1": (
        "Held if the 95 % whole-run bootstrap intervals of Spearman ρ between a layer group's "
        "cancellation ratio and its retrained accuracy (TracIn, Mean, six groups) lie inside "
        f"(−{GUIDE_BOUND}, {GUIDE_BOUND}) both within runs (the mean of each run's ρ) and pooled over "
        "runs (as the paper computes it), and the direct test of Yeh et al.'s advice does not refute "
        "it (WE, which Yeh et al. single out as least cancelling, does not beat the middle blocks "
        f"significantly). Did not hold if an interval lies beyond ±{GUIDE_BOUND} or WE is "
        "significantly better. Inconclusive otherwise."
    ),
    "c2": (
        "Held if, on retrained accuracy (TracIn, Mean), the middle blocks (2 and 3, averaged) beat WE "
        "and beat TracIn-WE, and the head (CL) is below the mean of the other five groups, each "
        "significantly (interval excludes 0, Holm-corrected signed-rank p ≤ 0.05), pooled over "
        "tasks. Did not hold if one of the three is significantly reversed. Inconclusive otherwise."
    ),
    "c3": (
        "Held if, on retrained accuracy (TracIn on WE, block 2 and CL, averaged within a run), Rank "
        "beats Mean and Vote beats Mean, each significantly (interval excludes 0, Holm-corrected "
        "signed-rank p ≤ 0.05). Did not hold if either is significantly reversed. Inconclusive "
        "otherwise. Mean over correct queries only (mean_c) is the control that separates ranking "
        "from dropping wrongly predicted queries; it is shown, it does not decide."
    ),
    "c4": (
        "Held if, within runs, Spearman ρ between a retrained setup's NDR@30 and its retrained "
        "accuracy is positive, and larger than |ρ| of the group's cancellation ratio with accuracy, "
        "each significantly (interval excludes 0, Holm-corrected signed-rank p ≤ 0.05 over the "
        "runs). Did not hold if either is significantly reversed. Inconclusive otherwise. The pooled ρ "
        "the paper reports is shown beside it."
    ),
}


@dataclass
class ClaimResult:
    """A claim's verdict and the evidence behind it, for one model.

    comparisons: the family that decides (``decides`` / ``guards``), Holm-corrected together;
    context: shown but never deciding (Holm-corrected among themselves); facts: other numbers the
    pages quote (glued by `flat`).
    """

    claim: str
    model: str
    verdict: str
    comparisons: list[Comparison]
    context: list[Comparison] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def criterion(self) -> str:
        return CRITERIA[self.claim]

    @property
    def n_runs(self) -> int:
        """Runs of the model in the tables (a comparison's own n can be smaller: runs missing a setup)."""
        return int(self.facts.get("runs", 0))

    def table(self, context: bool = True) -> pd.DataFrame:
        rows = self.comparisons + (self.context if context else [])
        return stats.comparison_table(rows)

    def flat(self) -> dict[str, Any]:
        """Plain values for glue: ``verdict``, ``n_runs`` and per comparison ``<key>_est``, ``_lo``,
        ``_hi``, ``_p`` (Holm-adjusted), ``_n``, ``_wins``, ``_losses``, ``_outcome``; then the facts."""
        out: dict[str, Any] = {"verdict": self.verdict, "n_runs": self.n_runs, "criterion": self.criterion}
        # "runs" is in the facts too; it is glued once, as n_runs
        for c in self.comparisons + self.context:
            if not c.key:
                continue
            out.update(
                {
                    f"{c.key}_est": c.estimate,
                    f"{c.key}_lo": c.low,
                    f"{c.key}_hi": c.high,
                    f"{c.key}_p": c.p_holm,
                    f"{c.key}_n": c.n,
                    f"{c.key}_wins": c.wins,
                    f"{c.key}_losses": c.losses,
                    f"{c.key}_outcome": c.outcome,
                }
            )
        out.update({k: v for k, v in self.facts.items() if k != "runs"})
        return out


# --------------------------------------------------------------------------- helpers


def setup_name(method: str, group: str, aggregation: str) -> str:
    return f"{method}/{group}/{aggregation}"


def _one_model(table: pd.DataFrame, name: str) -> str:
    if "model" not in table.columns:
        raise ConfigError(f"{name}: the table has no 'model' column; columns: {list(table.columns)}")
    models = sorted(set(table["model"]))
    if len(models) > 1:
        raise ConfigError(f"{name}: the table holds {len(models)} models {models}; decide a claim per model")
    return models[0] if models else ""


def _setups(detection: pd.DataFrame) -> pd.DataFrame:
    return detection.assign(
        setup=[setup_name(*t) for t in detection[["method", "group", "aggregation"]].itertuples(index=False)]
    )


def _diff(
    table: pd.DataFrame, a: str | Sequence[str], b: str | Sequence[str], name: str, key: str, role: str, value: str
) -> Comparison:
    unit = "ndr" if value.startswith(("ndr", "auc")) else "accuracy"
    if not len(table) or value not in table.columns:
        return stats.summarise(np.array([]), name, key=key, role=role, unit=unit)
    d = stats.paired_difference(table, a, b, value=value)
    return stats.summarise(d.to_numpy(), name, key=key, role=role, unit=unit)


def _n_runs(*tables: pd.DataFrame) -> int:
    return max(
        (len(t[list(RUN)].drop_duplicates()) for t in tables if len(t) and set(RUN) <= set(t.columns)), default=0
    )


def _decide(decisive: list[Comparison], context: list[Comparison]) -> tuple[list[Comparison], list[Comparison], str]:
    decisive = stats.adjust(decisive)
    context = stats.adjust(context)
    return decisive, context, stats.verdict(decisive)


_RETRAIN_COLUMNS = [*RUN, "setup", "method", "group", "aggregation", ACC, *ALTERNATIVES, "kept_min_class_share"]


def _retrained(retraining: pd.DataFrame) -> pd.DataFrame:
    """`retraining`, or an empty table with its columns (a detection-only grid has no retraining)."""
    return retraining if len(retraining) else pd.DataFrame(columns=_RETRAIN_COLUMNS).astype({ACC: float})


#: A removed set "wipes out" a class if it keeps less than this share of that class's training examples.
WIPEOUT = 0.25


def joined(detection: pd.DataFrame, retraining: pd.DataFrame, cancellation: pd.DataFrame) -> pd.DataFrame:
    """One row per retrained (run, method, group, aggregation): its accuracies, its detection metrics
    and the cancellation ratio of its group (baselines left out)."""
    ret = _retrained(retraining)
    ret = ret[~ret["setup"].isin(["random", "oracle", "none", "none_reseed"])]
    keys = [*RUN, "method", "group", "aggregation"]
    if not len(ret):
        return ret.assign(**{"ndr@30": np.nan, "cancellation": np.nan}).astype({"ndr@30": float, "cancellation": float})
    det = detection.drop(columns=[c for c in ("setup",) if c in detection.columns])
    out = ret.merge(det, on=keys, how="left")
    canc = cancellation[[*RUN, "group", "ratio"]].rename(columns={"ratio": "cancellation"})
    return out.merge(canc, on=[*RUN, "group"], how="left")
