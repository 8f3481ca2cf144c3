"""What runs and experiments return: `RunResult` (one run) and `ExperimentResult` (many).

Both hold tidy tables (one row per observation); an experiment's tables are its runs' tables
concatenated, with columns model, task, seed identifying the run. `tidy_results` shapes recorded
tables (`records.collect_results`) into the two tables of ``layerinf results``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from layerinf import aggregation
from layerinf.config import FIXED_GROUPS, RunConfig
from layerinf.scores import ModuleScores, group_label

if TYPE_CHECKING:
    from layerinf.data import Splits
    from layerinf.experiment import Experiment


@dataclass
class RunResult:
    """Everything one run produced. Tables are tidy (one row per observation).

    noisy_mask: [n_train] bool, as returned by the label-noise injection.
    query_correct: [n_query] bool, the fine-tuned model predicts the query label.
    finetune: per-epoch history of the fine-tuning (query loss/accuracy, evaluation accuracy).
    detection: one row per (method, group, aggregation): ndr@5 … ndr@90, auc_ndr, roc_auc.
    cancellation: one row per layer group: ratio, median, min, max, n_params.
    retraining: one row per setup and baseline: removed, removed_noisy, the class make-up of the
        removed set (`retrain.class_makeup`), and the evaluation accuracy of the retrained model:
        acc_selected (epoch of lowest query loss; the primary number), bacc_selected (its balanced
        accuracy), acc_best (max over epochs: the paper's report), acc_last.
    info: one row: examples, classes, majority-class rate of the evaluation set, and the fine-tuned
        model's accuracies (the same columns as a retraining).
    detection is empty when no label was flipped (``noise_rate=0``): `agreement` is filled instead.
    """

    cfg: RunConfig
    splits: Splits
    query_correct: np.ndarray
    finetune: pd.DataFrame
    detection: pd.DataFrame
    cancellation: pd.DataFrame
    retraining: pd.DataFrame
    info: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: dict[str, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    scores_paths: dict[str, Path] = field(default_factory=dict)
    record: Path | None = None  # the run's recorded tables in the store (``runs/<hash>/``)
    #: [n_train × modules]: each training example's self-influence ‖g_i^l‖² per module (`examples.self_influence`).
    self_influence: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Without injected noise (no detection metrics): per method × aggregation × pair of groups, how
    #: many flagged examples they share (`examples.agreement_table`); empty otherwise.
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)

    def scores(self, method: str) -> ModuleScores:
        """Per-module scores of `method` (read from the artifact store)."""
        return ModuleScores.load(self.scores_paths[method])

    def aggregated(self, method: str, group: str, how: str) -> np.ndarray:
        """[n_train] aggregated score of one (method, group, aggregation)."""
        values = self.scores(method).group(group).values
        return aggregation.aggregate(values, how, k=self.cfg.vote_k(values.shape[1]), query_mask=self.query_correct)


#: The tables every run has, concatenated over an experiment's runs.
RUN_TABLES: tuple[str, ...] = ("detection", "cancellation", "retraining", "finetune", "info")


@dataclass
class ExperimentResult:
    """The runs of an experiment, keyed by (model, task, seed, noise rate), and their tables
    concatenated (`RUN_TABLES`, plus `modules`: every single module's detection, and `timings`)."""

    experiment: Experiment
    runs: dict[tuple[str, str, int, float], RunResult]
    detection: pd.DataFrame
    cancellation: pd.DataFrame
    retraining: pd.DataFrame
    finetune: pd.DataFrame
    info: pd.DataFrame
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def from_runs(cls, experiment: Experiment, results: list[RunResult]) -> ExperimentResult:
        runs = {(r.cfg.model, r.cfg.task, r.cfg.seed, r.cfg.noise_rate): r for r in results}
        tables = {name: pd.concat([getattr(r, name) for r in results], ignore_index=True) for name in RUN_TABLES}
        timings = pd.DataFrame(
            [
                {"model": m, "task": t, "seed": s, "stage": k, "compute_seconds": v, "wall_seconds": r.timings.get(k)}
                for (m, t, s, _), r in runs.items()
                for k, v in r.compute.items()
            ]
        )
        return cls(experiment=experiment, runs=runs, timings=timings, **tables)

    @functools.cached_property
    def modules(self) -> pd.DataFrame:
        """NDR@30 and AUC-NDR of every single module of every run (`tables.module_table`), computed
        on first use: it reads every run's scores."""
        from layerinf.tables import module_table

        return pd.concat([module_table(r) for r in self.runs.values()], ignore_index=True)

    @property
    def first(self) -> RunResult:
        """The first run (what a page reads model-level facts from, e.g. its number of layers)."""
        return next(iter(self.runs.values()))

    @functools.cached_property
    def n_layers(self) -> int:
        """The number of transformer layers of the (first run's) model (read from its scores once)."""
        first = self.first
        return first.scores(first.cfg.methods[0]).n_layers

    def group_labels(self, groups: tuple[str, ...] = FIXED_GROUPS) -> dict[str, str]:
        """Each layer group's label on the pages, e.g. ``block2`` → "layers 2–3" (`scores.group_label`)."""
        n_layers = self.n_layers
        return {g: group_label(g, n_layers) for g in groups}

    @property
    def records(self) -> list[str]:
        """The names of the runs' records in the artifact store (``layerinf results`` reads them)."""
        return [r.record.name for r in self.runs.values() if r.record is not None]

    def run(self, model: str, task: str, seed: int, noise_rate: float | None = None) -> RunResult:
        """One run; `noise_rate` may be left out when the experiment has one noise rate."""
        hits = [
            r for (m, t, s, q), r in self.runs.items() if (m, t, s) == (model, task, seed) and noise_rate in (None, q)
        ]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} runs match model={model!r} task={task!r} seed={seed} noise_rate={noise_rate}")
        return hits[0]


#: Columns that identify a run in the tidy tables (then the table's own columns follow).
RUN_COLUMNS: tuple[str, ...] = ("run", "model", "task", "seed", "noise_rate", "n_train", "finetune_acc")


def tidy_results(tables: dict[str, Any], configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The two tables of ``layerinf results`` from `records.collect_results` output.

    configs: each record's configuration by record name (`records.read_config`).
    detection: one row per run × method × group × aggregation, with the run's noise_rate and n_train
    (from its recorded config), finetune_acc (evaluation accuracy of the selected fine-tuning
    checkpoint) and the group's cancellation ratio; retraining: one row per run × setup or baseline.
    Both start with `RUN_COLUMNS`; an empty store gives empty tables.
    """
    names = ("detection", "retraining", "cancellation", "finetune")
    frames = {name: tables.get(name, pd.DataFrame()) for name in names}
    runs = sorted({r for f in frames.values() if "run" in f for r in f["run"].unique()})
    rows = [
        {
            "run": run,
            "noise_rate": configs.get(run, {}).get("noise_rate"),
            "n_train": configs.get(run, {}).get("n_train"),
        }
        for run in runs
    ]
    info = pd.DataFrame(rows, columns=["run", "noise_rate", "n_train"])
    finetune = frames["finetune"]
    if len(finetune):  # evaluation accuracy of the checkpoint the influence was computed at
        chosen = finetune[finetune["selected"].astype(str) == "True"][["run", "eval_acc"]]
        info = info.merge(chosen.rename(columns={"eval_acc": "finetune_acc"}), on="run", how="left")
    out = {}
    for name in ("detection", "retraining"):
        frame = frames[name]
        if not len(frame):
            out[name] = pd.DataFrame(columns=list(RUN_COLUMNS))
            continue
        missing = [c for c in info.columns if c not in frame.columns]
        frame = frame.merge(info[["run", *missing]], on="run", how="left") if missing else frame
        if name == "detection" and len(frames["cancellation"]):
            ratio = frames["cancellation"][["run", "group", "ratio"]].rename(columns={"ratio": "cancellation"})
            frame = frame.merge(ratio, on=["run", "group"], how="left")
        for col in ("group", "aggregation"):  # baselines have none; CSV turned "" into NaN
            if col in frame.columns:
                frame[col] = frame[col].fillna("")
        first = [c for c in RUN_COLUMNS if c in frame.columns]
        frame = frame[first + [c for c in frame.columns if c not in first]]
        order = [c for c in ("model", "task", "seed", "noise_rate", "run") if c in frame.columns]
        out[name] = frame.sort_values(order, kind="stable").reset_index(drop=True)
    return out
