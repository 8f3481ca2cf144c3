"""Trustworthy caches and clean failures (issue "Trustworthy caches and clean failures").

- Caches: the examples' content is in every key; a changed prepared file is refused; every field that
  changes a stage's output is in that stage's key; run records, gradient chunks and side files are
  verified before they are read.
- Bad values are refused before heavy work, in one line.
- Environment faults give one line and leave nothing corrupted; a fully cached run replays from a
  store it may not write to.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from layerinf import cli, data, execution, experiment, gradients, paths, records, runner
from layerinf.book import cli as bookbuild
from layerinf.cache import Store
from layerinf.config import MAX_SEED, STAGE_FIELDS, ConfigError, preset
from layerinf.runner import Setup

pytestmark = pytest.mark.slow

CFG = preset("smoke", n_train=48, n_query=12, n_eval=24, epochs=1, methods=("tracin", "datainf"))
SETUPS = (Setup("tracin", "all", "mean"),)


@pytest.fixture(autouse=True)
def _offline(offline_env: None) -> None:
    """Every test here runs with the hub off and a private artifact store (`offline_env`)."""


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI; it must fail with exit status 2 and exactly one `error: ...` line, no traceback."""
    status = cli.main(list(argv))
    out = capsys.readouterr()
    assert status == 2, (status, out.out[-500:], out.err[-2000:])
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
    assert "Traceback" not in out.err
    return out.err


def refused(call, *names: str) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    for name in names:
        assert name in message, (name, message)
    assert "\n" not in message
    return message


def copy_data(tmp_path: Path, with_sources: bool = True) -> Path:
    """A private copy of the repository's prepared Rotten Tomatoes data (and its sources.json)."""
    root = tmp_path / "data"
    (root / "prepared").mkdir(parents=True)
    shutil.copy(paths.default_data_dir() / "prepared" / "rt.jsonl", root / "prepared" / "rt.jsonl")
    if with_sources:
        shutil.copy(paths.sources_json(), root / "sources.json")
    return root


def edit_texts(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    for rec in records:
        rec["text"] = rec["text"].upper()
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def stage_entries(store: Store, stage: str) -> list[Path]:
    root = store.root / stage
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


# --------------------------------------------------------------------------------------------------
# The data is in every key


def test_a_changed_prepared_file_is_refused_and_says_how_to_reprepare(tmp_path, monkeypatch) -> None:
    root = copy_data(tmp_path)
    monkeypatch.setenv("LAYERINF_DATA_DIR", str(root))
    edit_texts(root / "prepared" / "rt.jsonl")
    message = refused(lambda: data.make_splits("rt", 40, 10, 10, 0, 0.2), "rt.jsonl", "sha256", "re-prepare")
    assert "make data" in message


def test_changed_texts_are_never_served_from_the_cache(tmp_path, monkeypatch) -> None:
    """Without a recorded checksum (a user's own data directory) the content hash in every key still
    sends changed texts to new entries; the old results are not returned."""
    root = copy_data(tmp_path, with_sources=False)
    monkeypatch.setenv("LAYERINF_DATA_DIR", str(root))
    store = Store(tmp_path / "store")
    first = runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)
    again = runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)
    assert again.record == first.record and len(stage_entries(store, "finetune")) == 1
    edit_texts(root / "prepared" / "rt.jsonl")
    changed = runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)
    assert changed.record != first.record
    for stage in ("finetune", "gradients", "retrain", "runs"):
        assert len(stage_entries(store, stage)) == 2 * (1 + (stage == "retrain")), stage
    assert len(stage_entries(store, "influence")) == 2 * len(CFG.methods)


def test_the_fingerprint_covers_texts_labels_and_noise() -> None:
    s = data.make_splits("rt", 40, 10, 10, 0, 0.2)
    assert s.fingerprint() == data.make_splits("rt", 40, 10, 10, 0, 0.2).fingerprint()
    assert s.fingerprint() != data.make_splits("rt", 40, 10, 10, 1, 0.2).fingerprint()
    assert s.fingerprint() != data.make_splits("rt", 40, 10, 10, 0, 0.3).fingerprint()


