"""Own data: a task read from the user's CSV / TSV / JSONL file or ``save_to_disk`` directory.

`RunConfig.task` names the file (`layerinf.own.is_data_path`); `text_column`, `pair_column` and
`label_column` name its columns (an ``id`` column, if present, gives the example ids; otherwise
``<file stem>-<row>``). Labels may be any values: the label names are the distinct values of the
training file, sorted (numerically when they are all integers), and a label id is a name's position.

Everything is checked before a model is loaded, each problem in one line naming the file, the row
and the flag: a file that is not UTF-8, a missing column, an empty text or label, fewer than two
classes, duplicate ids, a query / evaluation label the training file does not have.

Splits: with `query_file` and `eval_file` the training examples are drawn from the task's file and
the query and evaluation examples from those files (each capped at n_query / n_eval); otherwise the
three are disjoint samples of the one file, as for a prepared task. Label noise is injected the same
way (`data.inject_label_noise`); with ``noise_rate=0`` the labels are the file's own. The examples'
content is in every cache key (`data.Splits.fingerprint`). No torch here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerinf.config import ConfigError, RunConfig
from layerinf.pools import Pool, _frozen_pool


@dataclass(frozen=True)
class Columns:
    """Which columns hold the text, the optional second text and the label."""

    text: str = "text"
    pair: str = ""
    label: str = "label"

    @classmethod
    def of(cls, cfg: RunConfig) -> Columns:
        return cls(text=cfg.text_column, pair=cfg.pair_column, label=cfg.label_column)

    def flag(self, which: str) -> str:
        return {"text": "--text-column", "pair": "--pair-column", "label": "--label-column"}[which]


def _rows_of_file(path: Path, name: str) -> list[dict]:
    """The rows of a CSV / TSV / JSONL file as dicts of strings (one-line `ConfigError` otherwise)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name}={str(path)!r} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{name}={str(path)!r}, line {line_no}: not a JSON object ({err.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{name}={str(path)!r}, line {line_no}: not a JSON object (one per line)")
            rows.append(row)
        return rows
    try:
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","))
    except csv.Error as err:
        raise ConfigError(f"{name}={str(path)!r} is not a readable {suffix[1:].upper()} file ({err})") from None


def _rows_of_directory(path: Path, name: str) -> list[dict]:
    """The rows of a ``save_to_disk`` Dataset, or of the ``train`` split of a DatasetDict."""
    import datasets  # lazy: slow to import, only needed for a saved dataset

    try:
        saved = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many kinds: one line naming the folder
        raise ConfigError(
            f"{name}={str(path)!r} is not a datasets save_to_disk directory ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:160]})"
        ) from exc
    if isinstance(saved, datasets.DatasetDict):
        if "train" not in saved:
            raise ConfigError(f"{name}={str(path)!r}: the saved DatasetDict has no 'train' split (has {sorted(saved)})")
        saved = saved["train"]
    return saved.to_list()


def read_rows(path: str, name: str) -> list[dict]:
    """The rows of own data at `path` (`name`: the field it came from, for messages)."""
    where = Path(path).expanduser()
    rows = _rows_of_directory(where, name) if where.is_dir() else _rows_of_file(where, name)
    if not rows:
        raise ConfigError(f"{name}={path!r} has no examples")
    return rows


def _column(rows: list[dict], key: str, which: str, columns: Columns, name: str, path: str) -> list[str]:
    if key not in rows[0]:
        raise ConfigError(
            f"{name}={path!r} has no column {key!r} ({columns.flag(which)}); it has: {', '.join(map(str, rows[0]))}"
        )
    values = []
    for row_no, row in enumerate(rows, 1):
        value = row.get(key)
        value = "" if value is None else str(value).strip()
        if not value:
            raise ConfigError(f"{name}={path!r}, row {row_no}: empty {which} in column {key!r} ({columns.flag(which)})")
        values.append(value)
    return values


