"""Bad input is refused up front (issue 6): every Python entry point raises a `ConfigError` (a
`ValueError`) naming the parameter and what is allowed, before any model is trained or any gradient
computed; the command line turns the same errors into one line on stderr and exit status 2.

The command-line cases here complement tests/test_cli.py (which covers noise_rate=1.5, unknown task,
method, profile and field, n_train=0, bad setups and baselines, offline hub ids).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from layerinf import aggregation, cli, data, execution, experiment, gradients, influence, metrics, runner, tasks
from layerinf.cache import Store
from layerinf.config import AGGREGATIONS, METHODS, PROFILES, STAGE_FIELDS, ConfigError, RunConfig, preset
from layerinf.runner import Setup


@pytest.fixture(autouse=True)
def _offline_and_no_heavy_work(monkeypatch: pytest.MonkeyPatch, offline_env: None) -> None:
    """Hub off, a private artifact store (`offline_env`), and fine-tuning / gradient passes that fail
    the test."""

    def heavy(*args: object, **kwargs: object) -> None:
        raise AssertionError("heavy work started before the bad input was refused")

    monkeypatch.setattr(runner, "fit", heavy)
    monkeypatch.setattr(gradients, "_chunk_arrays", heavy)


@pytest.fixture
def no_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even data, tokenizer or model may be loaded."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline was built before the bad input was refused")

    monkeypatch.setattr(runner, "Pipeline", refuse)


def refused(call, *names: str) -> ConfigError:
    """`call()` raises a ConfigError (a ValueError) whose message contains every string of `names`."""
    with pytest.raises(ConfigError) as info:
        call()
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    for name in names:
        assert name in message, (name, message)
    return info.value


# --------------------------------------------------------------------------------------------------
# RunConfig and preset

BAD_FIELDS = [
    ("noise_rate", 1.0, "[0, 1)"),
    ("noise_rate", -0.1, "[0, 1)"),
    ("noise_rate", float("nan"), "[0, 1)"),
    ("noise_rate", "0.2", "number"),
    ("removal_frac", 0.0, "(0, 1)"),
    ("removal_frac", 1.0, "(0, 1)"),
    ("vote_k_frac", 0.0, "(0, 1]"),
    ("vote_k_frac", 1.5, "(0, 1]"),
    ("warmup_frac", 1.0, "[0, 1)"),
    ("lora_dropout", -0.5, "[0, 1)"),
    ("n_train", 0, ">= 1"),
    ("n_train", 3, "at least 4"),
    ("n_train", 10.0, "integer"),
    ("n_train", True, "integer"),
    ("n_query", 0, ">= 1"),
    ("n_eval", -5, ">= 1"),
    ("epochs", 0, ">= 1"),
    ("batch_size", 0, ">= 1"),
    ("grad_batch_size", 0, ">= 1"),
    ("max_length", 0, ">= 1"),
    ("lora_r", 0, ">= 1"),
    ("seed", -1, "[0, "),
    ("seed", "0", "integer"),
    ("lr", 0.0, "> 0"),
    ("lr", float("inf"), "finite number > 0"),
    ("lr", "fast", "number"),
    ("weight_decay", -1.0, ">= 0"),
    ("weight_decay", float("nan"), "finite number >= 0"),
    ("datainf_lambda", 0.0, "> 0"),
    ("lora_alpha", -1.0, "> 0"),
    ("train_embeddings", "yes", "True or False"),
    ("model", "", "non-empty"),
    ("model", None, "non-empty"),
    ("task", "imdb", "rt, spam, bbc, glue/qnli"),
    ("task", "glue/wnli", "glue/sst2"),
    ("task", 5, "rt, spam, bbc"),
    ("methods", (), ", ".join(METHODS)),
    ("methods", ("tracin", "influence"), ", ".join(METHODS)),
    ("methods", ("tracin", "tracin"), "twice"),
    ("methods", "tracin", "list"),
    ("device", "tpu", "auto, cpu, cuda, cuda:<i> or mps"),
    ("device", 0, "auto, cpu"),
    ("dtype", "float16", "float32, float64, bfloat16"),
]


@pytest.mark.parametrize(("field", "value", "allowed"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v, _ in BAD_FIELDS])
def test_run_config_names_the_field_and_what_is_allowed(field: str, value: object, allowed: str) -> None:
    refused(lambda: RunConfig(**{field: value}), f"{field}=", allowed)
    refused(lambda: preset("smoke", **{field: value}), f"{field}=", allowed)


def test_removal_must_keep_an_example() -> None:
    refused(lambda: RunConfig(n_train=4, removal_frac=0.9), "removal_frac=0.9", "n_train=4", "kept")


def test_numpy_numbers_are_normalised() -> None:
    """Notebook parameters often come from NumPy: accepted, stored as Python numbers (cache keys)."""
    cfg = RunConfig(seed=np.int64(2), n_train=np.int32(40), noise_rate=np.float64(0.1), train_embeddings=np.True_)
    assert cfg == RunConfig(seed=2, n_train=40, noise_rate=0.1, train_embeddings=True)
    assert [type(v) for v in (cfg.seed, cfg.n_train, cfg.noise_rate, cfg.train_embeddings)] == [int, int, float, bool]
    assert json.dumps(cfg.to_dict())  # plain JSON, as the cache keys need


def test_preset_refuses_unknown_profile_and_field() -> None:
    refused(lambda: preset("huge"), "profile='huge'", ", ".join(PROFILES))
    refused(lambda: preset("smoke", learning_rate=1e-3), "learning_rate", "noise_rate")
    refused(lambda: RunConfig().replace(n_layers=3), "n_layers")


# --------------------------------------------------------------------------------------------------
# runner.run and execution.run_experiment

CFG = preset("smoke", n_train=48, n_query=12, n_eval=24, epochs=1, methods=("tracin", "tracin_we"))

BAD_RUNS = [
    ({"groups": ("nowhere",)}, ("group='nowhere'", "block1", "layer<i>")),
    ({"groups": "all"}, ("groups='all'", "list")),
    ({"groups": ()}, ("groups=()", "block1")),
    ({"aggregations": ("max",)}, ("aggregations='max'", ", ".join(AGGREGATIONS))),
    ({"aggregations": ()}, ("aggregations=()", ", ".join(AGGREGATIONS))),
    ({"aggregations": "vote"}, ("aggregations='vote'", "list")),
    ({"baselines": ("magic",)}, ("baselines='magic'", "random, oracle, none")),
    ({"setups": (Setup("datainf", "all", "vote"),)}, ("setup method='datainf'", "tracin, tracin_we")),
    ({"setups": (Setup("tracin", "blocks", "vote"),)}, ("group='blocks'", "block1")),
    ({"setups": (Setup("tracin", "all", "median"),)}, ("setup aggregation='median'", "rank, vote")),
    ({"setups": (Setup("tracin_we", "block1", "vote"),)}, ("tracin_we/block1/vote", "we, all, type:we")),
    ({"setups": ("tracin/all/vote",)}, ("setups", "Setup(method, group, aggregation)")),
]


@pytest.mark.parametrize(("kwargs", "names"), BAD_RUNS, ids=[str(k) for k, _ in BAD_RUNS])
def test_run_refuses_bad_arguments_before_building_the_pipeline(
    no_pipeline: None, kwargs: dict, names: tuple[str, ...]
) -> None:
    refused(lambda: runner.run(CFG, progress=False, **kwargs), *names)


def test_run_refuses_a_group_the_model_lacks_before_training(tmp_path: Path) -> None:
    """`block4` of the 2-layer tiny model is empty: found once the model is loaded, before fine-tuning."""
    store = Store(tmp_path / "store")
    refused(
        lambda: runner.run(CFG, setups=(Setup("tracin", "block4", "vote"),), store=store, progress=False),
        "block4",
        "no module",
    )
    assert not (store.root / "finetune").exists()


def test_run_refuses_too_few_examples_before_loading_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    cfg = CFG.replace(n_train=100_000)
    refused(lambda: runner.run(cfg, progress=False), "n_train + n_query + n_eval", "exceeds", "task='rt'")


BAD_GRIDS = [
    ({"models": ()}, ("models, tasks and seeds",)),
    ({"tasks": ("imdb",)}, ("task='imdb'", "rt, spam, bbc")),
    ({"seeds": (-1,)}, ("seed=-1", "[0, ")),
    ({"profile": "huge"}, ("profile='huge'", "smoke, default, paper")),
    ({"noise_rate": 1.0}, ("noise_rate=1.0", "[0, 1)")),
    ({"n_trian": 40}, ("n_trian", "n_train")),
    ({"setups": ("tracin/all",)}, ("setup 'tracin/all'", "method/group/aggregation")),
    ({"baselines": ("magic",)}, ("baselines='magic'", "random, oracle, none")),
    ({"groups": ("block9",)}, ("group='block9'",)),
    ({"aggregations": ("max",)}, ("aggregations='max'",)),
]


@pytest.mark.parametrize(("kwargs", "names"), BAD_GRIDS, ids=[str(k) for k, _ in BAD_GRIDS])
def test_run_grid_refuses_bad_arguments_before_any_run(no_pipeline: None, kwargs: dict, names: tuple[str, ...]) -> None:
    args = {"profile": "smoke", "models": ("tiny",), "tasks": ("rt",), "seeds": (0,), **kwargs}
    refused(lambda: execution.run_experiment(experiment.define(**args), progress=False), *names)


# --------------------------------------------------------------------------------------------------
# data.make_splits


def prepared(tmp_path: Path, labels: list[int]) -> Path:
    """A data directory whose prepared rt.jsonl holds one example per label given."""
    root = tmp_path / "data"
    (root / "prepared").mkdir(parents=True)
    names = tasks.get("rt").label_names
    lines = [
        json.dumps({"id": f"rt-{i}", "text": f"text {i}", "label": y, "label_name": names[y]})
        for i, y in enumerate(labels)
    ]
    (root / "prepared" / "rt.jsonl").write_text("".join(line + "\n" for line in lines))
    return root


BAD_SPLITS = [
    ({"n_train": 0}, ("n_train=0", ">= 1")),
    ({"n_query": 0}, ("n_query=0", ">= 1")),
    ({"n_eval": 2.5}, ("n_eval=2.5", "integer")),
    ({"seed": -3}, ("seed=-3", ">= 0")),
    ({"noise_rate": 1.0}, ("noise_rate=1.0", "[0, 1)")),
    ({"noise_rate": -0.2}, ("noise_rate=-0.2", "[0, 1)")),
    ({"task": "imdb"}, ("task='imdb'", "rt, spam, bbc")),
    ({"n_train": 10**6}, ("exceeds", "task='rt'")),
]


@pytest.mark.parametrize(("kwargs", "names"), BAD_SPLITS, ids=[str(k) for k, _ in BAD_SPLITS])
def test_make_splits_refuses_bad_values(kwargs: dict, names: tuple[str, ...]) -> None:
    args = {"task": "rt", "n_train": 20, "n_query": 5, "n_eval": 5, "seed": 0, "noise_rate": 0.2, **kwargs}
    refused(lambda: data.make_splits(**args), *names)


def test_make_splits_refuses_empty_one_class_missing_and_too_small_data(tmp_path: Path) -> None:
    def split(root: Path, n: int = 4) -> None:
        data.make_splits("rt", n, 2, 2, 0, 0.2, data_dir=root)

    refused(lambda: split(prepared(tmp_path / "one", [1] * 30)), "task='rt'", "only 1 class", "fresh")
    refused(lambda: split(prepared(tmp_path / "empty", [])), "task='rt'", "0 class")
    refused(lambda: split(tmp_path / "nothing"), "task='rt'", "rt.jsonl", "missing")
    refused(lambda: split(prepared(tmp_path / "small", [0, 1] * 4), 6), "= 10 exceeds the 8 examples")


# --------------------------------------------------------------------------------------------------
# influence, aggregation, metrics


def test_pairwise_refuses_unknown_method() -> None:
    g = np.ones((3, 4))
    refused(lambda: influence.pairwise(g, g, "tracin_we"), "method='tracin_we'", "tracin, cosine, datainf")


def test_pairwise_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"train_grads \(3, 4\) and query_grads \(2, 5\)"):
        influence.pairwise(np.ones((3, 4)), np.ones((2, 5)), "tracin")


def test_pairwise_refuses_non_finite_gradients() -> None:
    g = np.ones((3, 4))
    g[1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        influence.pairwise(g, np.ones((2, 4)), "tracin")


VALUES = np.arange(2 * 5 * 3, dtype=np.float64).reshape(2, 5, 3)


@pytest.mark.parametrize("k", [0, -1, 6, 2.5, True, "3"])
def test_vote_k_must_lie_in_1_to_n(k: object) -> None:
    refused(lambda: aggregation.aggregate(VALUES, "vote", k=k), f"k={k!r}", "1..n = 1..5")


def test_aggregate_refuses_bad_name_mask_and_values() -> None:
    refused(lambda: aggregation.aggregate(VALUES, "median"), "how='median'", ", ".join(AGGREGATIONS))
    refused(lambda: aggregation.aggregate(VALUES, "rank", query_mask=np.zeros(3, bool)), "query_mask", "no query")
    refused(lambda: aggregation.aggregate(VALUES, "rank", query_mask=np.ones(4, bool)), "query_mask", "(3,)")
    refused(lambda: aggregation.aggregate(VALUES[0], "mean"), "values", "[modules, n, m]")
    bad = VALUES.copy()
    bad[0, 1, 2] = np.inf
    refused(lambda: aggregation.aggregate(bad, "mean"), "values", "non-finite")
    refused(lambda: aggregation.vote_k_sweep(VALUES, [0.0]), "(0, 1]")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_metrics_refuse_non_finite_scores(bad: float) -> None:
    scores = np.array([0.3, 0.1, bad, 0.2])
    noisy = np.array([True, False, False, True])
    for func in (metrics.ndr_curve, metrics.auc_ndr, metrics.roc_auc):
        refused(lambda func=func: func(scores, noisy), "scores", "non-finite")
    refused(lambda: metrics.ndr_at(scores, noisy, 0.3), "scores", "non-finite")


def test_metrics_refuse_bad_levels_and_labels() -> None:
    scores, noisy = np.array([0.3, 0.1, 0.2]), np.array([True, False, False])
    for q in (0.0, 1.5, float("nan")):
        refused(lambda q=q: metrics.ndr_at(scores, noisy, q), "q=", "(0, 1]")
    refused(lambda: metrics.ndr_curve(scores, np.zeros(3, bool)), "is_noisy", "no True")
    refused(lambda: metrics.roc_auc(scores, np.ones(3, bool)), "is_noisy", "both")
    refused(lambda: metrics.auc_ndr(scores, noisy[:2]), "is_noisy", "shape")
    refused(lambda: metrics.auc_ndr(scores, np.array([0, 2, 1])), "is_noisy", "boolean")


# --------------------------------------------------------------------------------------------------
# The command line: one line, exit status 2, no traceback (complements tests/test_cli.py)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status = cli.main(list(argv))
    out = capsys.readouterr()
    assert status == 2, (status, out.out, out.err)
    assert out.out == ""
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
    assert "Traceback" not in out.err
    return out.err


BAD_CLI = [
    (["--noise-rate", "-0.1"], ("noise_rate=-0.1", "[0, 1)")),
    (["--noise-rate", "1"], ("noise_rate=1.0", "[0, 1)")),
    (["--set", "noise_rate=nan"], ("noise_rate=nan", "[0, 1)")),
    (["--set", "removal_frac=0"], ("removal_frac=0.0", "(0, 1)")),
    (["--set", "removal_frac=1"], ("removal_frac=1.0", "(0, 1)")),
    (["--set", "vote_k_frac=0"], ("vote_k_frac=0.0", "(0, 1]")),
    (["--set", "vote_k_frac=1.5"], ("vote_k_frac=1.5", "(0, 1]")),
    (["--set", "warmup_frac=1"], ("warmup_frac=1.0", "[0, 1)")),
    (["--set", "lr=inf"], ("lr=inf", "finite")),
    (["--n-train", "3"], ("n_train=3", "at least 4")),
    (["--set", "n_query=0"], ("n_query=0", ">= 1")),
    (["--set", "epochs=0"], ("epochs=0", ">= 1")),
    (["--set", "batch_size=-2"], ("batch_size=-2", ">= 1")),
    (["--seed", "-1"], ("seed=-1", "[0, ")),
    (["--set", "dtype=float16"], ("dtype='float16'", "float32, float64, bfloat16")),
    (["--set", "device=tpu"], ("device='tpu'", "auto, cpu, cuda")),
    (["--task", "glue/wnli"], ("task='glue/wnli'", "glue/sst2")),
    (["--setups", "tracin/all/max"], ("tracin/all/max", "aggregation='max'", "mean, mean_c, rank, vote")),
    (["--setups", "tracin_we/block1/vote"], ("tracin_we/block1/vote", "we, all, type:we")),
    (["--n-train", "100000"], ("exceeds", "task='rt'")),
]


@pytest.mark.parametrize(("argv", "names"), BAD_CLI, ids=[" ".join(a) for a, _ in BAD_CLI])
def test_cli_refuses_bad_values(capsys: pytest.CaptureFixture[str], argv: list[str], names: tuple[str, ...]) -> None:
    err = run_cli(capsys, "run", "--profile", "smoke", "--quiet", *argv)
    for name in names:
        assert name in err, (name, err)


def test_cli_refuses_a_model_path_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    err = run_cli(capsys, "run", "--profile", "smoke", "--model", str(weights))
    assert str(weights) in err and "is a file" in err


@pytest.mark.parametrize(
    ("labels", "names"),
    [([1] * 300, ("only 1 class", "fresh")), ([], ("0 class",)), ([0, 1] * 20, ("exceeds the 40 examples",))],
    ids=["one-class", "empty", "too-small"],
)
def test_cli_refuses_unusable_data(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    labels: list[int],
    names: tuple[str, ...],
) -> None:
    monkeypatch.setenv("LAYERINF_DATA_DIR", str(prepared(tmp_path, labels)))
    err = run_cli(capsys, "run", "--profile", "smoke", "--task", "rt", "--quiet")
    for name in ("task='rt'", *names):
        assert name in err, (name, err)


def test_cli_refuses_a_cache_made_with_another_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A finetune entry whose config.json says another lr: refused before anything is trained."""
    cfg = cli.build_config("smoke", {"n_train": 48}, [])
    store = Store(tmp_path / "store")
    splits = data.make_splits(cfg.task, cfg.n_train, cfg.n_query, cfg.n_eval, cfg.seed, cfg.noise_rate)
    key = {**cfg.subset(STAGE_FIELDS["finetune"]), "data": splits.fingerprint(), "device_type": "cpu"}
    entry = store.path("finetune", key, runner.VERSIONS["finetune"])
    entry.mkdir(parents=True)
    (entry / "config.json").write_text(json.dumps({**key, "lr": 0.5}))
    (entry / "manifest.json").write_text(json.dumps({"files": {}}))
    err = run_cli(capsys, "run", "--profile", "smoke", "--n-train", "48", "--quiet", "--artifacts", str(store.root))
    assert "fields differing: ['lr']" in err and str(entry) in err


