# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What it costs
#
# Measured times and memory of this build of the book, on the machine that built it. Nothing on
# this page is typed in: the numbers come from the timing records of the build driver
# (`book/_executed/timings.json`), from the compute times stored beside every cached artifact, and
# from the benchmark results (`make bench`) when they exist.

# %% tags=["parameters", "remove-cell"]
profile = "default"
grid_file = None  # a book grid file; None: grids/book/<profile>.yaml, the one every page reads
models = None  # replaces the main experiment's models (`layerinf book --model`)
overrides = {}  # experiment keys or RunConfig fields (`layerinf book --set`); "llm." for the LLM experiment
pilot_task = "rt"
pilot_n_train = 500

# %% tags=["remove-cell"]
import json
import os
from pathlib import Path

import pandas as pd
import torch

from layerinf import experiment, report
from layerinf.execution import run_experiment
from layerinf.tools import benchreport

# %% tags=["hide-input"]
book = experiment.book(profile, grid_file, models, overrides)
P = book["main"].parameters()
grid = run_experiment(book["main"], progress=False)
timings_file = Path("book/_executed/timings.json")
timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
machine = {"cpu": benchreport.cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "device": "cuda" if torch.cuda.is_available() else "cpu"}
report.glue_all(machine, prefix="cost_")
pd.Series(machine).to_frame("this build ran on")

# %% [markdown]
# ## The build, notebook by notebook
#
# Wall time of each executed notebook in this build (profile {glue:text}`cost_profile`), and the
# peak resident memory of its kernel (sampled every half second; – where not recorded). The first
# notebook that needs a run computes it; the later ones read it from the artifact cache. A page is
# recorded after it runs, so the rows of this page and of the pages after it come from their
# previous execution.

# %% tags=["hide-input"]
rows = [{"step": name, "seconds": t["seconds"], "kernel peak RSS (MB)": t.get("kernel_peak_rss_mb")}
        for name, t in timings.items() if t.get("profile") == profile and name != "_setup"]
build = pd.DataFrame(rows)
build.style.format({"seconds": "{:,.1f}", "kernel peak RSS (MB)": "{:,.0f}"}, na_rep="–").hide(axis="index")

# %% tags=["hide-input"]
setup_s = float(timings.get("_setup", {}).get("seconds", float("nan")))
notebooks_s = float(build.loc[build.step != "_setup", "seconds"].sum()) if len(build) else float("nan")
peak_mb = float(pd.to_numeric(build["kernel peak RSS (MB)"]).max()) if len(build) else float("nan")
report.glue_all({"profile": profile, "setup_s": setup_s, "notebooks_s": notebooks_s,
                 "notebooks_min": notebooks_s / 60, "peak_mb": peak_mb}, prefix="cost_")

# %% [markdown]
# ## Where the compute goes
#
# Compute time of each pipeline stage, summed over the runs of the grid (recorded when each
# artifact was computed, so it is the same on a re-render that only reads the cache).

# %% tags=["hide-input"]
t = grid.timings.copy()
t["stage"] = t["stage"].str.split("/").str[0]
per_stage = t.groupby("stage")["compute_seconds"].agg(["sum", "mean", "count"]).rename(
    columns={"sum": "total (s)", "mean": "per item (s)", "count": "items"})
per_stage.style.format({"total (s)": "{:.0f}", "per item (s)": "{:.1f}"})

# %% tags=["hide-input"]
total = float(t["compute_seconds"].sum())
retrain = t[(t.stage == "retrain") & (t.compute_seconds > 0)]["compute_seconds"]  # shared retrainings once
report.glue_all({"grid_compute_min": total / 60, "n_runs": len(grid.runs), "n_retrain": int(len(retrain)),
                 "retrain_mean_s": float(retrain.mean()) if len(retrain) else float("nan")}, prefix="cost_")

# %% [markdown]
# ## Why the grid has the size it has
#
# The verdicts rest on retrained accuracy, and retraining is where the time goes: every retraining
# trains on 70 % of the training examples for the same epochs as the fine-tuning and evaluates the
# query and evaluation examples after every epoch. The default grid spends its budget on runs (the
# unit of every interval) and on an evaluation set large enough that a point of accuracy is
# measurable ({glue:text}`cost_n_eval` examples), and keeps every setup the claims compare:
# {glue:text}`cost_sizing`
#
# {glue:text}`cost_pilot_sentence`

# %% tags=["hide-input"]
import numpy as np

from layerinf.config import preset
from layerinf.runner import Pipeline

