"""Sweeps: grid files, their jobs, a cost estimate, and two executors (this process, or Ray).

A grid file (YAML) names the runs of an experiment::

    name: smoke                       # optional; defaults to the file name
    description: ...                  # optional
    profile: smoke                    # smoke | default | paper: the base RunConfig (config.preset)
    models: [tiny]                    # named models, Hugging Face ids or local directories
    tasks: [rt]                       # rt, spam, bbc, glue/<name>
    seeds: [0, 1]
    noise_rates: [0.2]                # optional; default: the profile's noise_rate
    methods: [tracin, datainf]        # optional; default: the profile's methods
    setups: [tracin/all/mean]         # retraining setups as method/group/aggregation strings, or the
    # setups: {methods: [tracin], groups: [all, block1], aggregations: [mean, vote]}  (cross product)
    baselines: [random]               # any of random, oracle, none, none_reseed; default: none of them
    groups: [we, block1, all]         # optional: layer groups of the detection table (default: all fixed)
    aggregations: [mean, rank, vote]  # optional: aggregations of the detection table (default: all)
    config: {n_train: 64, epochs: 1}  # optional: any other RunConfig field
    per_model:                        # optional: RunConfig fields for one model only (e.g. its lr)
      tiny: {lr: 1.0e-3}

One *job* is one (model, task, seed, noise rate): one `runner.run` (fine-tune, gradients, influence,
detection, and every retraining of the setups and baselines), recorded in the artifact store. Every
RunConfig of the grid is built, and so validated, before anything runs.

Cost model (`estimate`, printed by ``layerinf sweep --dry-run``)::

    seconds(job) = n × epochs × (1 + retrainings) / throughput(model) × max_length / reference_length
                   + overhead(device)

n = training examples (GLUE tasks with fewer training examples than n_train use all of them),
retrainings = setups + baselines other than ``none`` (which is the fine-tuning itself). It counts
fine-tuning and retraining passes only: the per-example gradients and the influence scores cost
about one more epoch, and retraining on (1 − removal_frac)·n
examples costs less than counted, so the two roughly cancel; `JOB_OVERHEAD` adds a fixed time per job
for start-up and model loading. Throughput constants (training examples
per second, forward + backward) are `CPU_THROUGHPUT` for the named offline models, measured on this
2-core CPU, and `GPU_THROUGHPUT` / `GPU_CLASS_THROUGHPUT` for Hugging Face models: assumed rates of
one A100-class GPU (LoRA, bf16, batch 32, 128 tokens), by name for the paper's models and by
parameter-count class otherwise. They are order-of-magnitude figures for planning, not measurements.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layerinf.config import (
    AGGREGATIONS,
    FIXED_GROUPS,
    PROFILES,
    WE_ONLY_METHODS,
    ConfigError,
    RunConfig,
    allowed,
    check_group,
    check_setup_parts,
    field_names,
    preset,
)
from layerinf.retrain import BASELINES

EXECUTORS: tuple[str, ...] = ("local", "ray")
RAY_HINT = "Ray is not installed; install the optional extra with `pip install -r requirements-ray.txt`"

#: Named offline models on this 2-core CPU (float32): (training examples per second, at this many
#: tokens). tiny and minilm measured with ``layerinf run`` (fine-tuning stage, evaluation included,
#: shared CPU); smollm2 scaled from minilm by parameter count (135M vs 22M), not measured.
CPU_THROUGHPUT: dict[str, tuple[float, int]] = {"tiny": (500.0, 32), "minilm": (8.0, 64), "smollm2": (1.5, 64)}
#: Fixed seconds per job: process start-up, data and model loading, metrics.
JOB_OVERHEAD: dict[str, float] = {"cpu": 10.0, "gpu": 120.0}
#: Assumed examples per second on one A100-class GPU at 128 tokens (LoRA, bf16), per named hub model.
GPU_THROUGHPUT: dict[str, float] = {
    "roberta-large": 150.0,
    "meta-llama/Llama-3.2-1B": 60.0,
    "Qwen/Qwen2.5-1.5B": 45.0,
    "mistralai/Mistral-7B-v0.3": 12.0,
}
#: Same assumption by parameter-count class: (upper bound of the class in parameters, examples/s).
GPU_CLASS_THROUGHPUT: tuple[tuple[float, float], ...] = (
    (2e8, 400.0),
    (5e8, 150.0),
    (2e9, 50.0),
    (4e9, 25.0),
    (1e10, 10.0),
    (math.inf, 3.0),
)
GPU_REFERENCE_LENGTH = 128
#: Training-set sizes of the GLUE tasks as the loader sees them (MNLI: entailment + neutral only).
GLUE_TRAIN_SIZES: dict[str, int] = {
    "qnli": 104_743,
    "mrpc": 3_668,
    "sst2": 67_349,
    "qqp": 363_846,
    "cola": 8_551,
    "mnli": 261_802,
    "rte": 2_490,
    "stsb": 5_749,
}
_KEYS = (
    "name",
    "description",
    "profile",
    "models",
    "tasks",
    "seeds",
    "noise_rates",
    "methods",
    "setups",
    "baselines",
    "groups",
    "aggregations",
    "config",
    "per_model",
)


@dataclass(frozen=True)
class Job:
    """One pipeline run of a sweep: its configuration and what it retrains and reports."""

    cfg: RunConfig
    setups: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    groups: tuple[str, ...] = FIXED_GROUPS
    aggregations: tuple[str, ...] = AGGREGATIONS

    @property
    def label(self) -> str:
        c = self.cfg
        return f"{c.model} {c.task} seed={c.seed} noise={c.noise_rate:g}"

    @property
    def retrainings(self) -> int:
        """Training passes after the fine-tuning: every setup and every baseline but ``none``, which is
        the fine-tuning itself."""
        return len(self.setups) + sum(b != "none" for b in self.baselines)


@dataclass(frozen=True)
class Grid:
    """A parsed grid file: its name, profile and the jobs it expands to (one per model × task × seed ×
    noise rate, in that nesting order)."""

    name: str
    profile: str
    jobs: tuple[Job, ...]
    source: Path | None = None
    description: str = ""
    spec: dict[str, Any] = field(default_factory=dict)


_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "names"),
    "int": ((int,), "integers"),
    "number": ((int, float), "numbers"),
}


def _list(
    spec: dict[str, Any], key: str, where: str, default: Sequence[Any] | None = None, kind: str = "str"
) -> list[Any]:
    """`spec[key]` as a non-empty list of `kind` items (a lone scalar becomes a one-item list; a bare
    string is one item, never its letters). Nulls, nested lists or mappings, and items of another type
    are refused by name."""
    value = spec.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: {key!r} is missing or null; give a list, e.g. {key}: [...]")
    if isinstance(value, (str, int, float)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where}: {key}={value!r} must be a non-empty list")
    types, what = _KINDS[kind]
    for item in value:
        if isinstance(item, bool) or not isinstance(item, types):
            raise ConfigError(f"{where}: {key} must be a list of {what}; {item!r} is a {type(item).__name__}")
    return list(value)


def expand_setups(value: Any, where: str, methods: Sequence[str]) -> tuple[str, ...]:
    """Setups of a grid: a list of ``method/group/aggregation`` strings, or a cross-product spec
    ``{methods: [...], groups: [...], aggregations: [...]}`` (WE-only methods get group ``we`` only)."""
    if value is None:
        return ()
    if isinstance(value, dict):
        unknown = set(value) - {"methods", "groups", "aggregations"}
        if unknown:
            raise ConfigError(
                f"{where}: setups has unknown key(s) {sorted(unknown)}; use methods, groups, aggregations"
            )
        ms = _list(value, "methods", f"{where} setups", methods)
        gs = _list(value, "groups", f"{where} setups")
        hs = _list(value, "aggregations", f"{where} setups")
        specs = [f"{m}/{g}/{a}" for m in ms for g in (("we",) if m in WE_ONLY_METHODS else gs) for a in hs]
    elif isinstance(value, (list, tuple)):
        specs = _list({"setups": value}, "setups", where)
    else:
        raise ConfigError(f"{where}: setups={value!r} must be a list of method/group/aggregation or a mapping")
    for spec in specs:
        check_setup(spec, methods)
    if len(set(specs)) != len(specs):
        raise ConfigError(f"{where}: setups list a setup twice")
    return tuple(specs)


def check_setup(spec: str, methods: Sequence[str]) -> None:
    """Validate one ``method/group/aggregation`` string against the run's methods."""
    parts = spec.split("/")
    if len(parts) != 3:
        raise ConfigError(f"setup {spec!r} must be 'method/group/aggregation', e.g. 'tracin/block2/vote'")
    try:
        check_setup_parts(*parts, methods)
    except ConfigError as err:
        raise ConfigError(f"setup {spec!r}: {err}") from None


