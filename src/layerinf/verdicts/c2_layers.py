"""Claim 2: middle attention layers beat the first layer (WE); the head is worst."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from layerinf.stats import Comparison
from layerinf.verdicts.common import (
    ACC,
    GROUPS,
    METHOD,
    MIDDLE,
    ClaimResult,
    _decide,
    _diff,
    _n_runs,
    _one_model,
    _retrained,
    _setups,
    setup_name,
)


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
