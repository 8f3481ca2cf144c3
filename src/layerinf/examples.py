"""The examples themselves: which training texts each layer group flags as harmful or helpful.

For a finished run (its record in the artifact store, or a `RunResult`), `explain` gives:

- ``top``: the k most harmful (lowest-scored) and k most helpful (highest-scored) training examples
  per method × layer group × aggregation, or for one chosen query (the group's summed score on that
  query), plus the k most self-influential ones per group (``aggregation = "self_influence"``), with
  their ids, texts, labels (the trained one, possibly flipped, and the clean one), noisy flag and score;
- ``self_influence``: per training example and module, the squared gradient norm ‖g_i^l‖² (TracIn's
  self-influence: mislabelled examples tend to have large ones);
- ``scores``: the full per-example table, one column per ``method/group/aggregation``.

`Explanation.save` writes them as CSV or Parquet, and each method's per-module scores as
safetensors (`scores.ModuleScores.save_safetensors`). `agreement_table` (which examples two groups
both flag) is what a run without injected noise reports in place of the detection metrics.
Pure NumPy / pandas (the run's gradients are read by the runner, `self_influence`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from layerinf import aggregation
from layerinf.config import AGGREGATION_CHOICES, AGGREGATIONS, FIXED_GROUPS, ConfigError, allowed, check_group
from layerinf.gradient_files import as_rows, row_norms_sq
from layerinf.scores import ModuleScores

if TYPE_CHECKING:
    from layerinf.cache import Store
    from layerinf.gradient_types import Gradients
    from layerinf.results import RunResult

#: What `Explanation.save` writes tables as.
FORMATS: tuple[str, ...] = ("csv", "parquet")
#: Columns of the examples that every table carries.
EXAMPLE_COLUMNS: tuple[str, ...] = ("id", "text", "text_pair", "label_name", "clean_label_name", "noisy")


def self_influence(train: Gradients) -> pd.DataFrame:
    """[n_train × modules]: ‖g_i^l‖², the self-influence of each training example through module l
    (TracIn with the example as its own query), the word embedding's from its sparse rows."""
    columns = {}
    for info in train.infos:
        if info.name in train.dense:  # a block of rows at a time: a stored module is never read whole
            columns[info.name] = row_norms_sq(as_rows(train.dense[info.name]))
        elif info.kind == "we" and train.we is not None:
            columns[info.name] = train.we.norms_sq()
    return pd.DataFrame(columns)


