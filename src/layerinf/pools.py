"""Pools: every labelled example of a task of the registry (`layerinf.tasks`), read once and cached.

A prepared task is read from ``<data dir>/prepared/<task>.jsonl`` (written by
``python -m layerinf.tools.prepare prepare``) and checked against the sha256 recorded for it; a hub
task (``glue/<name>``) is read with the `datasets` library, imported lazily: from the hub where it
is reachable, or from ``DatasetDict.save_to_disk`` copies under ``LAYERINF_GLUE_DIR``. Sampling
them into a run's examples is `layerinf.data.make_splits`.

No torch here on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerinf import paths, tasks
from layerinf.config import ConfigError, check_task, hub_offline, hub_unreachable
from layerinf.own import is_data_path

_PREPARE_HINT = "run `make data` or `python -m layerinf.tools.prepare prepare`"


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


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """`data_dir`, else ``$LAYERINF_DATA_DIR``, else the checkout's ``data/`` (installed: ``./data``)."""
    return Path(data_dir) if data_dir is not None else paths.data_dir()


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_POOL_CACHE: dict[tuple[str, int, int], Pool] = {}


def _sources_record(root: Path) -> Path | None:
    """The sources.json the prepared files of `root` are checked against: the directory's own, else
    (for the default data directory) the record shipped in the package, else None."""
    local = root / "sources.json"
    if local.is_file():
        return local
    if root.resolve() == paths.default_data_dir().resolve():
        return paths.sources_json()
    return None


def _recorded_sha256(task: str, root: Path) -> tuple[str | None, Path | None]:
    """The sha256 recorded for ``<root>/prepared/<task>.jsonl`` and the file recording it (None if
    nothing is recorded: then only the content hash in the cache keys protects the caches)."""
    path = _sources_record(root)
    if path is None:
        return None, None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))["sources"].get(task, {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError, TypeError) as err:
        raise ConfigError(f"{path} cannot be read ({type(err).__name__}); restore it from the repository") from None
    return (spec.get("prepared_sha256") if isinstance(spec, dict) else None), path


def _read_prepared(task: tasks.TaskSpec, root: Path) -> Pool:
    path = root / "prepared" / f"{task.name}.jsonl"
    if not path.is_file():
        raise ConfigError(f"task={task.name!r}: prepared data file {path} is missing; {_PREPARE_HINT}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _POOL_CACHE:
        return _POOL_CACHE[key]
    expected, record = _recorded_sha256(task.name, root)
    if expected is not None and sha256_file(path) != expected:
        raise ConfigError(
            f"{path} does not match the sha256 recorded in {record} (it was changed after it was "
            f"prepared); re-prepare it: delete it and {_PREPARE_HINT}"
        )
    names = task.label_names
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


def _load_glue_dataset(spec: tasks.TaskSpec, glue_dir: Path | str | None) -> Any:
    """The hub task's DatasetDict: from ``<glue_dir>/<config>`` if a GLUE directory is given, else the hub."""
    assert spec.hub is not None
    task, name, hub_id = spec.name, spec.hub.config, spec.hub.hub_id
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
        return datasets.load_dataset(hub_id, name)
    except Exception as exc:  # network, auth or hub errors: one clear line instead of a traceback
        raise ConfigError(
            f"task={task!r} could not be loaded from the hub ({hub_id}): {type(exc).__name__}: {exc}; set "
            "LAYERINF_GLUE_DIR to a local copy or allow hub access"
        ) from exc


def _glue_pool(spec: tasks.TaskSpec, dataset: Any, split: str) -> Pool:
    hub = spec.hub
    assert hub is not None
    if split not in dataset:
        raise ConfigError(f"task={spec.name!r}: the dataset has no split {split!r} (it has {sorted(dataset)})")
    part = dataset[split]
    fields = [hub.text, "label"] + ([hub.pair] if hub.pair else [])
    missing = [f for f in fields if f not in part.column_names]
    if missing:
        raise ConfigError(f"task={spec.name!r}, split {split!r}: missing column(s) {missing}; has {part.column_names}")
    columns = part.select_columns([*fields, "idx"] if "idx" in part.column_names else fields).to_dict()
    raw = np.asarray(columns["label"], dtype=np.float64)
    keep, labels = hub.labels(raw)  # unlabelled rows (test split) carry -1
    rows = np.flatnonzero(keep)
    idx = columns.get("idx", list(range(len(raw))))
    return _frozen_pool(
        [f"{spec.name}/{split}/{idx[i]}" for i in rows],
        [columns[hub.text][i] for i in rows],
        [columns[hub.pair][i] for i in rows] if hub.pair else None,
        np.asarray(labels, dtype=np.int64)[rows],
        spec.label_names,
    )


def load_pool(task: str, data_dir: Path | str | None = None, glue_dir: Path | str | None = None) -> dict[str, Pool]:
    """All labelled examples of `task`.

    Prepared tasks: ``{"all": pool}`` read from ``<data dir>/prepared/<task>.jsonl``.
    Hub (GLUE) tasks: ``{"train": ..., "validation": ...}`` (MNLI: validation_matched; entailment vs
    neutral only; STS-B: label = score >= 3), from `glue_dir` / ``$LAYERINF_GLUE_DIR`` or the hub.
    Own data (a file or saved dataset, `layerinf.userdata`): ``{}`` once its path is checked; its
    content is read with the run's columns (`userdata.make_user_splits`).
    """
    check_task(task)
    if is_data_path(task):
        return {}
    spec = tasks.get(task)
    if spec.hub is None:
        return {"all": _read_prepared(spec, resolve_data_dir(data_dir))}
    dataset = _load_glue_dataset(spec, glue_dir)
    return {
        "train": _glue_pool(spec, dataset, spec.hub.train),
        "validation": _glue_pool(spec, dataset, spec.hub.validation),
    }
