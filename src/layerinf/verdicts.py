"""The four claims of the paper, each decided on its ground truth with its uncertainty.

A claim is decided on retrained accuracy (remove the 30 % lowest-scored training examples, retrain
from the same initialisation, evaluate at the epoch of lowest query loss), never on a proxy. The
comparisons are paired within runs (same model, task and seed), summarised over runs with a
whole-run bootstrap interval, tested with a signed-rank test and Holm-corrected across the
comparisons that decide the claim (`layerinf.stats`). Each claim has three outcomes: *held*, *did
not hold*, *inconclusive*. The criteria (`CRITERIA`) are fixed in this file, before any data:
"middle" is blocks 2 and 3 of `np.array_split`, not the best block after the fact.

Each ``claimN`` function takes the tidy tables of one model's runs and returns a `ClaimResult`: the
verdict, the comparisons behind it (estimate, interval, n, test, p) and context that is shown but
never decides (proxies such as NDR@30, per-task splits, controls).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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


# --------------------------------------------------------------------------- claim 1


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
        stats.spearman_within(df, "cancellation", value).to_numpy(), "ρ(cancellation, accuracy) within runs", unit="rho"
    )
    within = stats.equivalence(within, GUIDE_BOUND, key="rho_within")
    pooled = stats.spearman_pooled(df, "cancellation", value)
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
            stats.spearman_within(det, "cancellation", "ndr@30").to_numpy(),
            "ρ(cancellation, NDR@30) within runs (proxy)",
            unit="rho",
        ),
        GUIDE_BOUND,
        key="rho_ndr_within",
        role="context",
    )
    ndr_pooled = stats.equivalence(
        stats.spearman_pooled(det, "cancellation", "ndr@30"),
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


# --------------------------------------------------------------------------- claim 2


def _claim2_family(table: pd.DataFrame, value: str, method: str, role: str = "decides") -> list[Comparison]:
    m = [setup_name(method, g, "mean") for g in MIDDLE]
    rest = [setup_name(method, g, "mean") for g in GROUPS if g != "cl"]
    return [
        _diff(table, m, setup_name(method, "we", "mean"), "middle − WE", "middle_we", role, value),
        _diff(table, m, setup_name("tracin_we", "we", "mean"), "middle − TracIn-WE", "middle_tracinwe", role, value),
        _diff(table, rest, setup_name(method, "cl", "mean"), "other groups − CL", "rest_cl", role, value),
    ]


def _key_suffix(task: str) -> str:
    return "_" + task.replace("/", "_")


def claim2(detection: pd.DataFrame, retraining: pd.DataFrame, *, value: str = ACC, method: str = METHOD) -> ClaimResult:
    """Middle attention beats WE (and TracIn-WE); CL is worst (criterion: ``CRITERIA["c2"]``)."""
    model = _one_model(detection, "claim2")
    ret = _retrained(retraining)
    decisive = _claim2_family(ret, value, method)
    m = [setup_name(method, g, "mean") for g in MIDDLE]
    context = [
        # TracIn on the WE module *is* TracIn-WE (same scores), so "middle − TracIn-WE" above repeats
        # "middle − WE"; Yeh et al.'s top-k variant is the WE method that differs.
        _diff(
            ret,
            m,
            setup_name("tracin_we_top10", "we", "mean"),
            "middle − TracIn-WE-top10",
            "middle_top10",
            "context",
            value,
        ),
        _diff(ret, m, "random", "middle − random removal", "middle_random", "context", value),
        _diff(ret, m, "none", "middle − no removal", "middle_none", "context", value),
    ]
    for task in sorted(set(ret["task"])) if len(ret) else []:
        family = _claim2_family(ret[ret["task"] == task], value, method, "context")
        context += [replace(c, name=f"{c.name} [{task}]", key=f"{c.key}{_key_suffix(task)}") for c in family]
    det = _setups(detection)
    det = det[det["aggregation"] == "mean"]
    proxies = [
        replace(c, name=f"{c.name} on NDR@30 (proxy)", key=f"{c.key}_ndr")
        for c in _claim2_family(det, "ndr@30", method, "context")
    ]
    decisive, context, verdict = _decide(decisive, context + proxies)
    facts: dict[str, Any] = {"runs": _n_runs(detection)}
    if len(ret):
        means = ret.groupby("setup")[value].mean()
        facts.update({f"acc_{k.replace('/', '_')}": float(v) for k, v in means.items()})
        facts["best_setup"] = (
            str(means.drop(["random", "oracle", "none", "none_reseed"], errors="ignore").idxmax()) if len(means) else ""
        )
    return ClaimResult("c2", model, verdict, decisive, context, facts)


# --------------------------------------------------------------------------- claim 3


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


#: A removed set "wipes out" a class if it keeps less than this share of that class's training examples.
WIPEOUT = 0.25


# --------------------------------------------------------------------------- claim 4


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
    rho_ndr = stats.spearman_within(df, "ndr@30", value)
    rho_c = stats.spearman_within(df, "cancellation", value)
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
            stats.spearman_pooled(df, "ndr@30", value),
            name="ρ(NDR@30, accuracy) pooled",
            key="rho_ndr_pooled",
            role="context",
        ),
        # "cancellation does not predict" read as claim 1 reads it: |ρ| < GUIDE_BOUND
        stats.equivalence(
            stats.spearman_pooled(df, "cancellation", value),
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


# --------------------------------------------------------------------------- all claims


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
