"""Benchmark 2: score products for every module, against the machine's raw matrix multiply.

Random float32 gradients with the module sizes of `minilm` (24 LoRA tensors of 1,536 entries; the
head: pooler weight 147,456, pooler bias 384, classifier weight 768 and bias 2). For every module,
`influence.pairwise` (TracIn, cosine, DataInf) is timed against a plain ``A @ B.T`` of the same
shapes. `pairwise` accumulates in float64 (the stored gradients are float32), so the reference is
given in both dtypes: float64 (the same arithmetic as ours; `efficiency`) and float32 (the
gradients' own dtype; what a float32 implementation could reach at best).
"""

from __future__ import annotations

import numpy as np
from benchlib import Timings, table, timed

from layerinf.influence import pairwise
from layerinf.methods.datainf import PAPER_MAX_PARAMS

LORA_SIZES = [1536] * 24
HEAD_SIZES = [147_456, 384, 768, 2]


def _random(n: int, m: int, sizes: list[int], seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    train = [rng.standard_normal((n, p), dtype=np.float32) for p in sizes]
    query = [rng.standard_normal((m, p), dtype=np.float32) for p in sizes]
    return train, query


def _matmul(train: list[np.ndarray], query: list[np.ndarray], dtype) -> float:
    """Seconds of the bare products, operands already in `dtype` (conversion not timed)."""
    total = 0.0
    for a, b in zip(train, query, strict=True):
        a, b = a.astype(dtype), b.astype(dtype)
        seconds, _ = timed(lambda a=a, b=b: a @ b.T)
        total += seconds
    return total


def _gram_matmul(train: list[np.ndarray], dtype) -> float:
    total = 0.0
    for a in train:
        a = a.astype(dtype)
        seconds, _ = timed(lambda a=a: a @ a.T)
        total += seconds
    return total


def _ours(train, query, method: str):
    def run():
        for a, b in zip(train, query, strict=True):
            pairwise(a, b, method)

    return run


def bench_shape(n: int, m: int, sizes: list[int], repeats: int, label: str, datainf: bool, seed: int = 0) -> dict:
    train, query = _random(n, m, sizes, seed)
    flop = 2.0 * n * m * sum(sizes)
    _ours(train[:1], query[:1], "tracin")()  # warm-up: BLAS thread pool
    t = Timings()
    for _ in range(repeats):  # interleaved: ours, the float64 reference, the float32 reference
        t.add("tracin", timed(_ours(train, query, "tracin"))[0])
        t.add("matmul_f64", _matmul(train, query, np.float64))
        t.add("matmul_f32", _matmul(train, query, np.float32))
    t.add("cosine", timed(_ours(train, query, "cosine"))[0])
    out = {
        "label": label,
        "n": n,
        "m": m,
        "modules": len(sizes),
        "params": int(sum(sizes)),
        "runs": repeats,
        "gflop": flop / 1e9,
    }
    for name in ("tracin", "matmul_f64", "matmul_f32", "cosine"):
        out[f"{name}_s"] = t.median(name)
    if datainf:
        # The paper computes DataInf only for tensors below PAPER_MAX_PARAMS entries; its
        # n x n Gram matrix costs n/m times the TracIn product. Same restriction here.
        small = [i for i, p in enumerate(sizes) if p < PAPER_MAX_PARAMS]
        tr, qu = [train[i] for i in small], [query[i] for i in small]
        out["datainf_modules"] = len(small)
        out["datainf_s"] = timed(_ours(tr, qu, "datainf"))[0]
        out["datainf_matmul_f64_s"] = _matmul(tr, qu, np.float64) + _gram_matmul(tr, np.float64)
    return out


def run(quick: bool) -> dict:
    sizes = LORA_SIZES + HEAD_SIZES
    if quick:
        shapes = [(256, 32, sizes, 2, "all 28 dense modules", True)]
    else:
        shapes = [
            (2250, 500, sizes, 3, "all 28 dense modules", True),
            (4500, 500, LORA_SIZES, 3, "24 LoRA tensors", False),
        ]
    rows_raw = [bench_shape(*s) for s in shapes]
    main = rows_raw[0]
    keys = {
        "score_matmul_efficiency": main["matmul_f64_s"] / main["tracin_s"],
        "score_matmul_efficiency_vs_float32": main["matmul_f32_s"] / main["tracin_s"],
        "score_tracin_gflops": main["gflop"] / main["tracin_s"],
        "score_matmul_f64_gflops": main["gflop"] / main["matmul_f64_s"],
        "score_matmul_f32_gflops": main["gflop"] / main["matmul_f32_s"],
        "score_tracin_seconds": main["tracin_s"],
        "score_cosine_seconds": main["cosine_s"],
    }
    if "datainf_s" in main:
        keys["score_datainf_seconds"] = main["datainf_s"]
        keys["score_datainf_matmul_efficiency"] = main["datainf_matmul_f64_s"] / main["datainf_s"]
    rows = []
    for r in rows_raw:
        rows.append(
            [
                r["label"],
                f"{r['n']:,} × {r['m']:,}",
                f"{r['params']:,}",
                r["runs"],
                r["tracin_s"],
                r["gflop"] / r["tracin_s"],
                r["matmul_f64_s"],
                r["matmul_f32_s"],
                r["matmul_f64_s"] / r["tracin_s"],
                r["matmul_f32_s"] / r["tracin_s"],
                r["cosine_s"],
                r.get("datainf_s", float("nan")),
            ]
        )
    header = [
        "modules",
        "n × m",
        "entries",
        "runs",
        "TracIn s",
        "TracIn GFLOP/s",
        "A·Bᵀ f64 s",
        "A·Bᵀ f32 s",
        "efficiency (f64)",
        "vs f32",
        "cosine s",
        "DataInf s",
    ]
    note = (
        "#### Score products\n\n"
        "`influence.pairwise` on random float32 gradients with the module sizes of all-MiniLM-L6-v2, "
        "all modules one after the other (median of `runs`), next to a bare `A @ B.T` of the same shapes "
        "(operands already converted; conversion not timed). `pairwise` converts to float64 and "
        "multiplies in float64, so `efficiency (f64)` = bare float64 product time / our TracIn time is the "
        "share of the machine's float64 matrix-multiply throughput we reach; `vs f32` compares with a "
        "float32 product (half the memory traffic, about twice the arithmetic rate). Cosine adds the "
        "norms; DataInf (1 run) also forms the n × n Gram matrix, computed — as in the paper — only for "
        f"tensors below {PAPER_MAX_PARAMS:,} entries (the 24 LoRA tensors and the 3 small head "
        "tensors). The first row is n = 2,250 (half the paper's 4,500) to stay within the time budget; "
        "TracIn and cosine scale linearly in n, DataInf quadratically."
    )
    return {"keys": keys, "markdown": note + "\n\n" + table(header, rows), "raw": rows_raw}
