"""The retraining stage of a run: which retrainings a run needs, how they are packed, and where their
results are cached.

A run asks for one retraining per setup and baseline (`Request`). Requests that remove the same
examples with the same dropout seed are one retraining (TracIn on WE *is* TracIn-WE). Retrainings
whose subsets have the same size (every setup and the random and oracle baselines remove
round(frac·n)) are trained together in packs of at most K (`multitrain.fit_pack`); a retraining
that has no partner of its size (``none_reseed`` keeps every example), or every retraining when
K is 1 (``retrain_pack=1``, and the automatic choice on a CPU: `pack_size`), is trained alone by
`train.fit`, the sequential reference.

Cache: a sequential retraining is one ``retrain`` entry (keyed by its removal and dropout seed); a
pack is one ``retrain_pack`` entry keyed by the *whole* list of its members, because its dropout
masks come from one generator (`multitrain`): a result is never served to a pack it was not trained
in. Packs are formed deterministically (first appearance, split evenly), so re-running a run
reuses every finished pack, and a Ray worker can train pack i of a run on its own
(`train_requests(..., only=i)`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from layerinf import aggregation
from layerinf.cache import write_json
from layerinf.config import ConfigError, RunConfig
from layerinf.multitrain import fit_pack
from layerinf.records import VERSIONS
from layerinf.retrain import RESEED_OFFSET, baseline_removal, class_makeup, lowest
from layerinf.scores import ModuleScores

if TYPE_CHECKING:
    from layerinf.runner import Pipeline

#: Largest pack the automatic choice makes (`retrain_pack=0`); larger packs gain little on a CPU.
MAX_AUTO_PACK = 16
#: Fraction of the total memory the automatic choice lets a pack's activations use.
MEMORY_SHARE = 0.25


@dataclass(frozen=True)
class Request:
    """One retraining a run asks for: remove `removed` (sorted indices), seed dropout with `dropout_seed`."""

    label: str
    removed: np.ndarray
    dropout_seed: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(np.asarray(self.removed, dtype=np.int64).tobytes()).hexdigest()[:16]

    @property
    def unit(self) -> tuple[str, int]:
        """What identifies the retraining: two requests with the same unit are one model."""
        return self.digest, self.dropout_seed


def plan_packs(sizes: list[int], k: int) -> list[list[int]]:
    """Packs (lists of positions into `sizes`) of at most `k` retrainings whose subsets have one size.

    Positions keep their order of appearance; a size group of m retrainings is cut into ceil(m/k)
    packs as even as possible. A retraining alone in its size group is a pack of one."""
    if k < 1:
        raise ValueError(f"pack size k={k} must be >= 1")
    groups: dict[int, list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(size, []).append(i)
    packs: list[list[int]] = []
    for members in groups.values():
        n_packs = math.ceil(len(members) / k)
        packs.extend([list(map(int, part)) for part in np.array_split(members, n_packs)])
    return packs


def activation_bytes(cfg: RunConfig, hidden: int, n_layers: int, heads: int, ffn: int) -> int:
    """A rough upper estimate of what one retraining's training step keeps for the backward pass:
    per token and layer the residual, attention and feed-forward activations (about 16 hidden-sized
    and 2 ffn-sized vectors) plus two heads×length attention maps, in 4-byte floats."""
    per_token_layer = 16 * hidden + 2 * ffn + 2 * heads * cfg.max_length
    return 4 * cfg.batch_size * cfg.max_length * n_layers * per_token_layer


def memory_budget(device: torch.device) -> int:
    """Bytes a pack may use: a share of the device's (CUDA) or the machine's *total* memory. Total,
    not free: the choice of K, and so which retrainings share a pack (and a cache entry), must not
    depend on what else happens to be running."""
    if device.type == "cuda":
        _free, total = torch.cuda.mem_get_info(device)
        return int(MEMORY_SHARE * total)
    import psutil

    return int(MEMORY_SHARE * psutil.virtual_memory().total)


def pack_size(cfg: RunConfig, model: torch.nn.Module, device: torch.device) -> int:
    """K: `cfg.retrain_pack`, or (0) automatic: on a GPU as many as the memory bound allows, at most
    `MAX_AUTO_PACK`; on a CPU 1 (sequential).

    Why not on a CPU: there a sequential MiniLM retraining already runs at about two thirds of the
    dense matrix-multiply FLOP/s of the machine, and packs of 4 to 16 measured 0.93–1.04× its speed
    (`bench/bench_retrain.py`, 2-core AMD EPYC): batching cannot buy what is not idle. A GPU, whose
    small per-retraining matmuls leave most of it unused, is what packs are for."""
    if cfg.retrain_pack:
        return cfg.retrain_pack
    if cfg.train_embeddings or device.type == "cpu":
        return 1  # a trainable embedding matrix is not stacked (`multitrain.Stacked`)
    c = model.config
    hidden = int(getattr(c, "hidden_size", 0) or getattr(c, "n_embd", 0) or 768)
    n_layers = int(getattr(c, "num_hidden_layers", 0) or getattr(c, "n_layer", 0) or 12)
    heads = int(getattr(c, "num_attention_heads", 0) or getattr(c, "n_head", 0) or 12)
    ffn = int(getattr(c, "intermediate_size", 0) or getattr(c, "n_inner", 0) or 4 * hidden)
    per = activation_bytes(cfg, hidden, n_layers, heads, ffn)
    return max(1, min(MAX_AUTO_PACK, memory_budget(device) // per))


def _units(requests: list[Request]) -> dict[tuple[str, int], Request]:
    """The distinct retrainings of `requests` (first request of each unit), in order of appearance."""
    units: dict[tuple[str, int], Request] = {}
    for r in requests:
        units.setdefault(r.unit, r)
    return units


def plan(pipe: Pipeline, requests: list[Request]) -> list[list[Request]]:
    """The run's packs: its distinct retrainings grouped by subset size, at most `pack_size` each."""
    todo = list(_units(requests).values())
    n = len(pipe.enc["train"])
    k = pack_size(pipe.cfg, pipe.model, pipe.device)
    return [[todo[i] for i in pack] for pack in plan_packs([n - len(r.removed) for r in todo], k)]


