"""The one place that knows the order of the stages of a run.

data → fine-tune → per-example gradients → per-module influence → aggregation → metrics → retraining

`run(cfg)` executes them for one (model, task, seed) configuration, each expensive stage cached in
the artifact store under a hash of exactly the config fields it reads (`config.STAGE_FIELDS`), and
returns a `RunResult` of tidy tables. Re-running with unchanged inputs only reads the caches.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from layerinf import adapters, examples
from layerinf.cache import Store, write_json
from layerinf.config import (
    AGGREGATIONS,
    FIXED_GROUPS,
    STAGE_FIELDS,
    ConfigError,
    RunConfig,
)
from layerinf.data import splits_of
from layerinf.encoding import Encoded, encode
from layerinf.gradients import Gradients, collect
from layerinf.influence import compute_scores
from layerinf.models import check_model, load_model, load_tokenizer, resolve_device
from layerinf.modules import load_trainable_state, module_map, trainable_state
from layerinf.own import check_run
from layerinf.records import VERSIONS, record
from layerinf.results import RunResult
from layerinf.retraining import Request, plan, requests_for, train_requests
from layerinf.scores import ModuleScores, group_mask
from layerinf.setups import BASELINES, Setup, check_choices
from layerinf.tables import cancellation_table, detection_or_agreement
from layerinf.train import TrainResult, fit


def _seconds_check(seconds: float) -> str:
    return hashlib.sha256(f"seconds={seconds!r}".encode()).hexdigest()


def _collection_seconds(path: Path, now: float) -> float:
    """The compute time of a gradient collection, kept in its work directory beside the chunks.

    The first complete collection writes its wall time with a checksum; later runs read it back. A
    file that is missing, unreadable or fails its checksum is replaced by `now` (with a warning if it
    existed), so a damaged side file never breaks a run nor reports a made-up time."""
    try:
        data = json.loads(path.read_text())
        seconds = float(data["seconds"])
        if data["sha256"] == _seconds_check(seconds):
            return seconds
        problem = "fails its checksum"
    except FileNotFoundError:
        problem = ""
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        problem = "is unreadable"
    if problem:
        warnings.warn(f"{path} {problem}; it is rewritten with this collection's time", RuntimeWarning, stacklevel=3)
    write_json(path, {"seconds": now, "sha256": _seconds_check(now)})
    return now


def _state_save(state: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


class Pipeline:
    """Stage runner for one configuration; holds the model so retraining reuses it."""

    def __init__(self, cfg: RunConfig, store: Store | None = None, progress: bool = True) -> None:
        self.cfg = cfg
        self.store = store or Store()
        self.progress = progress
        self.timings: dict[str, float] = {}  # wall time of this call (cache reads are fast)
        self.compute: dict[str, float] = {}  # what each stage cost when it was computed
        self.finetune_summary: dict[str, float] = {}  # accuracies of the fine-tuning (set by `finetune`)
        self._retrained: set[Path] = set()  # retraining entries this run has used
        t0 = time.perf_counter()
        # Cheap checks first: the device, the model's source and limits, the data and its noise; only
        # then the tokenizer and the weights.
        self.device = resolve_device(cfg.device)
        check_model(cfg)
        self.splits = splits_of(cfg)  # a registered task, or own data (`layerinf.userdata`), checked
        if cfg.noise_rate > 0 and not self.splits.noisy_mask.any():  # noise_rate=0: no detection metrics
            raise ConfigError(
                f"noise_rate={cfg.noise_rate!r} flips no label of the {len(self.splits.train)} training examples "
                "(round(noise_rate·n) = 0): the detection metrics (NDR, AUC-NDR) and the oracle need noisy "
                f"examples; use noise_rate ≥ {1 / len(self.splits.train):.3g}"
            )
        self.tokenizer = load_tokenizer(cfg)
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.enc = {
            name: encode(self.tokenizer, getattr(self.splits, name), cfg.max_length)
            for name in ("train", "query", "eval")
        }
        self.model = load_model(cfg, self.splits.num_classes, self.tokenizer, self.device)
        self.mm = module_map(self.model)
        #: What every cache key carries besides the config fields: the examples' content hash and the
        #: device type (CPU and CUDA kernels round differently; "auto" and "cpu" on a CPU share entries).
        self.identity = {"data": self.splits.fingerprint(), "device_type": next(self.model.parameters()).device.type}
        if cfg.adapter:  # an own fine-tuned model: its content decides every stage after the data
            self.identity["adapter"] = adapters.fingerprint(cfg)
        self.timings["load"] = time.perf_counter() - t0

    def key(self, stage: str, **extra: object) -> dict:
        # Downstream stages also carry the versions of the stages they read from, so changing how
        # fine-tuning or gradients are computed never serves their old results to a later stage.
        upstream = {
            "finetune": (),
            "gradients": ("finetune",),
            "influence": ("finetune", "gradients"),
            "retrain": ("finetune",),
        }[stage]
        return {
            **self.cfg.subset(STAGE_FIELDS[stage]),
            **self.identity,
            **extra,
            **{f"v_{u}": VERSIONS[u] for u in upstream},
        }

    def _fit(
        self, train: Encoded, init: dict[str, torch.Tensor] | None, desc: str, torch_seed: int | None = None
    ) -> TrainResult:
        return fit(
            self.model,
            train,
            self.enc["query"],
            self.enc["eval"],
            self.cfg,
            self.pad_id,
            init_state=init,
            torch_seed=torch_seed,
            desc=desc,
            progress=self.progress,
        )

    def finetune(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], pd.DataFrame]:
        """(initial trainable state, selected checkpoint, per-epoch history).

        With `RunConfig.adapter` nothing is trained: both are the adapter's (`adapters.own_state`)."""
        if self.cfg.adapter:
            return adapters.own_state(self)

        def compute(out: Path) -> None:
            init = trainable_state(self.model)
            # Seeded exactly as a retraining that removes nothing, so that "no removal" *is* this run.
            result = self._fit(self.enc["train"], None, "fine-tune", torch_seed=self.cfg.seed)
            _state_save(init, out / "init.safetensors")
            _state_save(result.best_state, out / "best.safetensors")
            write_json(out / "history.json", _history(result))

        t0 = time.perf_counter()
        entry = self.store.cached("finetune", self.key("finetune"), VERSIONS["finetune"], compute)
        self.timings["finetune"] = time.perf_counter() - t0
        self.compute["finetune"] = self.store.seconds(entry)
        history = json.loads((entry / "history.json").read_text())
        self.finetune_summary = {k: history["summary"][k] for k in SUMMARY}
        frame = pd.DataFrame(history["epochs"]).assign(selected=lambda d: d["epoch"] == history["best_epoch"])
        return load_file(str(entry / "init.safetensors")), load_file(str(entry / "best.safetensors")), frame

    def gradients(self, best: dict[str, torch.Tensor]) -> tuple[Gradients, Gradients]:
        load_trainable_state(self.model, best)
        t0 = time.perf_counter()
        work = self.store.workdir("gradients", self.key("gradients"), VERSIONS["gradients"])
        out = tuple(
            collect(
                self.model,
                self.mm,
                self.enc[name],
                self.pad_id,
                batch_size=self.cfg.grad_batch_size,
                store=work / name,
                identity=f"gradients/{work.name}/{name}",
                desc=f"gradients ({name})",
                progress=self.progress,
            )
            for name in ("train", "query")
        )
        self.timings["gradients"] = time.perf_counter() - t0
        self.compute["gradients"] = _collection_seconds(work / "seconds.json", self.timings["gradients"])
        return out  # type: ignore[return-value]

    def influence(self, train: Gradients, query: Gradients, method: str) -> Path:
        def compute(out: Path) -> None:
            scores = compute_scores(
                train,
                query,
                method,
                datainf_lambda=self.cfg.datainf_lambda,
                train_ids=self.splits.train.ids,
                query_ids=self.splits.query.ids,
                progress=self.progress,
            )
            scores.save(out / "scores.npz")

        t0 = time.perf_counter()
        entry = self.store.cached("influence", self.key("influence", method=method), VERSIONS["influence"], compute)
        self.timings[f"influence/{method}"] = time.perf_counter() - t0
        self.compute[f"influence/{method}"] = self.store.seconds(entry)
        return entry / "scores.npz"

    def retrain(
        self, init: dict[str, torch.Tensor], removed: np.ndarray, label: str, dropout_seed: int | None = None
    ) -> dict[str, float]:
        """Retrain from `init` without the examples `removed`; the evaluation accuracies (`SUMMARY`).

        `dropout_seed` (default: the run's seed, as in the fine-tuning) seeds the dropout masks; the
        data order always depends on the run's seed only."""
        removed = np.sort(np.asarray(removed, dtype=np.int64))
        torch_seed = self.cfg.seed if dropout_seed is None else int(dropout_seed)

        def compute(out: Path) -> None:
            keep = np.setdiff1d(np.arange(len(self.enc["train"])), removed)
            # Seeded: the same removal gives the same model whether or not other stages ran before
            # in this process (fine-tuning computed or read from the cache, a resumed run, ...).
            result = self._fit(self.enc["train"].subset(keep), init, f"retrain {label}", torch_seed=torch_seed)
            write_json(out / "result.json", _history(result))

        digest = hashlib.sha256(removed.tobytes()).hexdigest()[:16]
        key = self.key("retrain", removed=digest, n_removed=len(removed), dropout_seed=torch_seed)
        t0 = time.perf_counter()
        entry = self.store.cached("retrain", key, VERSIONS["retrain"], compute)
        self.timings[f"retrain/{label}"] = time.perf_counter() - t0
        # Two setups that remove the same examples (TracIn on WE is TracIn-WE) share one retraining:
        # its cost is counted once.
        self.compute[f"retrain/{label}"] = 0.0 if entry in self._retrained else self.store.seconds(entry)
        self._retrained.add(entry)
        return read_summary(entry / "result.json")