# --------------------------------------------------------------------------------------------------
# Every field that changes a stage's output is in that stage's key

#: Fields that are in no key of some stage, and a valid other value for each.
NOT_IN_EVERY_KEY = {
    "grad_batch_size": 7,
    "methods": ("tracin",),
    "datainf_lambda": 0.5,
    "removal_frac": 0.2,
    "vote_k_frac": 0.5,
    "device": "cpu",
    "retrain_pack": 2,  # which retrainings share a pack: the pack's key lists them (`retraining`)
}


def _outputs(store: Store) -> dict[str, dict[str, str]]:
    """Per stage: entry key → sha256 of its payload (its files without config.json / manifest.json)."""
    out: dict[str, dict[str, str]] = {}
    for stage in ("finetune", "influence", "retrain", "retrain_pack", "gradients"):
        for entry in stage_entries(store, stage):
            h = hashlib.sha256()
            for path in sorted(entry.rglob("*")):
                if path.is_file() and path.name not in ("config.json", "manifest.json", "seconds.json"):
                    if path.suffix == ".safetensors" and stage == "gradients":
                        arrays = dict(gradients.load_file(str(path)))
                    elif path.suffix == ".npz":  # zip members carry their write time: compare the arrays
                        with np.load(path, allow_pickle=False) as npz:
                            arrays = {name: npz[name] for name in npz.files}
                    else:
                        h.update(path.read_bytes())
                        continue
                    for name in sorted(arrays):
                        h.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
            out.setdefault(stage, {})[entry.name] = h.hexdigest()
    return out


def test_every_config_field_is_in_the_key_of_each_stage_whose_output_it_changes(tmp_path) -> None:
    """For every RunConfig field: it is in a stage's key, or changing it leaves that stage's outputs
    identical (checked by computing both in separate stores)."""
    all_fields = set(CFG.to_dict())
    for stage, fields in STAGE_FIELDS.items():
        if stage == "data":
            continue
        outside = all_fields - set(fields)
        assert outside <= set(NOT_IN_EVERY_KEY), (stage, sorted(outside - set(NOT_IN_EVERY_KEY)))
    reference = Store(tmp_path / "reference")
    setups = (Setup("tracin", "all", "mean"), Setup("tracin", "all", "vote"))
    runner.run(CFG, setups=setups, baselines=("random",), store=reference, progress=False)
    ref = _outputs(reference)
    for name, value in NOT_IN_EVERY_KEY.items():
        cfg = CFG.replace(**{name: value})
        other = Store(tmp_path / name)
        runner.run(cfg, setups=setups, baselines=("random",), store=other, progress=False)
        got = _outputs(other)
        for stage, entries in got.items():
            for key, digest in entries.items():
                if key in ref.get(stage, {}):  # the same key: the outputs must be the same
                    assert ref[stage][key] == digest, f"{name}={value!r} changes {stage} but not its key"


# --------------------------------------------------------------------------------------------------
# Everything read from the store is verified


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Store, runner.RunResult]:
    store = Store(tmp_path / "store")
    return store, runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)


def test_an_edited_record_config_is_reported_not_served(recorded) -> None:
    store, result = recorded
    config = result.record / "config.json"
    edited = json.loads(config.read_text())
    edited["noise_rate"] = 0.4
    config.write_text(json.dumps(edited))
    with pytest.warns(RuntimeWarning, match="corrupted"):
        tables = records.collect_results(store)
    assert tables == {}


def test_unfinished_and_manifestless_records_are_never_read(recorded) -> None:
    store, result = recorded
    tmp = result.record.with_name(result.record.name + ".tmp-deadbeef")
    shutil.copytree(result.record, tmp)
    assert len(records.collect_results(store)["detection"]["run"].unique()) == 1  # the .tmp copy is not read
    (result.record / "manifest.json").unlink()
    with pytest.warns(RuntimeWarning, match="no manifest.json"):
        assert records.collect_results(store) == {}