def _fields(value: Any, where: str) -> dict[str, Any]:
    """RunConfig overrides of a grid (``config:`` or one ``per_model:`` entry), names checked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of RunConfig fields, got {value!r}")
    for name in value:
        if name in ("model", "task", "seed", "noise_rate", "methods"):
            raise ConfigError(f"{where}.{name}: set by the grid's own key (models, tasks, ...); remove it here")
        if name not in field_names():
            raise ConfigError(f"{where}: unknown RunConfig field {name!r}; known: {', '.join(field_names())}")
    return dict(value)


def parse_grid(spec: dict[str, Any], name: str = "grid", source: Path | None = None) -> Grid:
    """Validate a grid mapping (the content of a grid file) and expand it into jobs."""
    where = str(source) if source else name
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: a grid file must be a YAML mapping with keys {', '.join(_KEYS)}")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        hint = " (RunConfig fields go under config:)" if set(unknown) & set(field_names()) else ""
        raise ConfigError(f"{where}: unknown key(s) {unknown}{hint}; allowed: {', '.join(_KEYS)}")
    profile = spec.get("profile", "default")
    if not isinstance(profile, str):
        raise ConfigError(f"{where}: profile={profile!r} must be one name: {', '.join(PROFILES)}")
    config = _fields(spec.get("config"), f"{where}: config")
    per_model = spec.get("per_model") or {}
    if not isinstance(per_model, dict):
        raise ConfigError(f"{where}: per_model must map a model name to RunConfig fields")
    per_model = {str(m): _fields(v, f"{where}: per_model[{m!r}]") for m, v in per_model.items()}
    models = _list(spec, "models", where)
    stray = sorted(set(per_model) - set(models))
    if stray:
        raise ConfigError(f"{where}: per_model names model(s) {stray} that are not in models: {models}")
    tasks = _list(spec, "tasks", where)
    seeds = _list(spec, "seeds", where, kind="int")
    base = preset(profile, **config)
    rates = [float(r) for r in _list(spec, "noise_rates", where, [base.noise_rate], kind="number")]
    methods = tuple(_list(spec, "methods", where, list(base.methods)))
    setups = expand_setups(spec.get("setups"), where, methods)
    baselines = tuple(_list(spec, "baselines", where, [])) if spec.get("baselines") else ()
    for b in baselines:
        allowed("baselines", b, BASELINES)
    groups = tuple(_list(spec, "groups", where, list(FIXED_GROUPS)))
    for g in groups:
        check_group(g)
    hows = tuple(_list(spec, "aggregations", where, list(AGGREGATIONS)))
    for how in hows:
        allowed("aggregations", how, AGGREGATIONS)
    jobs = []
    for model in models:
        extra = per_model.get(model, {})
        for task in tasks:
            for seed in seeds:
                for rate in rates:
                    fields = {**config, **extra, "model": model, "task": task, "seed": seed, "noise_rate": rate}
                    cfg = preset(profile, **fields, methods=methods)
                    jobs.append(Job(cfg, setups, baselines, groups, hows))
    return Grid(
        name=str(spec.get("name") or name),
        profile=profile,
        jobs=tuple(jobs),
        source=source,
        description=str(spec.get("description") or ""),
        spec=spec,
    )


def load_grid(path: Path | str) -> Grid:
    """Read and validate a grid file (see the module docstring for its keys)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid file {str(path)!r} does not exist")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"grid file {str(path)!r} is not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"grid file {str(path)!r} is not valid YAML: {' '.join(str(err).split())}") from None
    return parse_grid(spec, name=path.stem, source=path)