def train_requests(
    pipe: Pipeline, init: dict[str, torch.Tensor], requests: list[Request], only: int | None = None
) -> dict[tuple[str, int], dict[str, float]]:
    """Train (or read from the cache) every retraining `requests` need; their accuracies by `Request.unit`.

    only: train pack number `only` of the plan and nothing else (a Ray pack task); returns {}.
    """
    from layerinf.runner import _history, read_summary

    units = _units(requests)
    packs = plan(pipe, requests)
    if only is not None and not 0 <= only < len(packs):
        raise ConfigError(f"pack {only} does not exist: this run has {len(packs)} pack(s)")
    n = len(pipe.enc["train"])
    out: dict[tuple[str, int], dict[str, float]] = {}
    for number, members in enumerate(packs):
        if only is not None and number != only:
            continue
        if len(members) == 1:
            r = members[0]
            out[r.unit] = pipe.retrain(init, r.removed, r.label, dropout_seed=r.dropout_seed)
            continue
        subsets = [pipe.enc["train"].subset(np.setdiff1d(np.arange(n), r.removed)) for r in members]

        def compute(entry: Path, members: list[Request] = members, subsets: list = subsets) -> None:
            results = fit_pack(
                pipe.model,
                subsets,
                pipe.enc["query"],
                pipe.enc["eval"],
                pipe.cfg,
                pipe.pad_id,
                init_state=init,
                torch_seed=pipe.cfg.seed,
                desc=f"retrain {members[0].label}…",
                progress=pipe.progress,
            )
            for j, result in enumerate(results):
                write_json(entry / f"result_{j}.json", _history(result))

        key = pipe.key("retrain", pack=[[r.digest, len(r.removed), r.dropout_seed] for r in members])
        t0 = time.perf_counter()
        entry = pipe.store.cached("retrain_pack", key, VERSIONS["retrain_pack"], compute)
        wall, cost = time.perf_counter() - t0, pipe.store.seconds(entry)
        for j, r in enumerate(members):
            out[r.unit] = read_summary(entry / f"result_{j}.json")
            pipe.timings[f"retrain/{r.label}"] = wall / len(members)
            pipe.compute[f"retrain/{r.label}"] = cost / len(members)
    if only is not None:
        return {}
    for r in requests:  # a retraining shared by two setups is counted once
        if units[r.unit] is not r:
            pipe.timings[f"retrain/{r.label}"] = pipe.compute[f"retrain/{r.label}"] = 0.0
    return out


def requests_for(
    pipe: Pipeline, paths: dict[str, Path], setups: tuple, baselines: tuple, vote_k: int, query_correct: np.ndarray
) -> list[tuple[dict, Request | None]]:
    """(table row so far, retraining) for every setup and baseline, in order; "none" needs no
    retraining (it is the fine-tuning: same initialisation, data order and dropout seed)."""
    cfg, noisy = pipe.cfg, pipe.splits.noisy_mask
    out: list[tuple[dict, Request | None]] = []
    for setup in setups:
        values = ModuleScores.load(paths[setup.method]).group(setup.group).values
        score = aggregation.aggregate(values, setup.aggregation, k=vote_k, query_mask=query_correct)
        removed = np.sort(lowest(score, cfg.removal_frac))
        row = {"setup": setup.name, "method": setup.method, "group": setup.group, "aggregation": setup.aggregation}
        out.append(({**row, **removal_facts(pipe, removed)}, Request(setup.name, removed, cfg.seed)))
    for kind in baselines:
        removed = np.sort(baseline_removal(kind, noisy, cfg.removal_frac, cfg.seed))
        row = {"setup": kind, "method": kind, "group": "", "aggregation": "", **removal_facts(pipe, removed)}
        # "none" is the fine-tuning: same initialisation, data order and dropout seed
        seed = cfg.seed + RESEED_OFFSET if kind == "none_reseed" else cfg.seed
        out.append((row, None if kind == "none" else Request(kind, removed, seed)))
    return out


def removal_facts(pipe: Pipeline, removed: np.ndarray) -> dict[str, float]:
    """How many examples a setup removes, how many of them are noisy, and its class make-up."""
    labels = pipe.splits.train.labels
    return {
        "removed": len(removed),
        "removed_noisy": int(pipe.splits.noisy_mask[removed].sum()),
        **class_makeup(labels, removed, pipe.splits.num_classes),
    }
