"""Own data and own model state: the light checks of the fields that name them (NumPy-free).

A run's task may be the user's own data instead of a registered task: a CSV / TSV / JSONL file or a
directory written by ``datasets``' ``save_to_disk`` (read and checked by `layerinf.userdata`), with
optional separate query and evaluation files. Its model state may be the user's own fine-tuned
adapter (`RunConfig.adapter`, loaded by `layerinf.adapters`): the run then skips fine-tuning.

`layerinf.config` calls these checks from `RunConfig.__post_init__`, so only the standard library is
imported here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from layerinf import tasks as _tasks
from layerinf.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from layerinf.config import RunConfig

#: The file endings own data may have (or it is a ``save_to_disk`` directory).
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".jsonl", ".json")
#: What own data may be, in one phrase (for error messages and help).
OWN_DATA = "a .csv, .tsv or .jsonl file, or a datasets save_to_disk directory"
#: The own-data and own-adapter fields of `RunConfig` and their defaults; `RunConfig.to_dict` leaves
#: them out while at their default, so the record keys of registered tasks did not change.
OWN_DEFAULTS: dict[str, str] = {
    "text_column": "text",
    "pair_column": "",
    "label_column": "label",
    "query_file": "",
    "eval_file": "",
    "adapter": "",
}
OWN_FIELDS: tuple[str, ...] = tuple(OWN_DEFAULTS)


def is_data_path(task: object) -> bool:
    """Whether `task` names own data (a data file, or a path) rather than a registered task."""
    if not isinstance(task, str) or not task or task in _tasks.names() or task.startswith("glue/"):
        return False
    return task.lower().endswith(DATA_SUFFIXES) or "/" in task or os.sep in task or os.path.isdir(task)


def check_data_path(name: str, value: str) -> None:
    """`value` is an existing data file with an allowed ending, or a directory; else `ConfigError`."""
    path = os.path.expanduser(value)
    if os.path.isdir(path):
        return
    if not path.lower().endswith(DATA_SUFFIXES):
        raise ConfigError(f"{name}={value!r} is not own data: expected {OWN_DATA}")
    if not os.path.isfile(path):
        raise ConfigError(f"{name}={value!r}: no such file (expected {OWN_DATA})")


def check_own(cfg: RunConfig) -> None:
    """The own-data and own-adapter fields of `cfg`: strings, files that exist, columns only for own data."""
    for name in OWN_FIELDS:
        if not isinstance(getattr(cfg, name), str):
            raise ConfigError(f"{name}={getattr(cfg, name)!r} must be a string")
    own_data = is_data_path(cfg.task)
    for name in ("query_file", "eval_file"):
        value = getattr(cfg, name)
        if value and not own_data:
            raise ConfigError(f"{name}={value!r} needs own data: task must be {OWN_DATA}, not {cfg.task!r}")
        if value:
            check_data_path(name, value)
    if bool(cfg.query_file) != bool(cfg.eval_file):
        raise ConfigError(
            f"query_file={cfg.query_file!r}, eval_file={cfg.eval_file!r}: give both files or neither "
            "(then both are sampled from the task's data)"
        )
    if not own_data:
        for name in ("text_column", "pair_column", "label_column"):
            if getattr(cfg, name) != OWN_DEFAULTS[name]:
                raise ConfigError(f"{name}={getattr(cfg, name)!r} needs own data (task={cfg.task!r} is registered)")
    for name in ("text_column", "label_column"):
        if not getattr(cfg, name).strip():
            raise ConfigError(f"{name}={getattr(cfg, name)!r} must be a column name")
    if cfg.adapter and not os.path.exists(os.path.expanduser(cfg.adapter)):
        raise ConfigError(
            f"adapter={cfg.adapter!r}: no such directory or file; give a peft adapter directory "
            "(adapter_config.json, adapter_model.safetensors) or a trainable-state .safetensors file"
        )


def check_run(cfg: RunConfig, setups: Sequence[object], baselines: Sequence[str]) -> None:
    """What a run of `cfg` may retrain: nothing with an own adapter (retraining starts from the
    fine-tuning's initial state, which an adapter does not have) but the ``none`` baseline (the
    adapter itself), and no ``oracle`` without injected noise (there is nothing to remove)."""
    if cfg.adapter and (setups or set(baselines) - {"none"}):
        raise ConfigError(
            f"adapter={cfg.adapter!r}: retraining starts from the fine-tuning's initial state, which an own "
            "adapter does not have; give no setups and no baselines but none"
        )
    if cfg.noise_rate == 0 and "oracle" in baselines:
        raise ConfigError("baselines: 'oracle' removes the noisy examples, and noise_rate=0 flips none; leave it out")
