"""Fault tests: killed runs resume, corrupted caches are recomputed, concurrent runs share one cache,
runs are bitwise reproducible, and the package keeps its security hygiene (issue 6).

Every run here is the random 2-layer `tiny` model on 48 training examples, one epoch, with gradient
chunks of 8 examples (6 training chunks + 2 query chunks) and 3 retrainings (2 setups + the random
baseline). Real runs are child processes (`CHILD` below) so they can be killed with SIGKILL; the
corruption tests run the pipeline in this process on a copy of the reference run's artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from layerinf import gradients, records, runner
from layerinf.cache import CacheMismatch, Store
from layerinf.config import preset
from layerinf.scores import ModuleScores
from layerinf.setups import parse_setups

#: retrain_pack=1: the sequential path (one `retrain` entry per retraining); packs: tests/test_multitrain.py.
CFG = {
    "n_train": 48,
    "n_query": 12,
    "n_eval": 24,
    "epochs": 1,
    "methods": ["tracin", "datainf", "tracin_we"],
    "retrain_pack": 1,
}
SETUPS = ["tracin/all/mean", "tracin/block1/vote"]
BASELINES = ["random"]
CHUNK = 8
N_TRAIN_CHUNKS, N_QUERY_CHUNKS = 6, 2  # ceil(48 / 8), ceil(12 / 8)
N_RETRAIN = len(SETUPS) + len(BASELINES)
TABLES = records.TABLES
SECRET = "hf_faultTestSentinel0123456789"  # an HF_TOKEN that must never reach a log or an artifact

#: The child process: one run with small gradient chunks. It counts what it computes (rewritten
#: after every count, so a killed child leaves its counts behind) and can pause after every gradient
#: chunk and every fine-tuning / retraining, which makes the kill windows wide.
CHILD = r"""
import json, os, sys, time
from pathlib import Path

from layerinf import gradients, records, runner
from layerinf.cache import Store
from layerinf.config import preset
from layerinf.setups import parse_setups

spec = json.loads(sys.argv[1])
counts_path = Path(sys.argv[2])
pause = float(spec["pause"])
gradients.CHUNK_EXAMPLES = spec["chunk"]
counts = {"chunks": 0, "finetune": 0, "retrain": 0}


def bump(what):
    counts[what] += 1
    counts_path.write_text(json.dumps(counts))


real_chunk, real_fit = gradients._chunk_arrays, runner.fit


def chunk(*args, **kwargs):
    out = real_chunk(*args, **kwargs)
    bump("chunks")
    time.sleep(pause)
    return out


def fit(*args, **kwargs):
    out = real_fit(*args, **kwargs)
    bump("finetune" if kwargs.get("init_state") is None else "retrain")
    time.sleep(pause)
    return out


gradients._chunk_arrays, runner.fit = chunk, fit
counts_path.write_text(json.dumps(counts))
cfg = preset("smoke", **spec["cfg"])
result = runner.run(
    cfg,
    setups=parse_setups(spec["setups"]),
    baselines=spec["baselines"],
    store=Store(Path(os.environ["LAYERINF_ARTIFACTS"])),
    progress=False,
)
for name in records.TABLES:
    getattr(result, name).to_csv(counts_path.with_suffix(f".{name}.csv"), index=False)