def test_a_gradient_chunk_from_another_slot_is_recomputed(tmp_path, monkeypatch) -> None:
    """A chunk carries its identity (key, split, position) under its checksum: the train chunk copied
    into the query slot is not accepted, although it is a valid chunk of the same size."""
    store = Store(tmp_path / "store")
    cfg = CFG.replace(n_query=48)  # train and query chunks of the same size
    reference = runner.run(cfg, baselines=(), store=store, progress=False)
    work = stage_entries(store, "gradients")[0]
    shutil.copy(work / "train" / "chunk_00000.safetensors", work / "query" / "chunk_00000.safetensors")
    calls = []
    original = gradients._chunk_arrays
    monkeypatch.setattr(gradients, "_chunk_arrays", lambda *a, **k: calls.append(1) or original(*a, **k))
    for entry in stage_entries(store, "influence") + stage_entries(store, "runs"):
        shutil.rmtree(entry)  # force the scores to be recomputed from the gradients
    again = runner.run(cfg, baselines=(), store=store, progress=False)
    assert calls == [1]  # only the swapped chunk
    assert again.detection.equals(reference.detection)


def test_a_damaged_side_file_is_replaced_with_a_warning(recorded) -> None:
    store, _ = recorded
    seconds = stage_entries(store, "gradients")[0] / "seconds.json"
    seconds.write_text("")
    with pytest.warns(RuntimeWarning, match="seconds.json is unreadable"):
        runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)
    seconds.write_text(json.dumps({"seconds": 1.0, "sha256": "0" * 64}))
    with pytest.warns(RuntimeWarning, match="fails its checksum"):
        runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)
    assert json.loads(seconds.read_text())["sha256"] != "0" * 64


