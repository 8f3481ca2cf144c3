"""Batched multi-adapter retraining against sequential retraining, side by side in one process.

For each model: the same retrainings of one run (random 30 % removals, the default book's sizes)
trained one after another by `train.fit` and in packs of K by `multitrain.fit_pack`, interleaved on
the same data. Reported per K: seconds per retraining, the speed-up over the sequential path, and how
close each path comes to the machine: the retraining's floating-point operations (counted by
`torch.utils.flop_counter` on one sequential retraining, from the model's actual shapes) per second,
divided by the FLOP/s of a dense float32 matrix multiply measured in the same run. The evaluation
accuracies of the paired retrainings (batched − sequential) are set beside the noise floor: the
same sequential retraining with another dropout seed.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from benchlib import fmt, table

from layerinf.cache import Store
from layerinf.config import preset
from layerinf.modules import load_trainable_state, trainable_state
from layerinf.multitrain import fit_pack
from layerinf.runner import Pipeline

#: model → (config overrides, pack sizes K, sequential retrainings timed). minilm at the default
#: book's sizes; smollm2 (6× minilm's parameters, 30 layers) smaller, to keep `make bench` short.
FULL = {
    "minilm": ({"n_train": 250, "n_query": 80, "n_eval": 500, "epochs": 2}, (4, 8, 16), 4),
    "smollm2": ({"n_train": 64, "n_query": 16, "n_eval": 40, "epochs": 1}, (4, 8), 2),
}
QUICK = {"tiny": ({"n_train": 40, "n_query": 10, "n_eval": 20, "epochs": 1}, (2, 4), 2)}


def matmul_gflops(repeats: int = 5, size: int = 2048) -> float:
    """FLOP/s (in G) of a dense float32 [size×size]·[size×size] product on this machine (best of `repeats`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _subsets(n: int, count: int, frac: float, seed: int = 0) -> list[np.ndarray]:
    keep = n - round(frac * n)
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, keep, replace=False)) for _ in range(count)]


def _flops(pipe: Pipeline, init, train) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        pipe._fit(train, init, "flops")
    return float(counter.get_total_flops())


def bench_model(model: str, overrides: dict, ks: tuple[int, ...], n_seq: int, quick: bool) -> dict:
    cfg = preset("smoke" if quick else "default", model=model, task="spam", sampling="balanced", **overrides)
    pipe = Pipeline(cfg, Store(), progress=False)
    init = trainable_state(pipe.model)
    enc = pipe.enc
    subsets = _subsets(len(enc["train"]), max(ks), cfg.removal_frac)
    trains = [enc["train"].subset(s) for s in subsets]

    def sequential(t, seed: int):
        return pipe._fit(t, init, "retrain", torch_seed=seed)  # exactly what a run's retraining calls

    def pack(k: int):
        out = fit_pack(
            pipe.model,
            trains[:k],
            enc["query"],
            enc["eval"],
            cfg,
            pipe.pad_id,
            init_state=init,
            torch_seed=cfg.seed,
            progress=False,
        )
        load_trainable_state(pipe.model, init)
        return out

    sequential(trains[0], cfg.seed)  # warm-up (allocator, kernels)
    seq_seconds, seq_acc, reseed_acc = [], [], []
    packs: dict[int, tuple[float, list]] = {}
    # Interleaved: a sequential retraining, then a pack, and so on, so slow phases of the machine hit both.
    for i in range(max(n_seq, len(ks))):
        if i < n_seq:
            t0 = time.perf_counter()
            seq_acc.append(sequential(trains[i], cfg.seed).summary()["acc_selected"])
            seq_seconds.append(time.perf_counter() - t0)
        if i < len(ks):
            t0 = time.perf_counter()
            results = pack(ks[i])
            packs[ks[i]] = (time.perf_counter() - t0, results)
    for i in range(n_seq):  # the noise floor: another dropout seed, nothing else changed
        reseed_acc.append(sequential(trains[i], cfg.seed + 100_003).summary()["acc_selected"])
    per_seq = float(np.median(seq_seconds))
    flops = _flops(pipe, init, trains[0])
    peak = matmul_gflops()
    rows, per_k = [], []
    seq_fraction = flops / per_seq / 1e9 / peak
    rows.append([model, "1 (sequential)", fmt(per_seq), "1", fmt(flops / per_seq / 1e9), fmt(seq_fraction)])
    for k, (seconds, _results) in packs.items():
        per = seconds / k
        fraction = flops / per / 1e9 / peak
        per_k.append(
            {
                "model": model,
                "K": k,
                "seconds_per_retraining": per,
                "speedup": per_seq / per,
                "flops_fraction": fraction,
            }
        )
        rows.append([model, str(k), fmt(per), fmt(per_seq / per), fmt(flops / per / 1e9), fmt(fraction)])
    k_max = max(packs)
    batched_acc = [r.summary()["acc_selected"] for r in packs[k_max][1][:n_seq]]
    diff = np.abs(np.array(batched_acc) - np.array(seq_acc))
    floor = np.abs(np.array(reseed_acc) - np.array(seq_acc))
    return {
        "rows": rows,
        "per_k": per_k,
        "seq_seconds": per_seq,
        "speedup_max_k": per_seq / (packs[k_max][0] / k_max),
        "k_max": k_max,
        "flops_per_retraining": flops,
        "matmul_gflops": peak,
        "seq_fraction": seq_fraction,
        "batched_fraction": flops / (packs[k_max][0] / k_max) / 1e9 / peak,
        "paired_abs_diff": float(diff.mean()),
        "noise_floor_abs_diff": float(floor.mean()),
        "n_paired": n_seq,
    }


