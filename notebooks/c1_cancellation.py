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
# useful its influence scores are: across layer groups, the Spearman correlation between a group's
# cancellation ratio and the accuracy after removing its 30 % most harmful training examples and
# retraining is weak (|ρ| < 0.5) or not significant.
#
# Yeh et al. {cite}`yeh2022first` argued that the per-example gradients of the last layers
# *cancel*: large, opposite-signed influences add up to little, so the first layer (the word
# embedding) should be used instead. {cite}`vitel2025first` answer with (a) a counterexample, (b) the
# observation that a pooled ratio hides per-parameter behaviour and (c) weak correlations between
# cancellation and retrained accuracy. This page recomputes all three.

# %% tags=["parameters"]
profile = "default"
models = ["minilm"]
tasks = ["spam", "bbc"]
seeds = [0, 1, 2]
n_train = 250
n_query = 80
n_eval = 200
noise_rate = 0.2
methods = ["tracin", "cosine", "datainf", "tracin_we", "tracin_we_top10"]
retrain_setups = [
    "tracin/we/mean",
    "tracin/block2/mean",
    "tracin/block3/mean",
    "tracin/cl/mean",
    "tracin/we/rank",
    "tracin/we/vote",
    "tracin/block2/rank",
    "tracin/block2/vote",
    "tracin/cl/rank",
    "tracin/cl/vote",
]

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from layerinf import counterexample, plotting, report
from layerinf.experiments import run_grid
from layerinf.scores import group_label

# %% [markdown]
# ## (a) A counterexample you can change
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

# %%
fig = plotting.counterexample_sweep(counterexample.sweep(ce, np.linspace(0, 2, 9)))

# %% [markdown]
# The more the ω block contributes, the *larger* the separation, while its cancellation ratio stays
# infinite: high cancellation and useful influence go together here, because the cancellation is
# produced by exactly the clean-versus-noisy opposition that influence uses to find noise.
#
# ## (b) and (c): cancellation on fine-tuned language models
#
# We fine-tune the model of the profile on each task and seed (20 % of the training labels flipped),
# collect per-example gradients of every module, and compute the cancellation ratio of each layer
# group over all training examples,
# $C(G) = \sum_p \sum_i |g_{ip}| \,/\, \sum_p |\sum_i g_{ip}|$, together with the distribution of the
# per-parameter ratios $c_p$.

# %%
grid = run_grid(
    profile, models, tasks, seeds,
    setups=retrain_setups,
    n_train=n_train, n_query=n_query, n_eval=n_eval, noise_rate=noise_rate, methods=tuple(methods),
)
n_layers = next(iter(grid.runs.values())).scores("tracin").n_layers
names = {g: group_label(g, n_layers) for g in ["we", "block1", "block2", "block3", "block4", "cl", "all"]}

# %% [markdown]
# **Cancellation per layer group.** C mean and std are over runs (model × task × seed); the median
# and min of the per-parameter ratios $c_p$ are means over runs, the max is over all runs (∞ where
# some parameter's gradients sum to exactly zero).

# %%
table = report.cancellation_summary(grid.cancellation).rename(index=names)
table.style.format({"C mean": "{:.2f}", "C std": "{:.2f}", "median c_p": "{:.2f}", "min c_p": "{:.2f}",
                    "max c_p": "{:.3g}", "#params": "{:,}"})

# %% [markdown]
# A pooled ratio is one number per group; the per-parameter ratios behind it span orders of
# magnitude (compare the median with the max), so a group can hold strongly cancelling parameters
# and non-cancelling ones at the same time.
#
# Does the pooled ratio predict anything? Below, each point is one (layer group, task, seed): its
# cancellation ratio against the detection rate NDR@30 of its TracIn scores (left) and against the
# accuracy after removing its 30 % lowest-scored training examples and retraining (right).

# %%
joined = report.joined(grid.detection, grid.retraining, grid.cancellation)
tr = joined[(joined.method == "tracin") & (joined.aggregation == "mean")].copy()
tr["series"] = "tracin"
fig = plotting.scatter_with_rho(tr[np.isfinite(tr.cancellation)], "cancellation", report.ACC, "series",
                                "cancellation ratio C of the group", "accuracy after removal + retraining")

# %%
det = grid.detection[(grid.detection.method == "tracin") & (grid.detection.aggregation == "mean")].merge(
    grid.cancellation[["model", "task", "seed", "group", "ratio"]], on=["model", "task", "seed", "group"])
det["series"] = "tracin"
fig = plotting.scatter_with_rho(det[np.isfinite(det.ratio)], "ratio", "ndr@30", "series",
                                "cancellation ratio C of the group", "NDR@30 (Mean aggregation)")

# %%
summary = report.claim1(grid.detection, grid.retraining, grid.cancellation)
report.glue_all(summary, prefix="c1_")
summary

# %% [markdown]
# ## Verdict
#
# - Counterexample: the separation between the clean and the noisy example is
#   {glue:text}`c1_ce_sep_theta:.2f` with θ alone and {glue:text}`c1_ce_sep_both:.2f` once the fully
#   cancelling block ω is added.
# - Cancellation vs retrained accuracy (TracIn, Mean): Spearman ρ = {glue:text}`c1_rho_cancel_acc:.2f`
#   (p = {glue:text}`c1_p_cancel_acc:.3f`, {glue:text}`c1_n_cancel_acc` points); the paper reports
#   ρ between about −0.3 and 0.2 (as reported).
# - Cancellation vs NDR@30: ρ = {glue:text}`c1_rho_cancel_ndr:.2f` (p = {glue:text}`c1_p_cancel_ndr:.3f`,
#   {glue:text}`c1_n_cancel_ndr` points).
#
# **On our models and data the claim {glue:text}`c1_verdict`.** The criterion (stated in
# `layerinf.report.claim1`): it holds if the correlation with retrained accuracy is weak
# (|ρ| < 0.5) or not significant (p > 0.05). With a handful of runs on a CPU the test has little
# power, so a "held" here means "no evidence that cancellation guides layer choice", not proof of
# its absence; the counterexample is what shows it *cannot* be a reliable guide in general.