print("done")
"""


def cfg():
    return preset("smoke", **{**CFG, "methods": tuple(CFG["methods"])})


def child_env(root: Path) -> dict[str, str]:
    # The caller's PYTHONPATH is kept, so that a checkout run from a worktree tests its own package.
    extra = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    return {
        **extra,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "HF_HUB_OFFLINE": "1",
        "HF_TOKEN": SECRET,
        "LAYERINF_ARTIFACTS": str(root),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONHASHSEED": "0",
    }


def start(root: Path, work: Path, name: str, pause: float = 0.0) -> tuple[subprocess.Popen, Path]:
    """Start a child run writing into `root`; returns the process and its counts file."""
    script = work / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    spec = {"cfg": CFG, "setups": SETUPS, "baselines": BASELINES, "chunk": CHUNK, "pause": pause}
    counts = work / f"{name}.json"
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec), str(counts)],
        env=child_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, counts


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert SECRET not in out and SECRET not in err
    return out + err


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 240) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (status {proc.returncode}) before the kill point:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the kill point was not reached in time")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def counts(path: Path) -> dict[str, int]:
    return json.loads(path.read_text())


def train_chunks(root: Path) -> list[Path]:
    return sorted(root.glob("gradients/*/train/chunk_*.safetensors"))


def manifests(root: Path, stage: str) -> list[Path]:
    return sorted(root.glob(f"{stage}/*/manifest.json"))


def stamp(paths: list[Path]) -> dict[Path, tuple[int, int, str]]:
    """(inode, mtime_ns, sha256) of each file: unchanged means neither rewritten nor replaced."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths}


def record(root: Path) -> Path:
    entries = manifests(root, "runs")
    assert len(entries) == 1, entries
    return entries[0].parent


def assert_same_tables(root: Path, reference: Path) -> None:
    """The recorded tables are byte-identical to the reference run's."""
    got, want = record(root), record(reference)
    assert got.name == want.name
    for name in TABLES:  # an empty table is not written (a noisy run has no agreement table)
        assert (got / f"{name}.csv").exists() == (want / f"{name}.csv").exists(), name
        if (want / f"{name}.csv").exists():
            assert (got / f"{name}.csv").read_bytes() == (want / f"{name}.csv").read_bytes(), name


def assert_same_scores(root: Path, reference: Path) -> None:
    """Every method's per-module scores are bitwise identical to the reference run's."""
    ours = {p.parent.name: p for p in root.glob("influence/*/scores.npz")}
    theirs = {p.parent.name: p for p in reference.glob("influence/*/scores.npz")}
    assert ours.keys() == theirs.keys() and len(ours) == len(CFG["methods"])
    for key in ours:
        a, b = ModuleScores.load(ours[key]), ModuleScores.load(theirs[key])
        assert a.values.dtype == b.values.dtype and a.values.tobytes() == b.values.tobytes(), a.method


def assert_same_entries(root: Path, reference: Path, stages: tuple[str, ...] = ("finetune", "retrain")) -> None:
    """The stages' files (checkpoints, training histories with their losses) are byte-identical to
    the reference run's; manifest.json is left out (it records the wall time)."""
    for stage in stages:
        ours, theirs = (
            {p.relative_to(r): p.read_bytes() for p in sorted(r.glob(f"{stage}/*/*")) if p.name != "manifest.json"}
            for r in (root, reference)
        )
        assert ours.keys() == theirs.keys(), stage
        for key in ours:
            assert ours[key] == theirs[key], key


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def assert_intact(root: Path) -> None:
    """One intact entry per stage and configuration, no temporary leftovers, valid chunks."""
    assert leftovers(root) == []
    assert len(manifests(root, "finetune")) == 1
    assert len(manifests(root, "influence")) == len(CFG["methods"])
    assert len(manifests(root, "retrain")) == N_RETRAIN
    assert len(manifests(root, "runs")) == 1
    for stage in ("finetune", "influence", "retrain", "runs"):
        entries = [p for p in (root / stage).iterdir() if not p.name.endswith(".lock")]
        assert len(entries) == len(manifests(root, stage)), entries  # no half-written directory
        assert all(Store.verify(m.parent) for m in manifests(root, stage)), stage
    work = [p for p in (root / "gradients").iterdir() if p.is_dir()]
    assert len(work) == 1
    for name, n_chunks, size in (("train", N_TRAIN_CHUNKS, 48), ("query", N_QUERY_CHUNKS, 12)):
        chunks = sorted((work[0] / name).glob("chunk_*.safetensors"))
        assert len(chunks) == n_chunks
        for k, path in enumerate(chunks):
            n = min(CHUNK, size - k * CHUNK)
            label = gradients.chunk_label(f"gradients/{work[0].name}/{name}", k, k * CHUNK, n)
            assert gradients._read_chunk(path, k * CHUNK, n, label, remove_bad=False) is not None, path


