"""Benchmark 3: Rank and Vote aggregation of per-module scores [modules, n, m] (one pass shares the
per-column arg-sorts between the two)."""

from __future__ import annotations

import numpy as np
from benchlib import Timings, table, timed

from layerinf.aggregation import aggregate_many, default_k


def run(quick: bool) -> dict:
    modules, n, m, repeats = (24, 256, 32, 2) if quick else (24, 4500, 500, 3)
    values = np.random.default_rng(0).standard_normal((modules, n, m), dtype=np.float32)
    aggregate_many(values[:, : min(n, 64), :4], ["rank", "vote"])  # warm-up: thread pool
    t = Timings()
    for _ in range(repeats):
        t.add("rank+vote", timed(lambda: aggregate_many(values, ["rank", "vote"]))[0])
    seconds = t.median("rank+vote")
    md = "\n\n".join(
        [
            "#### Aggregation",
            f"Rank and Vote (k = {default_k(n):,} = 20 % of n) in one call of `aggregation.aggregate_many` "
            f"over random float32 scores of {modules} modules × {n:,} training × {m:,} query examples "
            f"({modules * m:,} columns to rank), median of {repeats} runs.",
            table(
                ["modules × n × m", "runs", "Rank + Vote s", "columns ranked per s"],
                [[f"{modules} × {n:,} × {m:,}", repeats, seconds, modules * m / seconds]],
            ),
        ]
    )
    return {"keys": {"aggregate_seconds": seconds}, "markdown": md, "raw": {"runs_s": t.seconds["rank+vote"]}}
