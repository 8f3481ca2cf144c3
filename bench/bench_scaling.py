"""Benchmark 5: time and peak memory of a whole default run as the number of training examples
doubles (n = 500 … 4,000), each size in a fresh subprocess (so its peak resident memory is its own),
with a fresh artifact store (nothing cached). A run = `runner.run(preset("default", n_train=N,
epochs=...))` with every influence method, every layer group and aggregation, and no retraining.

Per-example gradients are streamed from memory-mapped module files, so peak memory should be flat
in n: the benchmark reports the ratio of the largest to the smallest peak (`scaling_peak_rss_ratio`)
and the peak at n = 4,000 (`peak_rss_mb_n4000`). Each child's peak is read twice: by the child
itself (VmHWM) and by the driver from ``os.wait4`` on that child's pid (ru_maxrss of that one
process; `getrusage(RUSAGE_CHILDREN)` would keep the maximum over every child so far).

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
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"scaling run n_train={n_train} failed:\n{stderr[-3000:]}")
    line = next(ln for ln in reversed(stdout.splitlines()) if ln.startswith(MARKER))
    return {**json.loads(line.removeprefix(MARKER)), "process_s": wall, "wait4_maxrss_mb": usage.ru_maxrss / 1024}


def plot(frame, path: Path) -> None:
    """The book's scaling figure (`plotting.scaling`) of `benchreport.scaling_frame` rows, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from layerinf import plotting

    fig = plotting.scaling(frame)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(quick: bool, plot_path: Path | None = None) -> dict:
    if quick:
        sizes, overrides = [32, 64], {"model": "tiny", "n_query": 8, "n_eval": 16, "epochs": 1}
    else:
        sizes, overrides = [500, 1000, 2000, 4000], {"epochs": 1}
    return summarise([measure(n, overrides) for n in sizes], overrides, plot_path)


def summarise(rows: list[dict], overrides: dict, plot_path: Path | None = None) -> dict:
    """The benchmark's keys, markdown and raw rows from the measured sizes (`measure` rows)."""
    from benchlib import table

    from layerinf.tools import benchreport

    sizes = [int(r["n_train"]) for r in rows]
    frame = benchreport.scaling_frame(rows)
    if plot_path is not None:
        plot(frame, plot_path)
    default_n = 1000 if 1000 in sizes else sizes[-1]
    at_default = frame.loc[frame["n_train"] == default_n].iloc[0]
    # Linear storage: bytes per training example should be constant (query gradients are a constant offset).
    per_example = frame["bytes_per_example"]
    peaks = frame["peak_rss_mb"]
    keys = {
        "peak_rss_mb_default_run": float(at_default["peak_rss_mb"]),
        "default_run_seconds": float(at_default["run_s"]),
        "scaling_largest_n_seconds": float(frame["run_s"].iloc[-1]),
        "scaling_largest_n_peak_rss_mb": float(frame["peak_rss_mb"].iloc[-1]),
        "gradient_bytes_per_example": float(per_example.iloc[-1]),
        "gradient_bytes_per_example_spread": float((per_example.max() - per_example.min()) / per_example.max()),
        # Flat memory in n: largest over smallest peak over the sizes measured (target ≤ 1.2).
        "scaling_peak_rss_ratio": float(peaks.max() / peaks.min()),
    }
    if 4000 in sizes:
        keys["peak_rss_mb_n4000"] = float(frame.loc[frame["n_train"] == 4000, "peak_rss_mb"].iloc[0])
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
    columns = ["run_s", "finetune_s", "gradients_s", "influence_s", "metrics_s", "peak_rss_mb", "gradients_mib"]
    body = [
        [f"{int(r.n_train):,}", *(float(getattr(r, c)) for c in columns), f"{r.bytes_per_example:,.0f}"]
        for r in frame.itertuples()
    ]
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
            "a constant value means storage grows linearly in n. Per-example gradients are kept in "
            "memory-mapped files and streamed block by block, so peak memory should not grow with n: "
            f"largest / smallest peak = {keys['scaling_peak_rss_ratio']:.2f} (target ≤ 1.2). "
            "Plot: `bench/scaling.png`.",
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