# --------------------------------------------------------------------------------------------------
# Reference and concurrent runs (shared by several tests)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run in its own artifact directory (HF_TOKEN set to a sentinel)."""
    work = tmp_path_factory.mktemp("reference")
    root = work / "artifacts"
    proc, counts_file = start(root, work, "reference")
    finish(proc)
    assert counts(counts_file) == {"chunks": N_TRAIN_CHUNKS + N_QUERY_CHUNKS, "finetune": 1, "retrain": N_RETRAIN}
    return root


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Two runs of the same configuration started at once into one fresh artifact directory."""
    work = tmp_path_factory.mktemp("concurrent")
    root = work / "artifacts"
    procs = [start(root, work, f"writer{i}") for i in range(2)]
    for proc, _ in procs:
        finish(proc)
    return root, [c for _, c in procs]


# --------------------------------------------------------------------------------------------------
# Kill and resume


@pytest.mark.slow
def test_killed_mid_gradients_then_mid_retraining_resumes_to_identical_results(reference: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"

    # 1. Kill while the training gradients are being written (some chunks exist, not all).
    proc, first = start(root, tmp_path, "first", pause=0.4)
    kill_when(proc, lambda: 2 <= len(train_chunks(root)) < N_TRAIN_CHUNKS)
    finetune = stamp(manifests(root, "finetune") + sorted(root.glob("finetune/*/*.safetensors")))
    assert len(finetune) == 3  # manifest, init and best checkpoints
    chunks_before = stamp(train_chunks(root))
    n_chunks = len(chunks_before)
    assert 2 <= n_chunks < N_TRAIN_CHUNKS and manifests(root, "retrain") == []
    assert counts(first)["finetune"] == 1

    # 2. Resume; kill again once fine-tuning is read and some (not all) retrainings are finished.
    proc, second = start(root, tmp_path, "second", pause=1.5)
    kill_when(proc, lambda: len(manifests(root, "retrain")) >= 1)
    done = stamp(manifests(root, "retrain") + sorted(root.glob("retrain/*/result.json")))
    n_done = len(manifests(root, "retrain"))
    assert 1 <= n_done < N_RETRAIN
    got = counts(second)
    assert got["finetune"] == 0  # read from the cache
    assert got["chunks"] == N_TRAIN_CHUNKS - n_chunks + N_QUERY_CHUNKS  # only the missing chunks
    assert stamp(list(finetune)) == finetune and stamp(list(chunks_before)) == chunks_before

    # 3. Resume to the end: nothing finished is computed again; the results equal the reference.
    proc, third = start(root, tmp_path, "third")
    finish(proc)
    got = counts(third)
    assert got == {"chunks": 0, "finetune": 0, "retrain": N_RETRAIN - n_done}
    assert stamp(list(finetune)) == finetune
    assert stamp(list(chunks_before)) == chunks_before
    assert stamp(list(done)) == done
    assert_same_tables(root, reference)
    assert_same_scores(root, reference)
    assert_same_entries(root, reference)  # retrainings after a resume: the same models, to the bit
    assert_intact(root)  # incl. the temporary files the two kills left behind: cleaned up
    print(
        f"kill/resume: {n_chunks}/{N_TRAIN_CHUNKS} train chunks reused, "
        f"{N_TRAIN_CHUNKS - n_chunks} + {N_QUERY_CHUNKS} query recomputed; "
        f"{n_done}/{N_RETRAIN} retrainings reused, {N_RETRAIN - n_done} recomputed"
    )


# --------------------------------------------------------------------------------------------------
# Concurrency and determinism


@pytest.mark.slow
def test_two_concurrent_runs_share_one_intact_cache(concurrent: tuple[Path, list[Path]], reference: Path) -> None:
    root, count_files = concurrent
    assert_intact(root)
    # The locks make the second writer wait and read: every stage was computed exactly once.
    total = {k: sum(counts(c)[k] for c in count_files) for k in ("chunks", "finetune", "retrain")}
    assert total == {"chunks": N_TRAIN_CHUNKS + N_QUERY_CHUNKS, "finetune": 1, "retrain": N_RETRAIN}
    # Both processes returned the same tables, equal to what the store recorded.
    for name in TABLES:
        a, b = (c.with_suffix(f".{name}.csv").read_bytes() for c in count_files)
        assert a == b, name
    assert_same_tables(root, reference)


def test_gradient_chunk_store_replaces_atomically_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk is written under a per-pid temporary name and renamed: a reader holding the old file
    keeps a complete file while a writer replaces it; a killed writer's temporary file is removed."""
    store = tmp_path / "train"
    store.mkdir()
    arrays = {"losses": np.arange(4.0), "logits": np.ones((4, 2))}
    stale = store / "chunk_00000.safetensors.tmp99999"
    stale.write_bytes(b"half a file")
    calls = []

    def fake(model, mm, enc, index, *args):
        calls.append(len(index))
        return {k: v[: len(index)].copy() for k, v in arrays.items()}

    monkeypatch.setattr(gradients, "_chunk_arrays", fake)

    class Chunks(list):  # stands in for the assembly: keeps the chunks as they come
        def __init__(self, *_: object) -> None:
            super().__init__()

        def add(self, arrays: dict) -> None:
            self.append(arrays)

        def result(self, _: object) -> list:
            return list(self)

        def write_we_rows(self) -> None: ...  # the fake chunks carry no word-embedding rows

    monkeypatch.setattr(gradients, "_Assembly", Chunks)
    monkeypatch.setattr(gradients, "CHUNK_EXAMPLES", 4)

    class Model:
        training = False

        def eval(self) -> None: ...

        def train(self, mode: bool) -> None: ...

    first = gradients.collect(Model(), None, range(4), 0, store=store, progress=False)
    assert not stale.exists() and calls == [4]
    path = store / "chunk_00000.safetensors"
    inode = path.stat().st_ino
    # A second writer replacing the chunk while a reader holds the old one open: both stay whole.
    with path.open("rb") as reader:
        path.unlink()
        second = gradients.collect(Model(), None, range(4), 0, store=store, progress=False)
        assert len(reader.read()) > 0
    assert path.stat().st_ino != inode and calls == [4, 4]
    np.testing.assert_array_equal(first[0]["losses"], second[0]["losses"])
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_scores_and_metrics(
    reference: Path, concurrent: tuple[Path, list[Path]]
) -> None:
    """Two fresh runs in different artifact directories (the reference and the concurrent one)."""
    root, _ = concurrent
    assert_same_scores(root, reference)
    assert_same_tables(root, reference)
    assert_same_entries(root, reference)  # checkpoints and retraining histories too


