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
# # Claim 1: the cancellation effect is not a reliable guide to layer choice
#
# **Claim, as one falsifiable sentence.** A layer group's cancellation ratio does not predict how
# useful its influence scores are: across layer groups, the rank correlation between a group's
# cancellation ratio and the accuracy after removing its 30 % most harmful training examples and
# retraining is weak (|ρ| < 0.5), and the group Yeh et al. single out as least cancelling, the word
# embedding, is not the better choice.
#
# Yeh et al. {cite}`yeh2022first` argued that the per-example gradients of the last layers
# *cancel*: large, opposite-signed influences add up to little, so the first layer (the word
# embedding) should be used instead. {cite}`vitel2025first` answer with (a) a counterexample, (b) the
# observation that a pooled ratio hides per-parameter behaviour and (c) weak correlations between
# cancellation and retrained accuracy (Spearman ρ between about −0.3 and 0.2, as reported).
#
# **Verdict on this build: {glue:text}`c1_verdict`** ({glue:text}`c1_n_runs` runs of
# {glue:text}`c1_scope`).
#
# **Criterion, fixed before the data** (`layerinf.verdicts.CRITERIA`): {glue:text}`c1_criterion`
# Non-significance is not support: a wide interval that reaches ±0.5 leaves the claim undecided.
#
# ```{glue:figure} c1_forest
# :name: fig-c1-forest
#
# Spearman ρ between a layer group's cancellation ratio and its retrained accuracy (TracIn, Mean, six
# groups per run): within runs (dots: one run each; its ρ over the six groups) and pooled over runs
# as the paper computes it, with 95 % whole-run bootstrap intervals. The claim needs the intervals
# inside the grey band, |ρ| < 0.5. Below: the same on NDR@30 (a proxy, context only).
# ```
#
# ```{glue:} c1_decision
# ```
#
# The tables behind this page, as CSV: {download}`every comparison <tables/c1_cancellation/comparisons.csv>`
# (estimate, interval, n, test, p), {download}`retrained accuracy per run and setup
# <tables/c1_cancellation/retraining.csv>`, {download}`detection per run <tables/c1_cancellation/detection.csv>` and
# {download}`fine-tuning per run <tables/c1_cancellation/finetune.csv>`.

# %% tags=["parameters", "remove-cell"]
profile = "default"
grid_file = None  # a book grid file; None: grids/book/<profile>.yaml, the one every page reads
models = None  # replaces the main experiment's models (`layerinf book --model`)
overrides = {}  # experiment keys or RunConfig fields (`layerinf book --set`); "llm." for the LLM experiment

# %% tags=["remove-cell"]
import numpy as np
import pandas as pd
from myst_nb import glue

from layerinf import counterexample, experiment, plotting, report, verdicts
from layerinf.execution import run_experiment

book = experiment.book(profile, grid_file, models, overrides)
P = book["main"].parameters()
grid = run_experiment(book["main"])
n_layers = grid.n_layers
names = grid.group_labels()
result = verdicts.claim1(grid.detection, grid.retraining, grid.cancellation)
report.export_tables("c1_cancellation", comparisons=result.table(), retraining=grid.retraining, detection=grid.detection,
                     finetune=grid.info)
floor = report.noise_floor(grid.retraining)
scope = P.scope
report.glue_all({**result.flat(), "scope": scope, "noise_pct": 100 * P.noise_rate, "least_cancelling_label": names.get(
    result.facts["least_cancelling_group"], "–")}, prefix="c1_")
rhos = [c for c in result.comparisons + result.context if c.unit == "rho"]
glue("c1_forest", plotting.comparisons_forest(rhos, band=(-verdicts.GUIDE_BOUND, verdicts.GUIDE_BOUND),
                                              band_label="|ρ| < 0.5: not a reliable guide"), display=False)
glue("c1_decision", report.decision_table(result.comparisons + result.context).style.hide(axis="index"), display=False)

# %% [markdown]
# ## What was run
#
# Each run is one (model, task, seed): {glue:text}`c1_scope`. Each fine-tunes the model with LoRA on
# the training examples ({glue:text}`c1_noise_pct:.0f` % of their labels flipped), scores every training example against every
# query example per module, removes the 30 % lowest-scored under each setup and retrains from the same
# initialisation. The parameters of this page:

# %% tags=["remove-input"]
report.parameters_frame(
    profile=profile, models=P.models, tasks=P.tasks, seeds=P.seeds, n_train=P.n_train, n_query=P.n_query, n_eval=P.n_eval,
    epochs=P.epochs, sampling=P.sampling, noise_rate=P.noise_rate, retrained_setups=len(P.setups),
).style.hide(axis="index")

# %% [markdown]
# ## The direct test of Yeh et al.'s advice
#
# If cancellation guided layer choice, the least-cancelling group, the word embedding, would give the
# best retrained accuracy. The third row of the table above is that test: the middle blocks' accuracy
# minus WE's, paired within runs. It can only refute the claim (a *guard*): a significantly negative
# value would mean WE was the better choice. In this build the group with the lowest mean
# cancellation ratio is {glue:text}`c1_least_cancelling_label`.

# %% tags=["remove-cell"]
direct = [c for c in result.comparisons if c.unit == "accuracy"]
fig = plotting.comparisons_forest(direct, band=(-floor["rms"], floor["rms"]))
glue("c1_direct", fig, display=False)

# %% [markdown]
# ```{glue:figure} c1_direct
# :name: fig-c1-direct
#
# The direct test of Yeh et al.'s advice: retrained accuracy of the middle blocks minus that of WE
# (the least-cancelling group), TracIn + Mean, paired within runs (dots: runs; diamond: mean; bar:
# 95 % whole-run bootstrap interval). 0 is no difference; grey band: ± the dropout noise floor.
# ```

