"""What an experiment will cost, before it runs (printed by ``layerinf sweep --dry-run``).

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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from layerinf.config import RunConfig
from layerinf.experiment import Experiment, Job

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
    """Training examples a job uses: n_train, or all of a task's training split if it is smaller
    (`tasks.TaskSpec.train_size`, known for the hub tasks)."""
    from layerinf import tasks

    size = None if cfg.own_data else tasks.get(cfg.task).train_size
    return min(cfg.n_train, size) if size else cfg.n_train


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


def estimate(grid: Experiment) -> dict[str, float]:
    """Total estimated hours per device kind, e.g. ``{"gpu": 9100.0}`` (see the cost model)."""
    totals: dict[str, float] = {}
    for job in grid.jobs:
        cost = job_cost(job)
        totals[cost.device] = totals.get(cost.device, 0.0) + cost.seconds / 3600
    return totals


def describe(grid: Experiment) -> Iterator[str]:
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
        "throughputs are assumptions (see `layerinf.costs` docstring), not measurements of your hardware"
    )


def _hours(hours: float) -> str:
    return f"{hours:,.1f} hours" if hours >= 1 else _hms(hours * 3600)


def _hms(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"
