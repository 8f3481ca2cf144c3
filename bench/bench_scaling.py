"""Benchmark 5: time and peak memory of a whole default run as the number of training examples
doubles, each size in a fresh subprocess (so its peak resident memory is its own), with a fresh
artifact store (nothing cached). A run = `runner.run(preset("default", n_train=N, epochs=...))` with
every influence method, every layer group and aggregation, and no retraining.

Run as a script with ``--worker N`` it executes one such run and prints its measurements as one
JSON line (after `MARKER`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "BENCH-SCALING-RESULT "


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def worker(n_train: int, overrides: dict, store_dir: str) -> dict:
    """One run in this process; returns its wall time, stage times, peak RSS and artifact sizes."""
    t0 = time.perf_counter()
    from benchlib import peak_rss_mb

    from layerinf import runner
    from layerinf.cache import Store
    from layerinf.config import preset

    import_s = time.perf_counter() - t0
    cfg = preset("default", n_train=n_train, **overrides)
    store = Store(Path(store_dir))
    t1 = time.perf_counter()
    result = runner.run(cfg, setups=(), baselines=(), store=store, progress=False)
    run_s = time.perf_counter() - t1
    return {
        "n_train": n_train,
        "n_query": cfg.n_query,
        "epochs": cfg.epochs,
        "model": cfg.model,
        "import_s": import_s,
        "run_s": run_s,
        "stages_s": {k: round(v, 3) for k, v in result.timings.items()},
        # This process's own high-water mark (not ru_maxrss, which inherits the parent's; see benchlib).
        "peak_rss_mb": peak_rss_mb(),
        "gradient_bytes": _dir_bytes(store.root / "gradients"),
        "score_bytes": _dir_bytes(store.root / "influence"),
    }


def measure(n_train: int, overrides: dict) -> dict:
    """Run `worker` in a fresh interpreter with a fresh artifact store; parse its JSON line."""
    with tempfile.TemporaryDirectory(prefix="layerinf-bench-") as store_dir:
        cmd = [
            sys.executable,
            str(HERE / "bench_scaling.py"),
            "--worker",
            str(n_train),
            "--overrides",
            json.dumps(overrides),
            "--store",
            store_dir,
        ]
        env = {**os.environ, "LAYERINF_ARTIFACTS": store_dir, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"scaling run n_train={n_train} failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(MARKER))
    return {**json.loads(line.removeprefix(MARKER)), "process_s": wall}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n_train"] for r in rows]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    ax_t.loglog(n, [r["run_s"] for r in rows], "o-", label="whole run")
    stages = (
        ("load", "x:", "load (data, model)"),
        ("finetune", "s--", "fine-tuning"),
        ("gradients", "^--", "gradients"),
    )
    for stage, style, label in stages:
        ax_t.loglog(n, [r["stages_s"].get(stage, float("nan")) for r in rows], style, label=label)
    influence = [sum(v for k, v in r["stages_s"].items() if k.startswith("influence/")) for r in rows]
    ax_t.loglog(n, influence, "v--", label="influence (all methods)")
    ax_t.set_xlabel("training examples n")
    ax_t.set_ylabel("wall time (s)")
    ax_t.set_title("time")
    ax_t.legend(fontsize=8)
    ax_m.loglog(n, [r["peak_rss_mb"] for r in rows], "o-", label="peak RSS")
    ax_m.loglog(n, [r["gradient_bytes"] / 2**20 for r in rows], "s--", label="gradients on disk")
    ax_m.set_xlabel("training examples n")
    ax_m.set_ylabel("memory / storage (MiB)")
    ax_m.set_title("memory")
    ax_m.legend(fontsize=8)
    for ax in (ax_t, ax_m):
        ax.set_xticks(n, [f"{x:,}" for x in n])
        ax.minorticks_off()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(quick: bool, plot_path: Path | None = None) -> dict:
    from benchlib import table

    if quick:
        sizes, overrides = [32, 64], {"model": "tiny", "n_query": 8, "n_eval": 16, "epochs": 1}
    else:
        sizes, overrides = [250, 500, 1000, 2000], {"epochs": 1}
    rows = [measure(n, overrides) for n in sizes]
    if plot_path is not None:
        plot(rows, plot_path)
    default_n = 1000 if 1000 in sizes else sizes[-1]
    at_default = next(r for r in rows if r["n_train"] == default_n)
    # Linear storage: bytes per training example should be constant (query gradients are a constant offset).
    per_example = [r["gradient_bytes"] / (r["n_train"] + r["n_query"]) for r in rows]
    keys = {
        "peak_rss_mb_default_run": at_default["peak_rss_mb"],
        "default_run_seconds": at_default["run_s"],
        "scaling_largest_n_seconds": rows[-1]["run_s"],
        "scaling_largest_n_peak_rss_mb": rows[-1]["peak_rss_mb"],
        "gradient_bytes_per_example": per_example[-1],
        "gradient_bytes_per_example_spread": (max(per_example) - min(per_example)) / max(per_example),
    }
    header = [
        "n train",
        "run s",
        "fine-tune s",
        "gradients s",
        "influence s",
        "metrics s",
        "peak RSS MiB",
        "gradients on disk MiB",
        "bytes / example",
    ]
    body = []
    for r, bpe in zip(rows, per_example, strict=True):
        st = r["stages_s"]
        body.append(
            [
                f"{r['n_train']:,}",
                r["run_s"],
                st.get("finetune", float("nan")),
                st.get("gradients", float("nan")),
                sum(v for k, v in st.items() if k.startswith("influence/")),
                st.get("metrics", float("nan")),
                r["peak_rss_mb"],
                r["gradient_bytes"] / 2**20,
                f"{bpe:,.0f}",
            ]
        )
    cfg_text = ", ".join(f"{k}={v}" for k, v in overrides.items())
    md = "\n\n".join(
        [
            "#### Scaling of a whole run",
            f'`runner.run(preset("default", n_train=n, {cfg_text}))` with every method '
            "(TracIn, cosine, DataInf, TracIn-WE, TracIn-WE-top-10), every layer group and aggregation, no "
            "retraining; one fresh process and an empty artifact store per n (one run each). Fine-tuning "
            "uses 1 epoch instead of the profile's 3 to fit the time budget (its time is proportional to the "
            "epochs; peak memory is not). Peak RSS = the maximum resident memory of the run's own process "
            "(its VmHWM high-water mark; nothing is inherited from the benchmark driver). Gradients on "
            "disk hold the training and the query examples, so `bytes / example` divides by n + n_query; "
            "a constant value means storage grows linearly in n. Plot: `bench/scaling.png`.",
            table(header, body),
        ]
    )
    return {"keys": keys, "markdown": md, "raw": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", type=int, required=True, help="n_train of the one run to execute")
    parser.add_argument("--overrides", default="{}", help="JSON dict of config overrides")
    parser.add_argument("--store", required=True, help="artifact store directory (fresh)")
    args = parser.parse_args()
    print(MARKER + json.dumps(worker(args.worker, json.loads(args.overrides), args.store)), flush=True)


if __name__ == "__main__":
    main()