# %% [markdown]
# ## (a) A counterexample you can change (an illustration, outside the verdict)
#
# TracIn is additive over parameter blocks, $I_{\theta,\omega} = I_\theta + I_\omega$. Take a clean
# training example $z_c$ and its label-flipped twin $z_n$. On a block θ their gradients agree, so
# θ cannot tell them apart. On a block ω the flipped label flips the output-side gradient: the two
# gradients are exact opposites, so ω cancels *completely* ($C(\omega)=\infty$) — and yet adding ω
# is what separates the clean from the noisy example. Change the numbers in the next cell and
# re-run it.

# %%
ce = counterexample.Counterexample(
    theta_clean=(1.0, 0.2), theta_noisy=(0.9, 0.3), omega_clean=(1.0, 0.0), omega_noisy=(-1.0, 0.0),
    v_theta=(0.5, 0.5), v_omega=(1.0, 0.0),
)
ce_table = pd.DataFrame(counterexample.evaluate(ce)).T
ce_table

# %% tags=["remove-cell"]
fig = plotting.counterexample_sweep(counterexample.sweep(ce, np.linspace(0, 2, 9)))
glue("c1_sweep", fig, display=False)

# %% [markdown]
# ```{glue:figure} c1_sweep
# :name: fig-c1-sweep
#
# The counterexample of (a) as the ω block's weight grows from 0 to 2: the separation between the
# clean and the noisy example's TracIn scores grows, while ω's cancellation ratio stays infinite.
# ```

# %% [markdown]
# The more the ω block contributes, the *larger* the separation, while its cancellation ratio stays
# infinite: high cancellation and useful influence go together here, because the cancellation is
# produced by exactly the clean-versus-noisy opposition that influence uses to find noise. This shows
# that cancellation *can* mislead; whether it does on real models is what the verdict above tests.
#
# ## (b) Cancellation on fine-tuned language models
#
# The cancellation ratio of each layer group over all training examples,
# $C(G) = \sum_p \sum_i |g_{ip}| \,/\, \sum_p |\sum_i g_{ip}|$, with the distribution of the
# per-parameter ratios $c_p$. C mean and std are over runs; the median and min of $c_p$ are means
# over runs, the max is over all runs (∞ where some parameter's gradients sum to exactly zero).

# %% tags=["remove-input"]
table = report.cancellation_summary(grid.cancellation).rename(index=names)
table.style.format({"C mean": "{:.2f}", "C std": "{:.2f}", "median c_p": "{:.2f}", "min c_p": "{:.2f}",
                    "max c_p": "{:.3g}", "#params": "{:,}"})

# %% [markdown]
# A pooled ratio is one number per group; the per-parameter ratios behind it span orders of
# magnitude (compare the median with the max), so a group can hold strongly cancelling parameters
# and non-cancelling ones at the same time.
#
# ## (c) Cancellation against retrained accuracy, run by run
#
# Each line is one run: its six layer groups (TracIn, Mean), cancellation ratio against the accuracy
# change after removal + retraining (relative to no removal in that run). A reliable guide would make
# every line slope the same way.

# %% tags=["remove-cell"]
joined = verdicts.joined(grid.detection, grid.retraining, grid.cancellation)
tr = joined[(joined.method == "tracin") & (joined.aggregation == "mean")].copy()
none = grid.retraining[grid.retraining.setup == "none"].set_index(["model", "task", "seed"])[verdicts.ACC]
tr = tr.join(none.rename("none"), on=["model", "task", "seed"])
tr["change"] = 100 * (tr[verdicts.ACC] - tr["none"])
fig = plotting.runs_lines(tr, "cancellation", "change", "cancellation ratio C of the group (log scale)",
                          "accuracy change vs no removal (points)", logx=True)
glue("c1_runs", fig, display=False)

# %% [markdown]
# ```{glue:figure} c1_runs
# :name: fig-c1-runs
#
# Each layer group's cancellation ratio (log scale) against its accuracy change after removing its
# 30 % lowest-scored examples (TracIn + Mean) and retraining, relative to no removal in the same
# run; one line per run. 0 is no change; a reliable guide would make every line slope the same way.
# ```

# %% [markdown]
# ## Confounds of the ground truth
#
# The fine-tuned model of every run against the majority-class rate of its evaluation set, and what
# each TracIn + Mean setup removed (its noisy share and whether it wiped out a class: fewer than
# 25 % of that class's training examples kept). The dropout noise floor is
# {glue:text}`c1_noise_floor_pts:.2f` points (root mean square of the gap between two no-removal
# retrainings that differ only in dropout seed, {glue:text}`c1_noise_floor_n` runs).

# %% tags=["remove-input"]
report.show_finetune(grid.info)

# %% tags=["remove-input"]
report.removal_makeup(grid.retraining[(grid.retraining.method == "tracin") & (grid.retraining.aggregation == "mean")]
                      ).style.format({"noisy share of removed": "{:.2f}", "top class share of removed": "{:.2f}",
                                      "min class share kept": "{:.2f}"})

# %% [markdown]
# **The same criterion on other accuracies** (shown, not deciding): on balanced accuracy the verdict
# would be *{glue:text}`c1_verdict_bacc_selected`*; on the paper's best epoch (chosen on the
# evaluation set) *{glue:text}`c1_verdict_acc_best`*.

# %% tags=["remove-cell"]
report.glue_all(
    {"noise_floor_pts": 100 * floor["rms"], "noise_floor_n": floor["n"],
     **{f"verdict_{alt}": verdicts.claim1(grid.detection, grid.retraining, grid.cancellation, value=alt).verdict
        for alt in verdicts.ALTERNATIVES}},
    prefix="c1_",
)