# --------------------------------------------------------------------------------------------------
# Corruption (in this process, on a copy of the reference run)


@pytest.fixture
def copy(reference: Path, tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    shutil.copytree(reference, root)
    return root


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test (hub access is off)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def rerun(monkeypatch: pytest.MonkeyPatch, no_network: None) -> Iterator[Callable[[Path], dict[str, int]]]:
    """Run the reference configuration in this process; returns what was computed."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(gradients, "CHUNK_EXAMPLES", CHUNK)
    computed = {"chunks": 0, "finetune": 0, "retrain": 0, "influence": 0}
    real_chunk, real_fit, real_scores = gradients._chunk_arrays, runner.fit, runner.compute_scores

    def chunk(*args, **kwargs):
        computed["chunks"] += 1
        return real_chunk(*args, **kwargs)

    def fit(*args, **kwargs):
        computed["finetune" if kwargs.get("init_state") is None else "retrain"] += 1
        return real_fit(*args, **kwargs)

    def scores(*args, **kwargs):
        computed["influence"] += 1
        return real_scores(*args, **kwargs)

    monkeypatch.setattr(gradients, "_chunk_arrays", chunk)
    monkeypatch.setattr(runner, "fit", fit)
    monkeypatch.setattr(runner, "compute_scores", scores)

    def go(root: Path) -> dict[str, int]:
        for key in computed:
            computed[key] = 0
        runner.run(cfg(), setups=parse_setups(SETUPS), baselines=BASELINES, store=Store(root), progress=False)
        return dict(computed)

    yield go


def flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))


def flip_safetensors_data(path: Path) -> None:
    """Flip one byte in the tensor data (past the JSON header): only a checksum can notice."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start + (len(data) - start) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


NOTHING = {"chunks": 0, "finetune": 0, "retrain": 0, "influence": 0}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "damage", "recomputed"),
    [
        ("finetune/*/best.safetensors", truncate, {"finetune": 1}),
        ("finetune/*/init.safetensors", flip_safetensors_data, {"finetune": 1}),
        ("influence/*/scores.npz", flip_byte, {"influence": 1}),
        ("influence/*/scores.npz", truncate, {"influence": 1}),
        ("retrain/*/result.json", truncate, {"retrain": 1}),
        ("retrain/*/result.json", flip_byte, {"retrain": 1}),
        ("gradients/*/train/chunk_00003.safetensors", flip_safetensors_data, {"chunks": 1}),
        ("gradients/*/query/chunk_00001.safetensors", truncate, {"chunks": 1}),
        ("finetune/*/config.json", truncate, {"finetune": 1}),  # garbled, not a different config
        ("finetune/*/manifest.json", truncate, {"finetune": 1}),
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", None),
)
def test_corrupted_entry_is_detected_and_recomputed(
    copy: Path,
    reference: Path,
    rerun: Callable[[Path], dict[str, int]],
    target: str,
    damage: Callable[[Path], None],
    recomputed: dict[str, int],
) -> None:
    path = sorted(copy.glob(target))[0]
    damage(path)
    assert rerun(copy) == {**NOTHING, **recomputed}
    assert_same_tables(copy, reference)
    assert_same_scores(copy, reference)
    assert_same_entries(copy, reference)
    assert_intact(copy)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "field", "value"),
    [
        ("finetune", "lr", 0.5),
        ("influence", "datainf_lambda", 9.0),
        ("gradients", "n_train", 4),
        ("retrain", "epochs", 7),
    ],
)
def test_tampered_config_is_refused_naming_the_field(
    copy: Path, rerun: Callable[[Path], dict[str, int]], target: str, field: str, value: object
) -> None:
    path = sorted(copy.glob(f"{target}/*/config.json"))[-1]
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(CacheMismatch, match=rf"fields differing: \['{field}'\]"):
        rerun(copy)