# --------------------------------------------------------------------------------------------------
# Cost estimate


def parameter_count(model: str) -> float | None:
    """Rough parameter count of a hub id or local directory, without loading weights.

    Local directory: from its safetensors headers (exact), else from config.json (≈ 12·L·h² + V·h).
    Hub id: from a size in its name (``…-1.5B``, ``…-135M``), or ``base``/``large`` (BERT sizes).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        total = 0
        for file in path.glob("*.safetensors"):
            with file.open("rb") as fh:
                header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
            total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
        if total:
            return float(total)
        if (path / "config.json").exists():
            c = json.loads((path / "config.json").read_text())
            h = c.get("hidden_size") or c.get("n_embd") or c.get("dim") or 0
            layers = c.get("num_hidden_layers") or c.get("n_layer") or c.get("n_layers") or 0
            return float(12 * layers * h * h + c.get("vocab_size", 0) * h) or None
        return None
    match = re.search(r"(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])", model.rsplit("/", 1)[-1])
    if match:
        return float(match.group(1)) * (1e9 if match.group(2) in "bB" else 1e6)
    if re.search(r"\blarge\b|-large", model):
        return 3.55e8
    if re.search(r"\bbase\b|-base", model):
        return 1.25e8
    return None


@dataclass(frozen=True)
class Cost:
    """Estimated cost of one job: seconds on `device` ("cpu": this machine; "gpu": one A100-class GPU);
    `basis` says which throughput constant was used."""

    seconds: float
    device: str
    basis: str


def _train_examples(cfg: RunConfig) -> int:
    if cfg.task.startswith("glue/"):
        return min(cfg.n_train, GLUE_TRAIN_SIZES[cfg.task[5:]])
    return cfg.n_train


def job_cost(job: Job) -> Cost:
    """The documented cost model (module docstring) applied to one job."""
    cfg = job.cfg
    passes = _train_examples(cfg) * cfg.epochs * (1 + job.retrainings)
    if cfg.model in CPU_THROUGHPUT:
        rate, ref = CPU_THROUGHPUT[cfg.model]
        seconds = passes / rate * cfg.max_length / ref + JOB_OVERHEAD["cpu"]
        return Cost(seconds, "cpu", f"{cfg.model}: {rate:g} ex/s on this CPU")
    if cfg.model in GPU_THROUGHPUT:
        rate, basis = GPU_THROUGHPUT[cfg.model], f"{GPU_THROUGHPUT[cfg.model]:g} ex/s (assumed)"
    else:
        count = parameter_count(cfg.model)
        guessed = count is None
        count = 1e9 if count is None else count
        rate = next(r for bound, r in GPU_CLASS_THROUGHPUT if count < bound)
        basis = f"{count / 1e9:.2g}B params{' (size unknown, assumed)' if guessed else ''}: {rate:g} ex/s (assumed)"
    return Cost(passes / rate * cfg.max_length / GPU_REFERENCE_LENGTH + JOB_OVERHEAD["gpu"], "gpu", basis)


def estimate(grid: Grid) -> dict[str, float]:
    """Total estimated hours per device kind, e.g. ``{"gpu": 9100.0}`` (see the cost model)."""
    totals: dict[str, float] = {}
    for job in grid.jobs:
        cost = job_cost(job)
        totals[cost.device] = totals.get(cost.device, 0.0) + cost.seconds / 3600
    return totals


def describe(grid: Grid) -> Iterator[str]:
    """Lines of the dry-run: one per job with its estimated cost, then the totals and the assumption."""
    yield f"grid {grid.name!r} (profile {grid.profile}): {len(grid.jobs)} jobs"
    first = grid.jobs[0]
    yield (
        f"each job: fine-tune + {first.retrainings} retraining(s) "
        f"({len(first.setups)} setups, baselines: {', '.join(first.baselines) or 'none'}); "
        f"methods: {', '.join(first.cfg.methods)}"
    )
    width = max(len(j.label) for j in grid.jobs)
    for i, job in enumerate(grid.jobs, 1):
        cost = job_cost(job)
        cost_text = f"~{_hms(cost.seconds)} {cost.device}"
        yield f"  {i:4d}  {job.label:<{width}}  n={_train_examples(job.cfg):<5d} {cost_text:<14} [{cost.basis}]"
    per_model: dict[tuple[str, str], float] = {}
    for job in grid.jobs:
        cost = job_cost(job)
        key = (cost.device, job.cfg.model)
        per_model[key] = per_model.get(key, 0.0) + cost.seconds / 3600
    for (device, model), hours in per_model.items():
        yield f"  {model}: {_hours(hours)} on {device.upper()}"
    for device, hours in sorted(estimate(grid).items()):
        what = "GPU hours (one A100-class GPU per job)" if device == "gpu" else "CPU hours (this 2-core machine)"
        yield f"estimated {what}: {hours:,.1f}" + (f" (= {_hms(hours * 3600)})" if hours < 1 else "")
    yield (
        "cost model: n × epochs × (1 + retrainings) / throughput × max_length / reference length + overhead; "
        "throughputs are assumptions (see `layerinf.sweep` docstring), not measurements of your hardware"
    )


def _hours(hours: float) -> str:
    return f"{hours:,.1f} hours" if hours >= 1 else _hms(hours * 3600)


def _hms(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


# --------------------------------------------------------------------------------------------------
# Execution


def run_job(job: Job, artifacts: str | None = None, progress: bool = False) -> str:
    """Run one job (every stage cached) and return the name of its recorded ``runs/<hash>`` entry.

    artifacts: the artifact store's root; None means ``$LAYERINF_ARTIFACTS`` (how Ray workers get it).
    """
    from layerinf import runner
    from layerinf.cache import Store
    from layerinf.experiments import parse_setups

    store = Store(Path(artifacts)) if artifacts else Store()
    setups = parse_setups(job.setups)
    result = runner.run(
        job.cfg,
        groups=job.groups,
        aggregations=job.aggregations,
        setups=setups,
        baselines=job.baselines,
        store=store,
        progress=progress,
    )
    assert result.record is not None  # run() records every run
    return result.record.name


def run_local(
    jobs: Sequence[Job], artifacts: Path | None, progress: bool = True, echo: Callable[[str], None] = print
) -> list[str]:
    """Run the jobs one after the other in this process; returns their record names."""
    from tqdm import tqdm

    names = []
    for job in tqdm(jobs, desc="jobs", disable=not progress, unit="job"):
        start = time.perf_counter()
        names.append(run_job(job, str(artifacts) if artifacts else None, progress=progress))
        echo(f"done {job.label} ({time.perf_counter() - start:.1f}s)")
    return names


def import_ray() -> Any:
    """The `ray` module, or a `ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError(RAY_HINT) from err
    return ray


def _worker_env(artifacts: Path) -> dict[str, str]:
    env = {"LAYERINF_ARTIFACTS": str(artifacts), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for name in ("HF_HUB_OFFLINE", "LAYERINF_GLUE_DIR", "LAYERINF_DATA_DIR", "HF_HOME", "PYTHONHASHSEED"):
        if os.environ.get(name) is not None:
            env[name] = os.environ[name]
    return env


def run_ray(
    jobs: Sequence[Job],
    artifacts: Path,
    address: str | None = None,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Run every job as a Ray task; returns their record names (in job order).

    artifacts: a path every worker can read and write (cluster file system); workers receive it as
    ``LAYERINF_ARTIFACTS``. address: ``auto`` or ``ray://host:port`` attaches to a running cluster;
    None starts a local instance with 2 CPUs. A task asks for one GPU when the driver sees CUDA,
    otherwise for one CPU.
    """
    ray = import_ray()
    import torch

    artifacts = Path(artifacts).expanduser().resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    runtime_env = {"env_vars": _worker_env(artifacts)}
    started = not ray.is_initialized()  # a caller may have connected already: then leave it connected
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=2, include_dashboard=False)
    try:
        resources = {"num_gpus": 1} if torch.cuda.is_available() else {"num_cpus": 1}
        # A failing job fails the same way again: no retries. The environment is set per task, so it
        # also reaches workers of a cluster this process did not start.
        task = ray.remote(max_retries=0, **resources)(run_job).options(runtime_env=runtime_env)
        refs = [task.remote(job, None, False) for job in jobs]
        label = {ref: job.label for ref, job in zip(refs, jobs, strict=True)}
        pending = list(refs)
        start = time.perf_counter()
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)  # raise a worker's error here, with its message
            echo(f"done {label[done[0]]} ({time.perf_counter() - start:.1f}s since start)")
        return list(ray.get(refs))
    finally:
        if started:
            ray.shutdown()


def preflight(jobs: Sequence[Job]) -> None:
    """Check, before the first job starts, what every job will need and can be checked without
    training: each model's source and position limit, each device, each task's data. A grid whose
    last model is missing fails here, not after the first models' runs."""
    from layerinf.data import load_pool
    from layerinf.models import check_model, resolve_device

    checked: set[tuple[str, ...]] = set()
    for job in jobs:
        c = job.cfg
        for key, check in (
            (("model", c.model, str(c.max_length)), lambda c=c: check_model(c)),
            (("device", c.device), lambda c=c: resolve_device(c.device)),
            (("task", c.task), lambda c=c: load_pool(c.task)),
        ):
            if key not in checked:
                check()
                checked.add(key)


def execute(
    grid: Grid,
    executor: str = "local",
    artifacts: Path | None = None,
    address: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run a grid and gather its recorded results: ``runner.collect_results`` restricted to the
    grid's runs ({"detection": ..., "retraining": ..., ...}, each row tagged with its ``run``)."""
    allowed("executor", executor, EXECUTORS)
    if executor == "ray" and artifacts is None:
        raise ConfigError("--executor ray needs --artifacts DIR: a path every Ray worker can read and write")
    if executor != "ray" and address:
        raise ConfigError(f"--address {address!r} only applies to --executor ray")
    preflight(grid.jobs)
    if executor == "ray":
        names = run_ray(grid.jobs, artifacts, address, echo=echo)
    else:
        names = run_local(grid.jobs, artifacts, progress=progress, echo=echo)
    from layerinf.cache import Store
    from layerinf.runner import collect_results

    tables = collect_results(Store(artifacts) if artifacts else Store())
    keep = set(names)
    return {name: frame[frame["run"].isin(keep)].reset_index(drop=True) for name, frame in tables.items()}


# --------------------------------------------------------------------------------------------------
# Results

#: Columns that identify a run in the tidy tables (then the table's own columns follow).
RUN_COLUMNS: tuple[str, ...] = ("run", "model", "task", "seed", "noise_rate", "n_train", "finetune_acc")


def tidy_results(tables: dict[str, Any], root: Path | str) -> dict[str, Any]:
    """The two tables of ``layerinf results`` from `runner.collect_results` output.

    detection: one row per run × method × group × aggregation, with the run's noise_rate and n_train
    (from its recorded config), finetune_acc (evaluation accuracy of the selected fine-tuning
    checkpoint) and the group's cancellation ratio; retraining: one row per run × setup or baseline.
    Both start with `RUN_COLUMNS`; an empty store gives empty tables.
    """
    import pandas as pd

    names = ("detection", "retraining", "cancellation", "finetune")
    frames = {name: tables.get(name, pd.DataFrame()) for name in names}
    runs = sorted({r for f in frames.values() if "run" in f for r in f["run"].unique()})
    configs = []
    for run in runs:
        path = Path(root) / "runs" / run / "config.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        configs.append({"run": run, "noise_rate": cfg.get("noise_rate"), "n_train": cfg.get("n_train")})
    info = pd.DataFrame(configs, columns=["run", "noise_rate", "n_train"])
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
