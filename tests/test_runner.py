"""End-to-end pipeline on the tiny model: stages, caches, resumption and the tidy tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layerinf import gradients, runner
from layerinf.cache import CacheMismatch, Store
from layerinf.config import preset

pytestmark = pytest.mark.slow

SETUPS = (runner.Setup("tracin", "all", "mean"), runner.Setup("tracin", "block1", "vote"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def cfg():
    return preset("smoke", n_train=64, n_query=12, n_eval=24, epochs=1, methods=("tracin", "datainf", "tracin_we"))


@pytest.fixture(scope="module")
def result(cfg, store):
    return runner.run(cfg, setups=SETUPS, baselines=("random", "oracle"), store=store, progress=False)


def test_tables_have_the_documented_shape(result, cfg):
    det = result.detection
    assert set(det["method"]) == set(cfg.methods)
    # tracin_we exists only on the word embedding; its "all" group is the WE alone
    assert set(det.loc[det.method == "tracin_we", "group"]) == {"we", "all"}
    assert {"ndr@30", "auc_ndr", "roc_auc"} <= set(det.columns)
    assert det[["ndr@30", "auc_ndr", "roc_auc"]].apply(lambda c: c.between(0, 1)).all().all()
    # the tiny model has 2 layers: np.array_split leaves block3 and block4 empty, and they are skipped
    assert set(result.cancellation["group"]) == {"we", "block1", "block2", "cl", "all"}
    ret = result.retraining.set_index("setup")
    assert list(ret.index) == ["tracin/all/mean", "tracin/block1/vote", "random", "oracle"]
    assert (ret["removed"] == round(0.3 * 64)).all()
    # the oracle removes every noisy example first (13 noisy ≤ 19 removed)
    assert ret.loc["oracle", "removed_noisy"] == result.splits.noisy_mask.sum()


def test_noisy_mask_comes_from_label_noise(result):
    s = result.splits
    np.testing.assert_array_equal(s.noisy_mask, s.train.labels != s.clean_train_labels)


def test_second_run_reads_every_stage_from_cache(result, cfg, store, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached stage")

    monkeypatch.setattr(runner, "fit", boom)
    monkeypatch.setattr(runner, "compute_scores", boom)
    monkeypatch.setattr(gradients, "_chunk_arrays", boom)
    again = runner.run(cfg, setups=SETUPS, baselines=("random", "oracle"), store=store, progress=False)
    assert again.detection.equals(result.detection)
    assert again.retraining.equals(result.retraining)


def test_mismatching_cached_config_is_refused(result, cfg, store):
    entry = next((store.root / "finetune").glob("*/config.json"))
    data = json.loads(entry.read_text())
    data["lr"] = 123.0
    entry.write_text(json.dumps(data))
    with pytest.raises(CacheMismatch, match="lr"):
        runner.run(cfg, store=store, setups=(), baselines=(), progress=False)


def test_no_removal_is_the_fine_tuning_and_the_noise_floor_differs_only_in_dropout(cfg, tmp_path):
    """ "none" is read from the fine-tuning, which is seeded like a retraining: retraining with nothing
    removed gives the same epochs exactly. "none_reseed" changes only the dropout seed."""
    store = Store(tmp_path)
    result = runner.run(cfg, setups=(), baselines=("none", "none_reseed"), store=store, progress=False)
    pipe = runner.Pipeline(cfg, store, progress=False)
    init, _, history = pipe.finetune()
    again = pipe._fit(pipe.enc["train"], init, "retrain nothing", torch_seed=cfg.seed)
    assert [h.eval_acc for h in again.history] == list(history["eval_acc"])
    assert [h.query_loss for h in again.history] == list(history["query_loss"])
    ret = result.retraining.set_index("setup")
    assert ret.loc["none", "acc_selected"] == again.summary()["acc_selected"]
    assert ret.loc["none", "removed"] == ret.loc["none_reseed", "removed"] == 0
    info = result.info.iloc[0]
    assert info["acc_selected"] == ret.loc["none", "acc_selected"]
    labels = result.splits.eval.labels
    assert info["majority_eval"] == pytest.approx(np.bincount(labels).max() / len(labels))


def test_removal_reports_its_class_makeup(result):
    ret = result.retraining.set_index("setup")
    assert ret["kept_min_class_share"].between(0, 1).all()
    assert ret["removed_top_class_share"].between(0.5, 1).all()  # two classes: the larger share is ≥ ½
    assert {"acc_selected", "bacc_selected", "acc_best", "acc_last", "best_epoch"} <= set(ret.columns)