#: The accuracies a fine-tuning or retraining reports (`train.TrainResult.summary`), plus its epoch.
SUMMARY = ("acc_selected", "bacc_selected", "acc_best", "acc_last", "best_epoch")


def read_summary(path: Path) -> dict[str, float]:
    """The accuracies (`SUMMARY`) of a recorded fine-tuning or retraining (`_history`'s JSON)."""
    data = json.loads(path.read_text())
    return {k: data["summary"][k] for k in SUMMARY}


def _history(result: TrainResult) -> dict:
    return {
        "best_epoch": result.best_epoch,
        "summary": {**result.summary(), "best_epoch": result.best_epoch},
        "epochs": [vars(h) for h in result.history],
    }


def _open(cfg: RunConfig, groups: tuple, setups: tuple, store: Store | None, progress: bool) -> Pipeline:
    pipe = Pipeline(cfg, store, progress)
    for group in groups:  # before any training: a layer asked for by name must exist in this model
        group_mask(pipe.mm.infos, pipe.mm.n_layers, group)  # raises ConfigError naming the layers it has
    for s in setups:  # before any training: a setup must select at least one module of this model
        if not group_mask(pipe.mm.infos, pipe.mm.n_layers, s.group).any():
            raise ConfigError(
                f"setup {s.name!r}: group {s.group!r} has no module in model {cfg.model!r} "
                f"({pipe.mm.n_layers} layers; blocks are np.array_split of the layers into 4)"
            )
    return pipe