@pytest.mark.parametrize(
    ("value", "offline"),
    [
        ("1", True),
        ("ON", True),
        ("yes", True),
        (" true ", True),
        ("0", False),
        ("", False),
        ("false", False),
        ("off", False),
    ],
)
def test_hub_offline_is_read_like_huggingface_hub(monkeypatch, value, offline):
    """One reading of HF_HUB_OFFLINE for models, data and the CLI (before, models treated "off" as offline)."""
    from layerinf import config, models

    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert config.hub_offline() is offline
    monkeypatch.setattr(config, "hub_unreachable", lambda: None)  # as if a hub answered
    monkeypatch.setattr(models, "hub_unreachable", lambda: None)
    if offline:
        with pytest.raises(ConfigError, match="hub access is off"):
            models.model_source("someone/some-model")
    else:
        assert models.model_source("someone/some-model") == "someone/some-model"


def test_vote_k_is_a_fraction_of_the_examples_the_run_has():
    """A GLUE split smaller than n_train (RTE: 2,490 < 4,500) gets k = 20 % of 2,490, not of 4,500."""
    cfg = preset("paper", model="roberta-large", task="glue/rte")
    assert cfg.n_train == 4500 and cfg.vote_k_frac == 0.2
    assert cfg.vote_k(2490) == 498 and cfg.vote_k(4500) == 900 and cfg.vote_k(2) == 1