def examples_table(result: RunResult) -> pd.DataFrame:
    """One row per training, query and evaluation example of `result`: split, position, id, texts,
    labels (label = what the model saw), the noisy flag and, for queries, whether the model gets it right."""
    s = result.splits
    names = np.asarray(s.label_names, dtype=object)
    frames = []
    for split_name in ("train", "query", "eval"):
        split = getattr(s, split_name)
        clean = s.clean_train_labels if split_name == "train" else split.labels
        frame = pd.DataFrame(
            {
                "split": split_name,
                "position": np.arange(len(split)),
                "id": [str(i) for i in split.ids],
                "text": split.texts,
                "text_pair": split.text_pairs if split.text_pairs is not None else [""] * len(split),
                "label": split.labels,
                "label_name": names[split.labels],
                "clean_label": clean,
                "clean_label_name": names[clean],
                "noisy": s.noisy_mask if split_name == "train" else np.zeros(len(split), dtype=bool),
                "query_correct": result.query_correct if split_name == "query" else np.zeros(len(split), dtype=bool),
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def agreement_table(
    scores: ModuleScores, groups: Sequence[str], hows: Sequence[str], query_correct: np.ndarray, k: int, frac: float
) -> pd.DataFrame:
    """Per aggregation and pair of groups: how many of the round(frac·n) lowest-scored examples both
    flag (``overlap``, and as a Jaccard index) and the Spearman correlation of their scores."""
    n_flag = max(1, round(frac * scores.values.shape[1]))
    flagged, ranks = {}, {}
    for group in groups:
        sub = scores.group(group)
        if len(sub.modules):
            for how, agg in aggregation.aggregate_many(sub.values, hows, k=k, query_mask=query_correct).items():
                order = np.argsort(agg, kind="stable")
                flagged[group, how] = set(order[:n_flag].tolist())
                ranks[group, how] = pd.Series(agg).rank().to_numpy()
    rows = []
    present = [g for g in groups if any((g, h) in flagged for h in hows)]
    for how in hows:
        for a, b in itertools.combinations(present, 2):
            both = len(flagged[a, how] & flagged[b, how])
            rho = float(np.corrcoef(ranks[a, how], ranks[b, how])[0, 1]) if len(ranks[a, how]) > 1 else float("nan")
            rows.append(
                {
                    "method": scores.method,
                    "aggregation": how,
                    "group_a": a,
                    "group_b": b,
                    "n_flagged": n_flag,
                    "overlap": both,
                    "jaccard": both / len(flagged[a, how] | flagged[b, how]),
                    "spearman": rho,
                }
            )
    return pd.DataFrame(rows)


@dataclass
class Explanation:
    """What `explain` returns: the tables of the module docstring, and the scores they came from."""

    top: pd.DataFrame
    self_influence: pd.DataFrame
    scores: pd.DataFrame
    module_scores: dict[str, ModuleScores]
    #: The chosen query (its id, text, label_name, ...), or None.
    query: dict | None = None

    def save(self, directory: Path | str, fmt: str = "csv") -> list[Path]:
        """Write ``top``, ``self_influence`` and ``scores`` as `fmt` (csv or parquet) and each method's
        per-module scores as ``module_scores_<method>.safetensors``; returns the paths written."""
        allowed("format", fmt, FORMATS)
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("top", "self_influence", "scores"):
            path = out / f"{name}.{fmt}"
            frame = getattr(self, name)
            frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
            written.append(path)
        for method, ms in self.module_scores.items():
            path = out / f"module_scores_{method}.safetensors"
            ms.save_safetensors(path)
            written.append(path)
        return written


def _ranked(frame: pd.DataFrame, score: np.ndarray, k: int, labels: dict, helpful: bool = True) -> list[dict]:
    order = np.argsort(score, kind="stable")
    picks = [("harmful", order[:k])] + ([("helpful", order[::-1][:k])] if helpful else [])
    if not helpful:
        picks = [("most_self_influential", order[::-1][:k])]
    rows = []
    for direction, idx in picks:
        for rank, i in enumerate(idx, 1):
            rows.append({**labels, "direction": direction, "rank": rank, **frame.iloc[i].to_dict(), "score": score[i]})
    return rows


def explain(
    run: RunResult | str | Path,
    *,
    store: Store | None = None,
    methods: Sequence[str] | None = None,
    groups: Sequence[str] = FIXED_GROUPS,
    aggregations: Sequence[str] = AGGREGATIONS,
    k: int = 10,
    query: str | int | None = None,
) -> Explanation:
    """The training examples each layer group flags, for a finished run (see the module docstring).

    run: a `RunResult`, or a run record: its name (the 16 hex digits `layerinf run` prints) or directory.
    methods: default every method of the run. query: a query example's id or position; then each
    group's score is its summed score on that query (instead of the aggregations).
    """
    from layerinf import records

    data = records.run_outputs(run, store)
    examples, cfg = data["examples"], data["config"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k={k!r} must be an integer >= 1")
    for group in groups:
        check_group(group)
    for how in aggregations:
        allowed("aggregations", how, AGGREGATION_CHOICES)
    run_methods = tuple(data["scores"])
    chosen = tuple(methods) if methods else run_methods
    for method in chosen:
        allowed("methods", method, run_methods)
    train = examples[examples["split"] == "train"].reset_index(drop=True)
    queries = examples[examples["split"] == "query"].reset_index(drop=True)
    shown = train[list(EXAMPLE_COLUMNS)]
    column = None
    if query is not None:
        hits = np.flatnonzero(queries["id"].astype(str).to_numpy() == str(query))
        if not len(hits) and str(query).isdigit() and int(query) < len(queries):
            hits = np.array([int(query)])
        if not len(hits):
            raise ConfigError(f"query={query!r} is neither the id nor the position of a query (0..{len(queries) - 1})")
        column = int(hits[0])
    query_correct = queries["query_correct"].astype(bool).to_numpy()
    vote_k = max(1, round(float(cfg.get("vote_k_frac", 0.2)) * len(train)))
    top, wide = [], {}
    loaded = {m: ModuleScores.load(data["scores"][m]) for m in chosen}
    for method, ms in loaded.items():
        for group in groups:
            sub = ms.group(group)
            if not len(sub.modules):
                continue
            if column is not None:
                scored = {f"query:{queries['id'][column]}": sub.values[:, :, column].sum(axis=0)}
            else:
                scored = aggregation.aggregate_many(sub.values, aggregations, k=vote_k, query_mask=query_correct)
            for how, score in scored.items():
                labels = {"method": method, "group": group, "aggregation": how}
                top.extend(_ranked(shown, score, min(k, len(train)), labels))
                wide[f"{method}/{group}/{how}"] = score
    selfinf = data["self_influence"]
    for group in groups:
        mask = ms_mask(loaded, group)
        names = [n for n, keep in mask if keep and n in selfinf.columns]
        if names:
            score = selfinf[names].sum(axis=1).to_numpy()
            labels = {"method": "", "group": group, "aggregation": "self_influence"}
            top.extend(_ranked(shown, score, min(k, len(train)), labels, helpful=False))
    return Explanation(
        top=pd.DataFrame(top),
        self_influence=pd.concat([shown, selfinf], axis=1),
        scores=pd.concat([shown, pd.DataFrame(wide)], axis=1),
        module_scores=loaded,
        query=None if column is None else queries.iloc[column][list(EXAMPLE_COLUMNS)].to_dict(),
    )


def ms_mask(loaded: dict[str, ModuleScores], group: str) -> list[tuple[str, bool]]:
    """(module name, in `group`) for the modules of the first loaded scores ([] if none)."""
    if not loaded:
        return []
    first = next(iter(loaded.values()))
    return list(zip(first.names, first.mask(group).tolist(), strict=True))


def format_top(top: pd.DataFrame, width: int = 90) -> list[str]:
    """The ``top`` table as text: one block per method / group / aggregation / direction."""
    lines = []
    if not len(top):
        return ["(no examples)"]
    for (method, group, how, direction), block in top.groupby(
        ["method", "group", "aggregation", "direction"], sort=False
    ):
        lines.append(f"{method + ' / ' if method else ''}{group} / {how}: {direction.replace('_', ' ')}")
        for row in block.itertuples():
            text = " ".join(str(row.text).split())
            text = text if len(text) <= width else text[: width - 1] + "…"
            flag = "NOISY" if row.noisy else "     "
            label = f"{row.label_name:<10}"
            lines.append(
                f"  {row.rank:>2} {row.id:<14} {flag} {label} {row.score:+.3e}  {json.dumps(text, ensure_ascii=False)}"
            )
    return lines


def side_by_side(
    top: pd.DataFrame,
    groups: Sequence[str],
    direction: str = "harmful",
    width: int = 80,
    labels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per rank, one block of columns per group (``<label> text``, ``<label> label``,
    ``<label> noisy``; `labels` maps a group to its label, default the group's name): the examples of
    `direction` each group flags, next to each other (from the ``top`` table of one method and
    aggregation)."""
    allowed("direction", direction, ("harmful", "helpful", "most_self_influential"))
    blocks = []
    for group in groups:
        rows = top[(top["group"] == group) & (top["direction"] == direction)].sort_values("rank")
        if rows["aggregation"].nunique() > 1 or rows["method"].nunique() > 1:
            raise ConfigError(f"side_by_side: give the top table of one method and one aggregation for {group!r}")
        text = [
            t if len(t) <= width else t[: width - 1] + "…" for t in (" ".join(str(x).split()) for x in rows["text"])
        ]
        name = (labels or {}).get(group, group)
        blocks.append(
            pd.DataFrame(
                {
                    f"{name} text": text,
                    f"{name} label": rows["label_name"].to_list(),
                    f"{name} noisy": rows["noisy"].to_list(),
                },
                index=pd.Index(rows["rank"].to_list(), name="rank"),
            )
        )
    return pd.concat(blocks, axis=1)