@pytest.mark.slow
def test_corrupted_run_record_is_skipped_then_rewritten(
    copy: Path, reference: Path, rerun: Callable[[Path], dict[str, int]]
) -> None:
    flip_byte(record(copy) / "detection.csv")
    with pytest.warns(RuntimeWarning, match="corrupted"):
        assert records.collect_results(Store(copy)) == {}
    assert rerun(copy) == NOTHING  # every stage read from the cache, the record written again
    assert_same_tables(copy, reference)
    tables = records.collect_results(Store(copy))
    assert set(tables) == set(TABLES) - {"agreement"} and len(tables["retraining"]) == N_RETRAIN  # noisy: none


def test_collect_results_skips_stale_and_corrupted_records(tmp_path: Path) -> None:
    store = Store(tmp_path)

    stages = {k: v for k, v in runner.VERSIONS.items() if k != "runs"}

    def write(version: int, seed: int, stage_versions: dict | None = stages) -> Path:
        def compute(out: Path) -> None:
            (out / "detection.csv").write_text(f"method,seed\ntracin,{seed}\n")

        return store.cached("runs", {"seed": seed, "stage_versions": stage_versions}, version, compute)

    write(runner.VERSIONS["runs"] - 1, 1)  # made by older code: stale, left out silently
    # tables computed from gradients of an older version: stale too, however new the record
    write(runner.VERSIONS["runs"], 4, {**stages, "gradients": stages["gradients"] - 1})
    write(runner.VERSIONS["runs"], 5, None)  # a record from before stage versions were recorded
    current = write(runner.VERSIONS["runs"], 2)
    broken = write(runner.VERSIONS["runs"], 3)
    flip_byte(broken / "detection.csv", 0.9)
    with pytest.warns(RuntimeWarning, match=f"{broken}.*corrupted"):
        tables = records.collect_results(store)
    assert tables["detection"].to_dict("records") == [{"method": "tracin", "seed": 2, "run": current.name}]