@dataclass
class _Scored:
    """A run up to its scores: what the tables and the retraining stage read."""

    pipe: Pipeline
    init: dict[str, torch.Tensor]
    history: pd.DataFrame
    train: Gradients
    query_correct: np.ndarray
    vote_k: int
    paths: dict[str, Path]
    wanted: list[tuple[dict, Request | None]]

    @property
    def requests(self) -> list[Request]:
        return [r for _, r in self.wanted if r is not None]


def _score(
    cfg: RunConfig, groups: Sequence[str], setups: Sequence[Setup], baselines: Sequence[str], store, progress
) -> _Scored:
    pipe = _open(cfg, tuple(groups), tuple(setups), store, progress)
    init, best, history = pipe.finetune()
    train, query = pipe.gradients(best)
    vote_k = cfg.vote_k(len(pipe.splits.noisy_mask))  # of the examples the run has (GLUE may hold fewer)
    paths = {method: pipe.influence(train, query, method) for method in cfg.methods}
    wanted = requests_for(pipe, paths, tuple(setups), tuple(baselines), vote_k, query.correct)
    return _Scored(pipe, init, history, train, query.correct, vote_k, paths, wanted)


def packs(
    cfg: RunConfig,
    *,
    setups: Sequence[Setup] = (),
    baselines: Sequence[str] = BASELINES,
    store: Store | None = None,
    train: int | None = None,
    progress: bool = False,
) -> int:
    """The number of retraining packs of a run (its earlier stages computed or read from the cache);
    with `train`, also train that pack (a Ray pack task: `execution.run_ray`)."""
    _, _, setups, baselines = check_choices(cfg, FIXED_GROUPS, AGGREGATIONS, setups, baselines)
    check_run(cfg, setups, baselines)
    scored = _score(cfg, (), setups, baselines, store, progress)
    if train is not None:
        train_requests(scored.pipe, scored.init, scored.requests, only=train)
    return len(plan(scored.pipe, scored.requests))


