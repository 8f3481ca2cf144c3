"""Every verdict function on synthetic tables whose answer is known: a true effect gives *held*, a
reversed effect *did not hold*, a small noisy sample *inconclusive*."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerinf import verdicts
from layerinf.config import ConfigError

GROUPS = ("we", "block1", "block2", "block3", "block4", "cl")
# Accuracy effect of each TracIn + Mean group when the paper is right (middle best, CL worst).
PAPER_GROUP = {"we": 0.0, "block1": 0.01, "block2": 0.03, "block3": 0.03, "block4": 0.01, "cl": -0.04}


def synthetic(n_runs: int, sign: float, noise: float, seed: int = 0, tasks: tuple[str, ...] = ("a", "b")):
    """(detection, retraining, cancellation) of `n_runs` runs per task for one model.

    sign = +1: the paper's four claims are true (middle > WE, TracIn-WE; CL worst; Rank/Vote > Mean;
    NDR@30 tracks accuracy; cancellation unrelated to accuracy). sign = −1: every effect reversed
    (and cancellation then predicts accuracy strongly). `noise`: s.d. of per-setup accuracy noise.
    """
    rng = np.random.default_rng(seed)
    det, ret, canc = [], [], []
    for task in tasks:
        for s in range(n_runs):
            run = {"model": "m", "task": task, "seed": s}
            base = 0.8 + rng.normal(0, 0.03)
            # cancellation: unrelated to accuracy (random per run) when the paper is right; when it is
            # wrong, the least-cancelling groups are the best ones (Yeh et al.'s prediction).
            c_random = rng.permutation(6).astype(float) + 1
            acc_of = {}
            for g in GROUPS:
                acc_of[("tracin", g, "mean")] = base + sign * PAPER_GROUP[g] + rng.normal(0, noise)
            acc_of[("tracin_we", "we", "mean")] = base - sign * 0.02 + rng.normal(0, noise)
            for g in ("we", "block2", "cl"):
                m = acc_of[("tracin", g, "mean")]
                acc_of[("tracin", g, "rank")] = m + sign * 0.03 + rng.normal(0, noise)
                acc_of[("tracin", g, "vote")] = m + sign * 0.04 + rng.normal(0, noise)
                acc_of[("tracin", g, "mean_c")] = m + rng.normal(0, noise)
            for (method, g, how), acc in acc_of.items():
                ndr = 0.3 + sign * 4 * (acc - base) + rng.normal(0, noise)
                ret.append(
                    {
                        **run,
                        "setup": f"{method}/{g}/{how}",
                        "method": method,
                        "group": g,
                        "aggregation": how,
                        "acc_selected": acc,
                        "bacc_selected": acc,
                        "acc_best": acc + 0.01,
                        "kept_min_class_share": 0.7,
                    }
                )
                det.append({**run, "method": method, "group": g, "aggregation": how, "ndr@30": ndr})
            for b, shift in (("random", -0.01), ("oracle", 0.05), ("none", 0.0), ("none_reseed", 0.0)):
                acc = base + shift + rng.normal(0, noise)
                ret.append(
                    {
                        **run,
                        "setup": b,
                        "method": b,
                        "group": "",
                        "aggregation": "",
                        "acc_selected": acc,
                        "bacc_selected": acc,
                        "acc_best": acc,
                        "kept_min_class_share": 0.7,
                    }
                )
            for i, g in enumerate(GROUPS):
                c = c_random[i] if sign > 0 else 10 - 8 * (acc_of[("tracin", g, "mean")] - base) / 0.1
                canc.append({**run, "group": g, "ratio": float(c)})
    return pd.DataFrame(det), pd.DataFrame(ret), pd.DataFrame(canc)


TRUE = synthetic(12, +1, 0.004)
REVERSED = synthetic(12, -1, 0.004)
SMALL = synthetic(2, +1, 0.05, tasks=("a",))


@pytest.mark.parametrize(
    "tables, expected",
    [(TRUE, "held"), (REVERSED, "did not hold"), (SMALL, "inconclusive")],
    ids=["true effect", "reversed effect", "too little data"],
)
def test_every_claim_on_known_tables(tables, expected) -> None:
    det, ret, canc = tables
    results = verdicts.decide_all(det, ret, canc)
    got = {k: r.verdict for k, r in results.items()}
    assert got == dict.fromkeys(("c1", "c2", "c3", "c4"), expected)


def test_claim1_needs_a_narrow_interval_not_just_non_significance() -> None:
    # Cancellation unrelated to accuracy, but only 3 runs: ρ is "not significant", which must not be
    # read as support (the old rule called this "held").
    det, ret, canc = synthetic(3, +1, 0.004, tasks=("a",))
    result = verdicts.claim1(det, ret, canc)
    assert result.verdict == "inconclusive"
    within = next(c for c in result.comparisons if c.key == "rho_within")
    assert within.kind == "equivalence" and within.outcome == "undecided"


def test_claim3_is_not_decided_by_proxies() -> None:
    # NDR@30 says Rank/Vote are better, retrained accuracy says they are worse: accuracy decides.
    det, ret, _canc = TRUE
    ret = ret.copy()
    for how in ("rank", "vote"):
        sel = ret["aggregation"] == how
        ret.loc[sel, "acc_selected"] -= 0.08
    result = verdicts.claim3(det, ret)
    assert result.verdict == "did not hold"
    proxy = next(c for c in result.context if c.key == "vote_mean_ndr")
    assert proxy.estimate > 0 and proxy.role == "context"


def test_results_expose_interval_n_and_test() -> None:
    det, ret, _canc = TRUE
    result = verdicts.claim2(det, ret)
    flat = result.flat()
    assert flat["verdict"] == "held" and flat["n_runs"] == 24
    for key in ("middle_we", "middle_tracinwe", "rest_cl"):
        assert flat[f"{key}_lo"] < flat[f"{key}_est"] < flat[f"{key}_hi"]
        assert flat[f"{key}_n"] == 24 and 0 <= flat[f"{key}_p"] <= 0.05
    table = result.table()
    assert {"ci_low", "ci_high", "n_runs", "test", "p_holm", "outcome", "role"} <= set(table.columns)
    assert "middle_we_a_est" in flat and "middle_we_ndr_est" in flat  # per-task and proxy context


def test_regret_by_hand() -> None:
    df = pd.DataFrame(
        {
            "model": "m",
            "task": "t",
            "seed": 0,
            "acc_selected": [0.9, 0.8, 0.7],
            "ndr@30": [0.5, 0.6, 0.1],  # NDR picks the 0.8 setup
            "cancellation": [3.0, 2.0, 1.0],  # least cancellation picks the 0.7 setup
        }
    )
    r = verdicts.regret(df).iloc[0]
    assert r["best"] == pytest.approx(0.9)
    assert r["by_ndr"] == pytest.approx(0.1) and r["by_cancellation"] == pytest.approx(0.2)
    assert r["at_random"] == pytest.approx(0.1)


def test_one_model_at_a_time() -> None:
    det, ret, _canc = TRUE
    two = pd.concat([det, det.assign(model="other")])
    with pytest.raises(ConfigError, match="per model"):
        verdicts.claim2(two, ret)


def test_detection_only_runs_are_inconclusive_not_held() -> None:
    det, _, canc = TRUE
    empty = pd.DataFrame(columns=["model", "task", "seed", "setup", "method", "group", "aggregation", "acc_selected"])
    results = verdicts.decide_all(det, empty, canc)
    assert {r.verdict for r in results.values()} == {"inconclusive"}