def test_a_cached_run_replays_without_writing_anything(recorded, monkeypatch) -> None:
    """A fully cached run writes nothing (so it replays from a read-only store), even when no lock
    file can be created."""
    store, first = recorded

    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in store.root.rglob("*")}

    before = snapshot()

    def no_lock(self, *args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", self.lock_file)

    monkeypatch.setattr(gradients.FileLock, "acquire", no_lock)
    again = runner.run(CFG, setups=SETUPS, baselines=("random",), store=store, progress=False)
    assert snapshot() == before
    assert again.retraining.equals(first.retraining) and again.detection.equals(first.detection)


# --------------------------------------------------------------------------------------------------
# Bad values refused before heavy work


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def heavy(*args, **kwargs):
        raise AssertionError("training started before the bad value was refused")

    monkeypatch.setattr(runner, "fit", heavy)
    monkeypatch.setattr(gradients, "_chunk_arrays", heavy)


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch, no_training) -> None:
    monkeypatch.setattr(runner, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr(runner, "load_tokenizer", lambda *a, **k: pytest.fail("the tokenizer was loaded"))


def test_an_oracle_without_noise_and_a_rate_that_flips_nothing_are_refused_before_the_model_is_loaded(
    no_model, tmp_path
) -> None:
    # noise_rate=0 is a mode of its own (tests/test_own.py), but there is nothing for the oracle to remove
    refused(lambda: runner.run(CFG.replace(noise_rate=0.0), store=Store(tmp_path)), "oracle", "noise_rate=0")
    refused(lambda: runner.run(CFG.replace(noise_rate=0.001), store=Store(tmp_path)), "noise_rate=0.001", "no label")


def test_a_layer_the_model_lacks_is_refused_before_fine_tuning(no_training, tmp_path) -> None:
    refused(lambda: runner.run(CFG, groups=("layer5",), store=Store(tmp_path)), "layer5", "layers 0..1")


def test_a_length_the_model_cannot_embed_is_refused_before_loading_it(no_model, tmp_path) -> None:
    refused(lambda: runner.run(CFG.replace(max_length=512), store=Store(tmp_path)), "max_length=512", "128")


def test_seeds_beyond_the_generators_are_refused() -> None:
    refused(lambda: CFG.replace(seed=MAX_SEED + 1), f"seed={MAX_SEED + 1}", str(MAX_SEED))
    assert CFG.replace(seed=MAX_SEED).seed == MAX_SEED


BAD_GRIDS = [
    ({"tasks": [None]}, ("tasks must be a list of names", "None")),
    ({"tasks": [["rt", "spam"]]}, ("tasks must be a list of names", "list")),
    ({"models": {"tiny": 1}}, ("models=", "non-empty list")),
    ({"seeds": ["0"]}, ("seeds must be a list of integers", "'0'")),
    ({"seeds": [True]}, ("seeds must be a list of integers",)),
    ({"noise_rates": ["high"]}, ("noise_rates must be a list of numbers",)),
    ({"baselines": "random"}, ()),  # a bare string is one baseline, not six letters
    ({"baselines": "randomly"}, ("baselines='randomly'",)),
    ({"profile": ["smoke"]}, ("profile=['smoke']", "one name")),
    ({"setups": [None]}, ("setups must be a list of names",)),
]


@pytest.mark.parametrize(("change", "names"), BAD_GRIDS, ids=[str(c) for c, _ in BAD_GRIDS])
def test_grid_files_with_wrong_types_are_refused_in_one_line(tmp_path, change, names) -> None:
    spec = {"profile": "smoke", "models": ["tiny"], "tasks": ["rt"], "seeds": [0], **change}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    if not names:
        assert experiment.load(path).jobs[0].baselines == ("random",)
        return
    refused(lambda: experiment.load(path), *names)


def test_a_grid_file_that_is_not_utf8_is_refused(tmp_path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_bytes(b"models: [tiny]\ntasks: [\xff]\n")
    refused(lambda: experiment.load(path), "not UTF-8", "grid.yaml")


def test_a_sweep_checks_every_model_before_the_first_job(tmp_path, monkeypatch) -> None:
    path = tmp_path / "grid.yaml"
    missing = tmp_path / "no-such-model"
    path.write_text(
        yaml.safe_dump({"profile": "smoke", "models": ["tiny", str(missing)], "tasks": ["rt"], "seeds": [0]})
    )
    monkeypatch.setattr(execution, "_run", lambda *a, **k: pytest.fail("a job started"))
    refused(lambda: execution.run_experiment(experiment.load(path)), str(missing), "no such directory")


@pytest.mark.parametrize(
    ("files", "names"),
    [
        ({}, ("is empty",)),
        ({"config.json": "{not json"}, ("config.json is not valid JSON",)),
        ({"config.json": "[]"}, ("names no model_type",)),
        (
            {"config.json": '{"model_type": "bert"}', "pytorch_model.bin": "x"},
            ("pytorch_model.bin", "safetensors only"),
        ),
        ({"config.json": '{"model_type": "bert"}'}, ("no weights",)),
    ],
    ids=["empty", "corrupt-config", "not-a-config", "pickle-only", "no-weights"],
)
def test_bad_local_model_directories_are_named_in_one_line(capsys, tmp_path, files, names) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name, text in files.items():
        (model / name).write_text(text)
    err = one_line_error(capsys, "run", "--profile", "smoke", "--model", str(model), "--quiet")
    for name in (str(model), *names):
        assert name in err, (name, err)


# --------------------------------------------------------------------------------------------------
# Environment faults: one line


def test_an_artifact_root_that_is_a_file(capsys, tmp_path) -> None:
    root = tmp_path / "store"
    root.write_text("not a directory")
    err = one_line_error(capsys, "run", "--profile", "smoke", "--quiet", "--artifacts", str(root))
    assert str(root) in err and "is a file" in err


def test_a_full_disk_names_the_path_and_leaves_no_corrupt_entry(capsys, tmp_path, monkeypatch) -> None:
    store = tmp_path / "store"
    full = {"path": ""}

    def no_space(state, path):
        full["path"] = path
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(runner, "_state_save", no_space)
    err = one_line_error(capsys, "run", "--profile", "smoke", "--n-train", "48", "--quiet", "--artifacts", str(store))
    assert "No space left on device" in err and str(full["path"]) in err
    finetune = store / "finetune"
    assert [p for p in finetune.iterdir() if p.is_dir()] == []  # the temporary entry was removed


def test_an_unwritable_output_is_refused_before_reading_the_store(capsys, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = one_line_error(capsys, "results", "--output", str(blocker / "out.csv"), "--artifacts", str(tmp_path))
    assert str(blocker) in err and "is a file, not a folder" in err


def test_a_damaged_prepared_file(capsys, tmp_path, monkeypatch) -> None:
    root = copy_data(tmp_path)
    with (root / "prepared" / "rt.jsonl").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xfe")
    monkeypatch.setenv("LAYERINF_DATA_DIR", str(root))
    err = one_line_error(capsys, "run", "--profile", "smoke", "--quiet")
    assert "rt.jsonl" in err and "re-prepare" in err
    (root / "sources.json").unlink()  # no checksum to compare with: the bytes themselves are refused
    err = one_line_error(capsys, "run", "--profile", "smoke", "--quiet")
    assert "rt.jsonl" in err and "not UTF-8" in err


def test_a_damaged_glue_copy(capsys, tmp_path, monkeypatch) -> None:
    glue = tmp_path / "glue"
    (glue / "rte").mkdir(parents=True)
    (glue / "rte" / "dataset_dict.json").write_text("{garbage")
    monkeypatch.setenv("LAYERINF_GLUE_DIR", str(glue))
    err = one_line_error(capsys, "run", "--profile", "smoke", "--task", "glue/rte", "--quiet")
    assert str(glue / "rte") in err and "cannot be read" in err


def test_a_device_this_machine_lacks(capsys) -> None:
    import torch

    if torch.backends.mps.is_available():  # pragma: no cover - only on Apple machines
        pytest.fail("this test expects a machine without Apple MPS")
    err = one_line_error(capsys, "run", "--profile", "smoke", "--set", "device=mps", "--quiet")
    assert "device='mps'" in err and "not available" in err


def test_an_unreachable_hub_fails_fast(capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    err = one_line_error(capsys, "run", "--profile", "smoke", "--model", "org/some-model", "--quiet")
    assert time.perf_counter() - start < 15
    assert "org/some-model" in err and "unreachable" in err


def test_the_book_checks_its_options_before_vendoring_anything(monkeypatch, capsys) -> None:
    monkeypatch.setattr(bookbuild, "vendor_mathjax", lambda *a, **k: pytest.fail("vendored before checking"))
    assert bookbuild.main(["--only", "c9_nothing"]) == 2
    assert "c9_nothing" in capsys.readouterr().err
    assert bookbuild.main(["--model", "/no/such/model"]) == 2
    assert "/no/such/model" in capsys.readouterr().err


def test_noise_floor_and_splits_are_deterministic_with_large_seeds(tmp_path) -> None:
    s = data.make_splits("rt", 40, 10, 10, MAX_SEED, 0.2)
    assert s.noisy_mask.sum() == 8 and np.unique(s.train.ids).size == 40


def test_the_book_checks_every_run_a_set_value_describes_before_executing(monkeypatch, capsys) -> None:
    monkeypatch.setattr(bookbuild, "vendor_mathjax", lambda *a, **k: pytest.fail("vendored before checking"))
    monkeypatch.setattr(bookbuild, "execute_notebook", lambda *a, **k: pytest.fail("executed before checking"))
    assert bookbuild.main(["--profile", "smoke", "--set", "n_train=abc"]) == 2
    assert "n_train='abc'" in capsys.readouterr().err
    assert bookbuild.main(["--profile", "smoke", "--set", "seeds=[-4]"]) == 2
    assert "seed=-4" in capsys.readouterr().err
    assert bookbuild.main(["--profile", "smoke", "--set", "setups=[tracin/block9/mean]"]) == 2
    assert "block9" in capsys.readouterr().err
