"""Run the benchmarks and write bench/results.json and bench/results.md (see bench/README.md).

python bench/run.py                     # everything, full size (about 13 minutes on 2 idle cores)
python bench/run.py --quick             # tiny sizes (a smoke test; the numbers mean nothing)
python bench/run.py --only scores peer  # re-run some benchmarks, keep the others' results
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCHMARKS = ("gradients", "scores", "aggregation", "peer", "retrain", "scaling")

#: (result key, target description, test of the value) for the summary table.
TARGETS = (
    ("grad_speedup_vs_loop_minilm", "batched gradients vs batch-size-1 loop, minilm: ≥ 3×", lambda v: v >= 3),
    ("grad_speedup_vs_loop_smollm2", "batched gradients vs batch-size-1 loop, smollm2: ≥ 2×", lambda v: v >= 2),
    ("grad_vs_train_pass_minilm", "batched gradients / one training pass, minilm: ≤ 1.5", lambda v: v <= 1.5),
    ("score_matmul_efficiency", "TracIn products / bare matrix multiply (float64): ≥ 0.7", lambda v: v >= 0.7),
    ("aggregate_seconds", "Rank + Vote over 24 × 4,500 × 500: < 10 s", lambda v: v < 10),
    ("peak_rss_mb_default_run", "peak memory of a default run (n = 1,000): < 4,096 MiB", lambda v: v < 4096),
    ("retrain_batched_speedup_minilm", "batched retraining (K = 16) vs sequential, minilm: ≥ 2×", lambda v: v >= 2),
    ("peak_rss_mb_n4000", "peak memory of a whole minilm run at n = 4,000: < 2.5 GB (2,384 MiB)", lambda v: v < 2384),
    ("scaling_peak_rss_ratio", "flat memory: largest / smallest peak, n = 500 … 4,000: ≤ 1.2", lambda v: v <= 1.2),
    ("peer_speedup", "Captum TracInCP time / ours, same module (one) and snippets: > 1", lambda v: v > 1),
)


def _run_one(name: str, quick: bool, out_dir: Path) -> dict:
    if name == "gradients":
        import bench_gradients as mod
    elif name == "scores":
        import bench_scores as mod
    elif name == "aggregation":
        import bench_aggregation as mod
    elif name == "peer":
        import bench_peer as mod
    elif name == "retrain":
        import bench_retrain as mod
    else:
        import bench_scaling as mod

        return mod.run(quick, plot_path=out_dir / "scaling.png")
    return mod.run(quick)


def _summary(keys: dict, quick: bool) -> str:
    from benchlib import fmt, table

    rows = []
    for key, text, ok in TARGETS:
        value = keys.get(key)
        if value is None or not math.isfinite(value):
            rows.append([text, "–", "not measured"])
        else:
            rows.append([text, fmt(float(value)), "yes" if ok(value) else "**no**"])
    note = (
        "**Quick run** (tiny sizes and the random `tiny` model standing in for both real models): "
        "these numbers only show that the benchmarks run; they are not a measurement."
        if quick
        else "Target met? is judged on the medians below."
    )
    return note + "\n\n" + table(["target", "reached", "target met?"], rows)


def write_markdown(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        "### Measured speed and memory",
        f"Measured {results['date']} by `make bench` (`bench/run.py`{' --quick' if results['quick'] else ''}) "
        f"on {m['cores']} cores of an {m['cpu_model']} ({m['memory_gb']} GiB), torch {m['torch']} with "
        f"{m['torch_threads']} threads, numpy {m['numpy']}, Python {m['python']}; load average "
        f"{m['load_average_at_start'][0]} at the start. Every contender runs in the same process as its "
        "rivals, interleaved, on the same data. Total time of the benchmarks: "
        f"{results['total_seconds'] / 60:.1f} min.",
        _summary(results["keys"], results["quick"]),
    ]
    for name in BENCHMARKS:
        section = results["sections"].get(name)
        if section is None:
            continue
        if "error" in section:
            lines.append(f"#### {name}\n\nThis benchmark failed: `{section['error']}`")
        else:
            lines.append(section["markdown"])
            peak = section.get("driver_peak_rss_mb")
            memory = f", peak memory of the benchmark process so far {peak:,.0f} MiB" if peak else ""
            lines.append(f"*({name}: {section['seconds']:.0f} s{memory})*")
    path.write_text("\n\n".join(lines) + "\n")


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "shape", None) == ():
        return x.item()
    return x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help=f"any of {BENCHMARKS}")
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="JSON output (markdown beside it)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    names = list(args.only or BENCHMARKS)

    warnings.filterwarnings("ignore", message=".*performance drop because we have not yet implemented the batching")
    from benchlib import machine, peak_rss_mb

    previous = {}
    if args.only and out.exists():  # re-running some benchmarks keeps the others' results
        previous = json.loads(out.read_text())
        if previous.get("quick") != args.quick:
            previous = {}
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        print(
            f"warning: load average {load:.1f} on {cores} cores: the machine is busy, timings will be slow and noisy",
            file=sys.stderr,
        )
    results = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "sections": previous.get("sections", {}),
    }
    failed = []
    for name in names:
        print(f"== bench {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            section = _run_one(name, args.quick, out.parent)
            section["seconds"] = time.perf_counter() - t0
            section["driver_peak_rss_mb"] = peak_rss_mb()  # running maximum of this process so far
        except Exception as err:  # keep going: the other benchmarks still run and are written
            traceback.print_exc()
            section = {"error": f"{type(err).__name__}: {err}"[:500], "keys": {}, "seconds": time.perf_counter() - t0}
            failed.append(name)
        results["sections"][name] = _jsonable(section)
        print(f"== bench {name}: {section['seconds']:.0f} s", file=sys.stderr, flush=True)
    results["total_seconds"] = sum(s.get("seconds", 0.0) for s in results["sections"].values())
    keys: dict[str, float] = {}
    for name in BENCHMARKS:
        keys.update(results["sections"].get(name, {}).get("keys", {}))
    results["keys"] = keys
    flat = {k: float(v) for k, v in keys.items()}
    document = {**flat, "machine": results["machine"], **{k: v for k, v in results.items() if k != "machine"}}
    out.write_text(json.dumps(_jsonable(document), indent=1, allow_nan=True) + "\n")
    write_markdown(results, out.with_suffix(".md"))
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    for key, text, ok in TARGETS:
        if key in flat:
            print(f"  {key:32s} {flat[key]:10.4g}   {text}{'' if ok(flat[key]) else '   <- target missed'}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