def run(
    cfg: RunConfig,
    *,
    groups: Sequence[str] = FIXED_GROUPS,
    aggregations: Sequence[str] = AGGREGATIONS,
    setups: Sequence[Setup] = (),
    baselines: Sequence[str] = BASELINES,
    store: Store | None = None,
    progress: bool = True,
) -> RunResult:
    """Run the whole pipeline for one configuration (every stage cached; see the module docstring).

    setups: the (method, group, aggregation) triples whose lowest-scored examples are removed and
    the model retrained; baselines: any of random, oracle, none, none_reseed. Both may be empty (no
    retraining). Retrainings of equal size are trained together in packs (`retraining`).
    """
    groups, aggregations, setups, baselines = check_choices(cfg, groups, aggregations, setups, baselines)
    check_run(cfg, setups, baselines)  # own adapter: no retraining; no noise: no oracle
    scored = _score(cfg, groups, setups, baselines, store, progress)
    pipe, paths, query_correct, vote_k = scored.pipe, scored.paths, scored.query_correct, scored.vote_k
    noisy, history = pipe.splits.noisy_mask, scored.history
    t0 = time.perf_counter()
    loaded, frac = (ModuleScores.load(paths[m]) for m in cfg.methods), cfg.removal_frac  # one at a time
    detection, agreement = detection_or_agreement(loaded, groups, aggregations, noisy, query_correct, vote_k, frac)
    cancellation = cancellation_table(scored.train, groups)
    pipe.timings["metrics"] = time.perf_counter() - t0
    accuracies = train_requests(pipe, scored.init, scored.requests)
    summary = pipe.finetune_summary
    rows = [{**row, **(dict(summary) if r is None else accuracies[r.unit])} for row, r in scored.wanted]
    ident = {"model": cfg.model, "task": cfg.task, "seed": cfg.seed}
    eval_labels = pipe.splits.eval.labels
    info = pd.DataFrame(
        [
            {
                "n_train": len(noisy),
                "n_query": len(query_correct),
                "n_eval": len(eval_labels),
                "n_classes": pipe.splits.num_classes,
                "majority_eval": float(np.bincount(eval_labels).max() / len(eval_labels)),
                "query_correct": float(np.mean(query_correct)),
                **pipe.finetune_summary,
                **ident,
            }
        ]
    )
    result = RunResult(
        cfg=cfg,
        splits=pipe.splits,
        query_correct=query_correct,
        finetune=history.assign(**ident),
        detection=detection.assign(**ident),
        cancellation=cancellation.assign(**ident),
        retraining=pd.DataFrame(rows).assign(**ident),
        info=info,
        timings=pipe.timings,
        compute=pipe.compute,
        scores_paths=paths,
        self_influence=examples.self_influence(scored.train),
        agreement=agreement.assign(**ident) if len(agreement) else agreement,
    )
    result.record = record(pipe.store, result, setups, baselines, pipe.identity)
    return result