def run(quick: bool) -> dict:
    grid = QUICK if quick else FULL
    keys: dict[str, float] = {}
    rows, per_k, lines, sequential = [], [], [], {}
    for model, (overrides, ks, n_seq) in grid.items():
        r = bench_model(model, overrides, ks, n_seq, quick)
        rows += r["rows"]
        per_k += r["per_k"]
        sequential[model] = {"seconds": r["seq_seconds"], "flops_fraction": r["seq_fraction"]}
        name = "minilm" if quick else model  # the quick run's tiny model stands in for MiniLM
        keys[f"retrain_batched_speedup_{name}"] = r["speedup_max_k"]
        keys[f"retrain_seq_flops_fraction_{name}"] = r["seq_fraction"]
        keys[f"retrain_batched_flops_fraction_{name}"] = r["batched_fraction"]
        keys[f"retrain_paired_acc_abs_diff_{name}"] = r["paired_abs_diff"]
        keys[f"retrain_noise_floor_abs_diff_{name}"] = r["noise_floor_abs_diff"]
        keys["matmul_gflops"] = r["matmul_gflops"]
        for row in r["per_k"]:  # the per-K table, flat
            keys[f"retrain_speedup_{name}_k{row['K']}"] = row["speedup"]
        lines.append(
            f"{model}: {r['flops_per_retraining'] / 1e12:.2f} TFLOP per retraining; at K = {r['k_max']}, "
            f"mean |accuracy(batched) − accuracy(sequential)| over {r['n_paired']} paired retrainings "
            f"{100 * r['paired_abs_diff']:.2f} points, against {100 * r['noise_floor_abs_diff']:.2f} points "
            "for the same sequential retraining with another dropout seed (the noise floor)."
        )
    markdown = "\n\n".join(
        [
            "#### Batched retraining\n\nK retrainings of one run trained at once (`multitrain.fit_pack`) against "
            "one after another (`train.fit`), interleaved in one process. FLOP/s fraction: the retraining's "
            "counted floating-point operations per second over a dense float32 2048³ matrix multiply "
            f"measured in the same run ({fmt(keys['matmul_gflops'])} GFLOP/s).",
            table(["model", "K", "s per retraining", "speed-up", "GFLOP/s", "of matmul"], rows),
            *lines,
        ]
    )
    return {"keys": keys, "per_k": per_k, "sequential": sequential, "markdown": markdown}