retrained = t[(t.stage == "retrain") & (t.compute_seconds > 0)]  # a setup that reuses another's retraining costs 0
retrain = retrained["compute_seconds"]
per_run = retrained.groupby(["model", "task", "seed"]).size()
finetune_s = t[t.stage == "finetune"]["compute_seconds"]
sizing = (
    f"{len(grid.runs)} runs ({', '.join(P.tasks)} × {len(P.seeds)} seeds) × {per_run.mean() if len(per_run) else 0:.0f} "
    f"retrainings ({len(P.setups)} setups, where setups that remove the same examples share one retraining, "
    f"and the random, oracle and second-dropout-seed baselines; no removal is the fine-tuning itself) = "
    f"{int(len(retrain))} retrainings of "
    f"{retrain.mean() if len(retrain) else float('nan'):.1f} s each (where retrainings were trained in packs, "
    "each member's share of its pack), "
    f"{retrain.sum() / 60:.1f} minutes, against "
    f"{finetune_s.mean() if len(finetune_s) else float('nan'):.1f} s per fine-tuning."
)
pilot_sentence = "This profile runs no pilot."
if pilot_task:  # a task left out of the grid: is it learned at all, with more training examples?
    pilot_cfg = preset(profile, model=P.models[0], task=pilot_task, seed=0, n_train=pilot_n_train, n_query=P.n_query,
                       n_eval=P.n_eval, epochs=P.epochs, sampling=P.sampling, noise_rate=P.noise_rate)
    pilot = Pipeline(pilot_cfg, progress=False)
    pilot.finetune()
    labels = pilot.splits.eval.labels
    pilot_acc, pilot_major = pilot.finetune_summary["acc_selected"], float(np.bincount(labels).max() / len(labels))
    learned = pilot_acc - pilot_major >= 0.1
    pilot_sentence = (
        f"A pilot fine-tuning of {P.models[0]} on {pilot_task} at {pilot_n_train} training examples "
        f"({pilot_n_train / P.n_train:.1f}× the grid's) reached an evaluation accuracy of {pilot_acc:.3f} against a "
        f"majority-class rate of {pilot_major:.3f}: "
        + ("learned well enough to be added to the grid (`--set tasks=[...]`)." if learned else
           f"too close to chance for retrained accuracies to mean anything, so {pilot_task} is not in this grid.")
    )
report.glue_all({"sizing": sizing, "pilot_sentence": pilot_sentence, "n_eval": P.n_eval}, prefix="cost_")

# %% [markdown]
# ## Benchmarks
#
# Side-by-side measurements of the influence pipeline (`make bench`, see `bench/README.md`): our
# batched per-example gradients against the paper's batch-size-1 autograd loop and `torch.func.vmap`,
# score products against the machine's own matrix-multiply throughput, aggregation, a peer tool
# (Captum's TracInCP) on the same job, batched against sequential retraining, and a whole run as the
# training set doubles. Each benchmark
# runs its contenders in one process, interleaved, on the same weights and examples. The tables and
# figures below are drawn from `bench/results.json` as `make bench` wrote it; the line under this
# paragraph says when and on which machine.

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from layerinf import plotting

bench_json = Path("bench/results.json")
bench = json.loads(bench_json.read_text()) if bench_json.exists() else None
if bench is None:
    display(Markdown("**No benchmark results in this build.** Run `make bench` (about 13 minutes on 2 idle "
                     "cores), then re-execute this page: `.venv/bin/layerinf book --only cost`."))
else:
    commit = bench["machine"].get("commit", "unknown")
    display(Markdown(
        f"Benchmarks measured {bench['date']} at commit `{commit}` "
        + ("(a **quick** run: tiny sizes on a random model; the numbers only show that the benchmarks run)."
           if bench["quick"] else "(full size).")))
    bench_md = Path("bench/results.md").read_text()
    head, _, details = bench_md.partition("\n#### ")
    display(Markdown(head))

# %% [markdown]
# Per-example gradients of every module at once, in milliseconds per example at the size where
# every contender ran (shorter is faster), next to one plain training pass over the same examples:
# the floor of any method that needs a backward pass per example.

# %% tags=["hide-input"]
if bench is not None and "raw" in bench["sections"].get("gradients", {}):
    costs = benchreport.gradient_cost_frame(bench["sections"]["gradients"]["raw"])
    display(Markdown(benchreport.gradient_cost_summary(costs)))
    plotting.gradient_costs(costs)
else:
    print("The gradient benchmark has no results in bench/results.json.")

# %% [markdown]
# Retraining, the ground truth every verdict rests on, trained K at a time (`multitrain`: the K
# mini-batches go through the frozen base model as one batch; each retraining's LoRA and head
# tensors are stacked and applied to its own rows) against one after another. Above: the speed-up
# over the sequential path; below: the retraining's floating-point operations per second (counted
# from the model's shapes) as a share of a dense matrix multiply measured in the same run, which
# says how much of the machine is left to gain.

# %% tags=["hide-input"]
if bench is not None and "per_k" in bench["sections"].get("retrain", {}):
    packs_frame = benchreport.retrain_frame(bench["sections"]["retrain"])
    display(Markdown(benchreport.retrain_summary(packs_frame, bench["sections"]["retrain"]["keys"])))
    plotting.retrain_packs(packs_frame)
else:
    print("The retraining benchmark has no results in bench/results.json.")

# %% [markdown]
# A whole run (every method, layer group and aggregation; no retraining) as the training set
# doubles from 500 to 4,000: time per stage against a linear guide, peak resident memory of the
# run's own process, and the gradients it stores on disk. The per-example gradients live in
# memory-mapped files and are read block by block, so peak memory stays about flat in n while
# storage grows linearly.

# %% tags=["hide-input"]
if bench is not None and "raw" in bench["sections"].get("scaling", {}):
    plotting.scaling(benchreport.scaling_frame(bench["sections"]["scaling"]["raw"]))
else:
    print("The scaling benchmark has no results in bench/results.json.")

# %% tags=["hide-input"]
if bench is not None and details:
    display(Markdown("#### " + details))

# %% [markdown]
# ## Summary
#
# On this machine ({glue:text}`cost_cores` cores, {glue:text}`cost_cpu`), set-up took
# {glue:text}`cost_setup_s:.0f` s and the notebooks before this page {glue:text}`cost_notebooks_min:.1f`
# minutes; the grid's {glue:text}`cost_n_runs` runs cost {glue:text}`cost_grid_compute_min:.1f`
# minutes of compute, of which {glue:text}`cost_n_retrain` retrainings took
# {glue:text}`cost_retrain_mean_s:.1f` s each on average. The largest notebook kernel used
# {glue:text}`cost_peak_mb:.0f` MB.
