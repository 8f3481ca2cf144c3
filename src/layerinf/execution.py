"""Running an experiment: every job in this process, or every job as a Ray task.

`run_experiment` is the one entry point: the notebooks, ``layerinf run`` and ``layerinf sweep`` call
it. Both executors end with the same `results.ExperimentResult`: the local one keeps the runs it
computed; after a Ray sweep the driver reads every run back from the artifact store (a replay that
only reads caches), so the two give identical tables.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerinf.cache import Store
from layerinf.config import ConfigError, allowed
from layerinf.experiment import Experiment, Job
from layerinf.results import ExperimentResult

if TYPE_CHECKING:
    from layerinf.results import RunResult

EXECUTORS: tuple[str, ...] = ("local", "ray")
RAY_HINT = "Ray is not installed; install the optional extra with `pip install -r requirements-ray.txt`"


def _run(job: Job, store: Store, progress: bool) -> RunResult:
    from layerinf import runner

    return runner.run(
        job.cfg,
        groups=job.groups,
        aggregations=job.aggregations,
        setups=job.parsed_setups,
        baselines=job.baselines,
        store=store,
        progress=progress,
    )


def _store(artifacts: str | None) -> Store:
    return Store(Path(artifacts)) if artifacts else Store()


def run_job(job: Job, artifacts: str | None = None, progress: bool = False, *_after: object) -> str:
    """Run one job (every stage cached) and return the name of its run record (a Ray task).

    artifacts: the artifact store's root; None means ``$LAYERINF_ARTIFACTS`` (how Ray workers get it).
    _after: results of the tasks this one waits for (Ray resolves them first; their values are unused).
    """
    result = _run(job, _store(artifacts), progress)
    assert result.record is not None  # run() records every run
    return result.record.name


def score_job(job: Job, artifacts: str | None = None) -> int:
    """A run up to its scores (a Ray task); returns how many retraining packs it has."""
    from layerinf import runner

    return runner.packs(job.cfg, setups=job.parsed_setups, baselines=job.baselines, store=_store(artifacts))


def pack_job(job: Job, number: int, artifacts: str | None = None) -> int:
    """Train retraining pack `number` of a run whose scores are in the store (a Ray task)."""
    from layerinf import runner

    runner.packs(job.cfg, setups=job.parsed_setups, baselines=job.baselines, store=_store(artifacts), train=number)
    return number


def run_local(
    jobs: Sequence[Job], store: Store, progress: bool = True, echo: Callable[[str], None] | None = None
) -> list[RunResult]:
    """Run the jobs one after the other in this process."""
    from tqdm import tqdm

    results = []
    for job in tqdm(jobs, desc="runs", disable=not progress, unit="run"):
        start = time.perf_counter()
        results.append(_run(job, store, progress))
        if echo:
            echo(f"done {job.label} ({time.perf_counter() - start:.1f}s)")
    return results


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
    """Run every job on Ray; returns their record names (in job order).

    A job is three kinds of task, handed over only through the artifact store: one that computes the
    run up to its scores (`score_job`, which says how many retraining packs the run has), one per
    retraining pack (`pack_job`, all of a run's packs at once, so a cluster with more workers than
    runs keeps them busy), and one that records the run once its packs are done (`run_job`, which
    reads every stage from the cache). A pack whose worker died is run again (up to twice); a
    finished pack is never recomputed, so re-running a failed sweep resumes it.

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

        def task(fn: Callable, retries: int = 0) -> Any:
            # Errors raised by our code fail the same way again: they are not retried; `retries`
            # covers workers that died (killed, out of memory). The environment is set per task, so
            # it also reaches workers of a cluster this process did not start.
            return ray.remote(max_retries=retries, **resources)(fn).options(runtime_env=runtime_env)

        score, pack, finish = task(score_job), task(pack_job, retries=2), task(run_job)
        scoring = {score.remote(job, None): (i, job) for i, job in enumerate(jobs)}
        recording: dict[Any, tuple[int, Job]] = {}
        pending = list(scoring)
        start = time.perf_counter()
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            value = ray.get(done[0])  # raise a worker's error here, with its message
            since = f"{time.perf_counter() - start:.1f}s since start"
            if done[0] in scoring:
                i, job = scoring[done[0]]
                packs = [pack.remote(job, number, None) for number in range(value)]
                ref = finish.remote(job, None, False, *packs)
                recording[ref] = (i, job)
                pending.append(ref)
                echo(f"scored {job.label}: {value} retraining pack(s) ({since})")
            else:
                echo(f"done {recording[done[0]][1].label} ({since})")
        names = {i: ray.get(ref) for ref, (i, _job) in recording.items()}
        return [names[i] for i in range(len(jobs))]
    finally:
        if started:
            ray.shutdown()


def preflight(jobs: Sequence[Job]) -> None:
    """Check, before the first job starts, what every job will need and can be checked without
    training: each model's source and position limit, each device, each task's data. An experiment
    whose last model is missing fails here, not after the first models' runs."""
    from layerinf.models import check_model, resolve_device
    from layerinf.pools import load_pool

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


def run_experiment(
    experiment: Experiment,
    *,
    executor: str = "local",
    store: Store | Path | str | None = None,
    address: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run (or read from the cache) every job of `experiment` and return its runs and tables.

    executor: ``local`` (this process) or ``ray`` (a Ray task per job; `store` must then be given: a
    path every worker can read and write; `address` attaches to a running cluster). Every job is
    checked (`preflight`) before the first starts. echo: where to write one line per finished job.
    """
    allowed("executor", executor, EXECUTORS)
    if executor == "ray" and store is None:
        raise ConfigError("--executor ray needs --artifacts DIR: a path every Ray worker can read and write")
    if executor != "ray" and address:
        raise ConfigError(f"--address {address!r} only applies to --executor ray")
    store = store if isinstance(store, Store) else Store(Path(store)) if store is not None else Store()
    preflight(experiment.jobs)
    if executor == "ray":
        run_ray(experiment.jobs, store.root, address, echo=echo or (lambda _m: None))
        # the driver reads each finished run back from the store: a replay of cached stages only
        results = [_run(job, store, False) for job in experiment.jobs]
    else:
        results = run_local(experiment.jobs, store, progress=progress, echo=echo)
    return ExperimentResult.from_runs(experiment, results)
