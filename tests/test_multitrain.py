"""Batched multi-adapter retraining (`multitrain`) and the retraining stage's packs (`retraining`).

The invariant: with dropout off, in float64, K retrainings trained as one pack equal K sequential
`train.fit` calls (same subsets, data order and initialisation) to rounding. Packs are planned
deterministically, cached under their whole member list, and a pack that failed is the only work
a re-run repeats.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from layerinf import retraining, runner
from layerinf.cache import Store
from layerinf.config import ConfigError, preset
from layerinf.modules import load_trainable_state, trainable_state
from layerinf.multitrain import Stacked, fit_pack
from layerinf.retraining import pack_size, plan_packs
from layerinf.setups import parse_setups
from layerinf.train import fit, predict

SETUPS = parse_setups(["tracin/all/mean", "tracin/block1/mean", "tracin/cl/mean"])


def _no_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_prob"):  # attention dropout given to the attention kernel
            module.dropout_prob = 0.0


@pytest.fixture(scope="module")
def pipe64() -> runner.Pipeline:
    cfg = preset("smoke", n_train=40, n_query=10, n_eval=16, epochs=2, dtype="float64", lora_dropout=0.0)
    pipe = runner.Pipeline(cfg, Store(), progress=False)
    _no_dropout(pipe.model)
    return pipe


def _subsets(n: int, k: int, keep: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, keep, replace=False)) for _ in range(k)]


def test_a_pack_equals_sequential_retrainings_in_float64(pipe64: runner.Pipeline) -> None:
    init = trainable_state(pipe64.model)
    enc, cfg = pipe64.enc, pipe64.cfg
    trains = [enc["train"].subset(s) for s in _subsets(len(enc["train"]), 3, 28)]
    sequential = [
        fit(
            pipe64.model,
            t,
            enc["query"],
            enc["eval"],
            cfg,
            pipe64.pad_id,
            init_state=init,
            torch_seed=0,
            progress=False,
        )
        for t in trains
    ]
    load_trainable_state(pipe64.model, init)
    packed = fit_pack(
        pipe64.model,
        trains,
        enc["query"],
        enc["eval"],
        cfg,
        pipe64.pad_id,
        init_state=init,
        torch_seed=0,
        progress=False,
    )
    for s, p in zip(sequential, packed, strict=True):
        assert s.best_epoch == p.best_epoch
        assert s.best_state.keys() == p.best_state.keys()
        for name in s.best_state:
            torch.testing.assert_close(p.best_state[name], s.best_state[name], rtol=1e-10, atol=1e-12)
        for a, b in zip(s.history, p.history, strict=True):
            assert a.eval_acc == b.eval_acc and a.query_acc == b.query_acc
            assert a.query_loss == pytest.approx(b.query_loss, rel=1e-10)
            # the training loss is taken in float32 by both paths (logits.float()), averaged in another order
            assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
    # The subsets differ, so the pack did not train K copies of one model.
    name = next(iter(packed[0].best_state))
    assert not torch.equal(packed[0].best_state[name], packed[1].best_state[name])


def test_stacking_leaves_the_model_as_it_was(pipe64: runner.Pipeline) -> None:
    model, enc = pipe64.model, pipe64.enc
    before = trainable_state(model)
    logits = predict(model, enc["eval"], pipe64.pad_id)
    other = {k: v + 0.01 for k, v in before.items()}
    stacked = Stacked(model, [before, other])
    with stacked.patched():
        pass
    assert all(torch.equal(before[k], v) for k, v in trainable_state(model).items())
    np.testing.assert_array_equal(predict(model, enc["eval"], pipe64.pad_id), logits)
    assert torch.equal(stacked.state(1)[next(iter(other))], next(iter(other.values())))


def test_a_pack_needs_subsets_of_one_size(pipe64: runner.Pipeline) -> None:
    enc = pipe64.enc
    trains = [enc["train"].subset(np.arange(20)), enc["train"].subset(np.arange(21))]
    init = trainable_state(pipe64.model)
    with pytest.raises(ValueError, match="one size"):
        fit_pack(
            pipe64.model, trains, enc["query"], enc["eval"], pipe64.cfg, pipe64.pad_id, init_state=init, torch_seed=0
        )


def test_plan_packs_by_hand() -> None:
    assert plan_packs([7, 7, 7, 7, 7], 2) == [[0, 1], [2, 3], [4]]
    assert plan_packs([7] * 18, 16) == [list(range(9)), list(range(9, 18))]  # even, not 16 + 2
    assert plan_packs([7, 10, 7, 7], 4) == [[0, 2, 3], [1]]  # sizes apart; order of appearance kept
    assert plan_packs([7, 7, 7], 1) == [[0], [1], [2]]
    assert plan_packs([], 4) == []
    with pytest.raises(ValueError, match="k=0"):
        plan_packs([7], 0)


def test_pack_size_follows_the_config_and_the_memory_bound(pipe64: runner.Pipeline, monkeypatch) -> None:
    model, device = pipe64.model, pipe64.device
    assert pack_size(pipe64.cfg.replace(retrain_pack=5), model, device) == 5
    assert pack_size(pipe64.cfg, model, torch.device("cpu")) == 1  # measured: no gain on a CPU
    gpu = torch.device("cuda")
    monkeypatch.setattr(retraining, "memory_budget", lambda device: 40 * 2**30)
    assert pack_size(pipe64.cfg, model, gpu) == retraining.MAX_AUTO_PACK
    monkeypatch.setattr(retraining, "memory_budget", lambda device: 1)
    assert pack_size(pipe64.cfg, model, gpu) == 1  # too little memory: sequential
    assert pack_size(pipe64.cfg.replace(train_embeddings=True), model, gpu) == 1


@pytest.mark.parametrize("value", [-1, 65, 2.5, "4"])
def test_bad_pack_sizes_are_refused_by_name(value) -> None:
    with pytest.raises(ConfigError, match="retrain_pack"):
        preset("smoke", retrain_pack=value)


def _cfg(**kw):
    return preset("smoke", n_train=40, n_query=10, n_eval=16, epochs=1, methods=("tracin",), **kw)


def test_packs_are_cached_by_their_members_and_a_failed_pack_is_the_only_work_repeated(tmp_path, monkeypatch) -> None:
    cfg = _cfg(retrain_pack=2)  # 3 setups + random: 4 retrainings of one size → 2 packs of 2
    calls: list[int] = []
    fail = {"second": False}
    real = retraining.fit_pack

    def counting(model, trains, *args, **kwargs):
        calls.append(len(trains))
        if len(calls) == 2 and fail["second"]:
            raise RuntimeError("worker died")
        return real(model, trains, *args, **kwargs)

    monkeypatch.setattr(retraining, "fit_pack", counting)
    reference = runner.run(cfg, setups=SETUPS, baselines=("random",), store=Store(tmp_path / "ref"), progress=False)
    assert calls == [2, 2]

    store = Store(tmp_path / "store")
    fail["second"] = True
    calls.clear()
    with pytest.raises(RuntimeError, match="worker died"):
        runner.run(cfg, setups=SETUPS, baselines=("random",), store=store, progress=False)
    finished = sorted((store.root / "retrain_pack").glob("*/manifest.json"))
    assert len(finished) == 1
    stamp = {p: p.stat().st_mtime_ns for p in finished[0].parent.iterdir()}
    fail["second"] = False
    calls.clear()
    again = runner.run(cfg, setups=SETUPS, baselines=("random",), store=store, progress=False)
    assert calls == [2]  # only the pack that failed
    assert {p: p.stat().st_mtime_ns for p in finished[0].parent.iterdir()} == stamp
    assert again.retraining.equals(reference.retraining)

    # Other setups change which retrainings share a pack: new entries, never the old pack's results.
    calls.clear()
    runner.run(cfg, setups=SETUPS[1:], baselines=("random",), store=store, progress=False)
    assert len(sorted((store.root / "retrain_pack").glob("*/manifest.json"))) == 3
    assert calls == [2]  # the pack (setup 2, setup 3) is new; random is now alone: sequential
    assert len(sorted((store.root / "retrain").glob("*/manifest.json"))) == 1


def test_setups_that_remove_the_same_examples_share_one_retraining(tmp_path) -> None:
    setups = parse_setups(["tracin/we/mean", "tracin_we/we/mean", "tracin/cl/mean"])
    cfg = preset("smoke", n_train=40, n_query=10, n_eval=16, epochs=1, methods=("tracin", "tracin_we"))
    result = runner.run(cfg, setups=setups, baselines=(), store=Store(tmp_path), progress=False)
    table = result.retraining.set_index("setup")
    assert table.loc["tracin/we/mean", "acc_selected"] == table.loc["tracin_we/we/mean", "acc_selected"]
    assert result.compute["retrain/tracin_we/we/mean"] == 0.0  # counted once