def test_record_key_changes_with_every_stage_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bumping any stage's version gives a run a new record: old tables are never rewritten as new
    nor served as current (regression: the key held only the configuration)."""
    cfg = preset("smoke", **CFG)
    before = records.record_key(cfg, [], ["random"])
    for stage in ("finetune", "gradients", "influence", "retrain"):
        monkeypatch.setitem(runner.VERSIONS, stage, runner.VERSIONS[stage] + 1)
        after = records.record_key(cfg, [], ["random"])
        assert after != before, stage
        before = after


# --------------------------------------------------------------------------------------------------
# Security hygiene

SRC = Path(__file__).resolve().parents[1] / "src" / "layerinf"


def source_lines() -> Iterator[tuple[str, int, str]]:
    for path in sorted(SRC.rglob("*.py")):
        for no, line in enumerate(path.read_text().splitlines(), 1):
            yield path.name, no, line


def test_no_pickle_anywhere_in_the_package() -> None:
    modules = r"(c?pickle|dill|joblib|shelve|marshal|cloudpickle)"
    patterns = [
        rf"^\s*(import|from)\s+{modules}\b",  # importing a pickle-based serialiser
        rf"\b{modules}\.\w+\(",  # calling one
        r"(read|to)_pickle\(",  # pandas
        r"allow_pickle\s*=\s*True",
        r"torch\.save\(",  # pickle inside
        r"torch\.load\((?!.*weights_only\s*=\s*True)",
        r"np\.load\((?!.*allow_pickle\s*=\s*False)",
    ]
    bad = [
        f"{name}:{no}: {line.strip()}"
        for name, no, line in source_lines()
        if any(re.search(p, line.split("#", 1)[0]) for p in patterns)
    ]
    assert bad == []


def _calls(text: str, name: str) -> list[str]:
    """The text of every call `name(...)` in `text`, parentheses matched."""
    out = []
    for match in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[match.start() : i])
    return out


def test_no_remote_code_and_no_token_handling() -> None:
    """Every `from_pretrained` call passes trust_remote_code=False explicitly (so no prompt or default
    can ever enable remote code) and nothing passes anything else for it; tokens are left to
    huggingface_hub, which reads them from the environment: the package neither reads, passes nor
    prints one."""
    bad = []
    for name, no, line in source_lines():
        if "trust_remote_code" in line and "trust_remote_code=False" not in line:
            bad.append(f"{name}:{no}: {line.strip()}")
        if re.search(r"\b(HF_TOKEN|HUGGING_FACE_HUB_TOKEN|use_auth_token)\b", line):
            bad.append(f"{name}:{no}: {line.strip()}")
        if re.search(r"\btoken\s*=", line):
            bad.append(f"{name}:{no}: {line.strip()}")
    assert bad == []
    calls = [c for p in sorted(SRC.rglob("*.py")) for c in _calls(p.read_text(), "from_pretrained")]
    assert len(calls) >= 4 and all("trust_remote_code=False" in c for c in calls), calls


@pytest.mark.slow
def test_artifacts_hold_no_pickle_and_no_token(reference: Path) -> None:
    """Every artifact of a real run opens without pickle, and the sentinel HF_TOKEN the run had in
    its environment appears in no file (its stdout and stderr were checked in `finish`)."""
    from safetensors import safe_open

    files = [p for p in reference.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert suffixes <= {".json", ".csv", ".npz", ".npy", ".safetensors", ".lock", ""}, suffixes
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    assert data[key].dtype != object
        elif path.suffix == ".npy":  # memory-mapped gradients: plain numeric arrays
            assert np.load(path, mmap_mode="r", allow_pickle=False).dtype != object
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="np") as fh:
                assert list(fh.keys())