def label_order(values: list[str]) -> tuple[str, ...]:
    """The distinct label values, sorted numerically when they are all integers, else as text."""
    distinct = set(values)
    try:
        return tuple(sorted(distinct, key=lambda v: int(v)))
    except ValueError:
        return tuple(sorted(distinct))


def read_pool(path: str, columns: Columns, name: str = "task", label_names: tuple[str, ...] | None = None) -> Pool:
    """Every example of own data, checked (see the module docstring). `label_names`: those of the
    training file (for a query or evaluation file), else taken from this file."""
    rows = read_rows(path, name)
    texts = _column(rows, columns.text, "text", columns, name, path)
    pairs = _column(rows, columns.pair, "pair", columns, name, path) if columns.pair else None
    raw = _column(rows, columns.label, "label", columns, name, path)
    stem = Path(path).expanduser().name.split(".")[0]
    if "id" in rows[0] and columns.label != "id":
        ids = [str(r.get("id", "")).strip() for r in rows]
        repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if repeated or not all(ids):
            raise ConfigError(
                f"{name}={path!r}: the id column must hold distinct, non-empty ids (repeated: {repeated[:3]})"
            )
    else:
        ids = [f"{stem}-{row:05d}" for row in range(len(rows))]
    names = label_names if label_names is not None else label_order(raw)
    if label_names is None and len(names) < 2:
        raise ConfigError(
            f"{name}={path!r}: column {columns.label!r} has only one class ({names[0]!r}); at least two are needed"
        )
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise ConfigError(f"{name}={path!r}: label(s) {unknown[:5]} are not among the training labels {list(names)}")
    return _frozen_pool(ids, texts, pairs, [index[v] for v in raw], names)


def make_user_splits(cfg: RunConfig):
    """The `data.Splits` of own data (see the module docstring)."""
    from layerinf.data import SAMPLERS, Splits, inject_label_noise, stratified_sample

    columns = Columns.of(cfg)
    pool = read_pool(cfg.task, columns, "task")
    sample = SAMPLERS[cfg.sampling]
    rng = np.random.default_rng(cfg.seed)
    if cfg.query_file:
        query_pool = read_pool(cfg.query_file, columns, "query_file", pool.label_names)
        eval_pool = read_pool(cfg.eval_file, columns, "eval_file", pool.label_names)
        train_idx = sample(pool.labels, min(cfg.n_train, len(pool)), rng)
        query_idx = stratified_sample(query_pool.labels, min(cfg.n_query, len(query_pool)), rng)
        eval_idx = stratified_sample(eval_pool.labels, min(cfg.n_eval, len(eval_pool)), rng)
    else:
        total = cfg.n_train + cfg.n_query + cfg.n_eval
        if total > len(pool):
            raise ConfigError(
                f"n_train + n_query + n_eval = {cfg.n_train} + {cfg.n_query} + {cfg.n_eval} = {total} exceeds the "
                f"{len(pool)} examples of task={cfg.task!r}; ask for fewer, or give --query-file and --eval-file"
            )
        query_pool = eval_pool = pool
        remaining = np.arange(len(pool))
        chosen = []
        for k in (cfg.n_train, cfg.n_query, cfg.n_eval):
            pick = remaining[sample(pool.labels[remaining], k, rng)]
            remaining = np.setdiff1d(remaining, pick)
            chosen.append(pick)
        train_idx, query_idx, eval_idx = chosen
    clean = pool.labels[train_idx].astype(np.int64)
    if len(np.unique(clean)) < 2:
        raise ConfigError(f"task={cfg.task!r}: the {len(clean)} training examples drawn hold one class; give more data")
    noisy, mask = inject_label_noise(clean, cfg.noise_rate, len(pool.label_names), cfg.seed)
    return Splits(
        task=cfg.task,
        label_names=pool.label_names,
        num_classes=len(pool.label_names),
        train=pool.take(train_idx, labels=noisy),
        query=query_pool.take(query_idx),
        eval=eval_pool.take(eval_idx),
        clean_train_labels=clean,
        noisy_mask=mask,
    )
