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
# # Claim 4: the noise detection rate predicts retraining; cancellation does not
#
# **Claim, as one falsifiable sentence.** Among the setups of one run, the noise detection rate
# NDR@30 of a setup's scores is positively rank-correlated with the accuracy after removing its 30 %
# most harmful examples and retraining, more strongly than the group's cancellation ratio is, so
# NDR can choose a setup without retraining.
#
# {cite}`vitel2025first` report ρ(NDR@30, accuracy) ≈ 0.4–0.7 with Mean and ≈ 0.8–0.9 with Vote,
# against ρ(cancellation, accuracy) ≈ −0.3 … 0.2, pooled over layer groups, tasks and seeds (as
# reported). Pooling mixes tasks: a task on which noise is easier to find may also be easier to
# learn, which correlates NDR with accuracy without NDR saying anything about which setup to pick.
# This page decides on correlations *within* runs and shows the pooled ones beside them.
#
# **Verdict on this build: {glue:text}`c4_verdict`** ({glue:text}`c4_n_runs` runs of
# {glue:text}`c4_scope`; {glue:text}`c4_n_setups_per_run:.0f` retrained setups per run).
#
# **Criterion, fixed before the data** (`layerinf.verdicts.CRITERIA`): {glue:text}`c4_criterion`
#
# ```{glue:figure} c4_forest
# :name: fig-c4-forest
#
# Spearman ρ with retrained accuracy: within runs (dots: one run each, over its retrained setups;
# deciding, top two) and pooled over runs as the paper computes it (context), with 95 % whole-run
# bootstrap intervals. The cancellation rows of the table below are read as claim 1 reads them
# (|ρ| < 0.5 means "does not predict").
# ```
#
# ```{glue:} c4_decision
# ```
#
# The tables behind this page, as CSV: {download}`every comparison <tables/c4_ndr/comparisons.csv>`
# (estimate, interval, n, test, p), {download}`retrained accuracy per run and setup
# <tables/c4_ndr/retraining.csv>`, {download}`detection per run <tables/c4_ndr/detection.csv>` and
# {download}`fine-tuning per run <tables/c4_ndr/finetune.csv>`.
#
# **What picking by NDR@30 is worth.** Against the best retrained setup of each run, picking the setup
# with the highest NDR@30 loses {glue:text}`c4_regret_by_ndr_pts:.2f` points of accuracy on average,
# picking the least-cancelling group loses {glue:text}`c4_regret_by_cancellation_pts:.2f`, and picking
# at random {glue:text}`c4_regret_at_random_pts:.2f`.

# %% tags=["parameters", "remove-cell"]
profile = "default"
grid_file = None  # a book grid file; None: grids/book/<profile>.yaml, the one every page reads
models = None  # replaces the main experiment's models (`layerinf book --model`)
overrides = {}  # experiment keys or RunConfig fields (`layerinf book --set`); "llm." for the LLM experiment

# %% tags=["remove-cell"]
import pandas as pd
from myst_nb import glue

from layerinf import experiment, metrics, plotting, report, verdicts
from layerinf.execution import run_experiment

book = experiment.book(profile, grid_file, models, overrides)
P = book["main"].parameters()
grid = run_experiment(book["main"])
first = next(iter(grid.runs.values()))
n_layers = first.scores("tracin").n_layers
names = grid.group_labels()
result = verdicts.claim4(grid.detection, grid.retraining, grid.cancellation)
report.export_tables("c4_ndr", comparisons=result.table(), retraining=grid.retraining, detection=grid.detection,
                     finetune=grid.info)
scope = P.scope
flat = result.flat()
report.glue_all({**flat, "scope": scope, "noise_pct": 100 * P.noise_rate, **{f"{k}_pts": 100 * flat[k] for k in
                 ("regret_by_ndr", "regret_by_cancellation", "regret_at_random")}}, prefix="c4_")
rho_rows = [c for c in result.comparisons + result.context if c.unit == "rho" and c.kind == "difference"]
glue("c4_forest", plotting.comparisons_forest(rho_rows), display=False)
glue("c4_decision", report.decision_table(result.comparisons + result.context).style.hide(axis="index"), display=False)

# %% [markdown]
# ## What was run
#
# Each run is one (model, task, seed): {glue:text}`c4_scope`. Each fine-tunes the model with LoRA on
# the training examples ({glue:text}`c4_noise_pct:.0f` % of their labels flipped), scores every training example against every
# query example per module, removes the 30 % lowest-scored under each setup and retrains from the same
# initialisation. The parameters of this page:

# %% tags=["remove-input"]
report.parameters_frame(
    profile=profile, models=P.models, tasks=P.tasks, seeds=P.seeds, n_train=P.n_train, n_query=P.n_query, n_eval=P.n_eval,
    epochs=P.epochs, sampling=P.sampling, noise_rate=P.noise_rate, retrained_setups=len(P.setups),
).style.hide(axis="index")

# %% [markdown]
# ## Within runs and pooled
#
# Left of each pair below is what the paper pools, right is what a user choosing a setup for *one*
# model and data set faces: each point is one retrained setup, with its run's mean NDR@30 and mean
# accuracy subtracted (so only differences between setups of the same run remain).

# %% tags=["remove-cell"]
joined = verdicts.joined(grid.detection, grid.retraining, grid.cancellation)
centred = joined.copy()
for col in ("ndr@30", verdicts.ACC):
    centred[col] = centred[col] - centred.groupby(["model", "task", "seed"])[col].transform("mean")
fig_pooled = plotting.scatter_with_rho(joined, "ndr@30", verdicts.ACC, "aggregation", "NDR@30 of the setup's scores",
                                "accuracy after removal + retraining")
fig_within = plotting.scatter_with_rho(centred, "ndr@30", verdicts.ACC, "aggregation", "NDR@30 minus its run's mean",
                                "accuracy minus its run's mean")
glue("c4_pooled", fig_pooled, display=False)
glue("c4_within", fig_within, display=False)

# %% [markdown]
# ```{glue:figure} c4_pooled
# :name: fig-c4-pooled
#
# Every retrained setup of every run: NDR@30 of its scores against its accuracy after removal and
# retraining, pooled over runs as the paper does (ρ: Spearman).
# ```

# %% [markdown]
# ```{glue:figure} c4_within
# :name: fig-c4-within
#
# The same setups with their run's mean NDR@30 and mean accuracy subtracted: what is left once the
# differences between runs (tasks, seeds) are removed (ρ: Spearman, within runs).
# ```

# %% [markdown]
# **The paper's table.** One row per (aggregation, method), pooled over (layer group, task, seed):
# ρ between retrained accuracy and the group's cancellation ratio, NDR@30 and AUC-NDR. The p-values
# treat every row as independent, which rows of the same run are not.

# %% tags=["remove-input"]
table = report.spearman_predictiveness(grid.detection, grid.retraining, grid.cancellation)
show = table.set_index(["aggregation", "method"])[
    [c for x in ("cancellation", "ndr@30", "auc_ndr") for c in (f"{x}_rho", f"{x}_p")]]
show.style.format({c: "{:.3f}" for c in show.columns if c.endswith(("_rho", "_p"))})

# %% [markdown]
# **Accuracy lost by each way of picking a setup**, per run, against the best retrained setup of that
# run (points; the context rows of the table at the top test the paired gains).

# %% tags=["remove-input"]
picks = verdicts.regret(joined)
(100 * picks.set_index(["model", "task", "seed"])[["by_ndr", "by_cancellation", "at_random"]]).style.format("{:.2f}")

# %% [markdown]
# ## What NDR measures
#
# Sort the training examples by score, most harmful first, and count how many of the mislabelled
# ones have been found after inspecting t of them: NDR(t). Below, the curves of one run
# ({glue:text}`c4_run_label`) for TracIn on three layer groups, with Mean and Vote; the dotted line is
# a random order, the dashed one the ideal.

# %% tags=["remove-cell"]
noisy = first.splits.noisy_mask
curve_groups = [g for g in ["we", "block2", "cl"] if g in set(grid.detection.group)]
curves, hist = {}, {}
for g in curve_groups:
    for how in ("mean", "vote"):
        score = first.aggregated("tracin", g, how)
        curves[f"{names[g]}, {plotting.label(how)}"] = metrics.ndr_curve(score, noisy)
        if how == "mean":
            hist[f"TracIn, {names[g]}"] = score
report.glue_all({"run_label": f"{first.cfg.model} on {first.cfg.task}, seed {first.cfg.seed}"}, prefix="c4_")
fig = plotting.ndr_curves(curves, first.cfg.noise_rate)
glue("c4_curves", fig, display=False)

# %% [markdown]
# ```{glue:figure} c4_curves
# :name: fig-c4-curves
#
# NDR(t) of one run: the share of all mislabelled examples found among the t most harmful-looking,
# for TracIn on three layer groups with Mean and Vote. Dotted: a random order; dashed: the ideal.
# ```

# %% [markdown]
# Where the mislabelled examples fall: the fraction of noisy examples in each score decile (decile 1
# holds the lowest scores). A useful score piles the noise into the first deciles.

# %% tags=["remove-cell"]
fig = plotting.noise_histograms(hist, noisy)
glue("c4_deciles", fig, display=False)

# %% [markdown]
# ```{glue:figure} c4_deciles
# :name: fig-c4-deciles
#
# The share of mislabelled examples within each score decile (decile 1 holds the lowest scores),
# TracIn + Mean, one panel per layer group. A random score gives the noise rate (dotted) in every
# decile; a useful one piles the noise into the first deciles.
# ```

# %% [markdown]
# **The same criterion on other accuracies** (shown, not deciding): on balanced accuracy the verdict
# would be *{glue:text}`c4_verdict_bacc_selected`*, on the paper's best epoch
# *{glue:text}`c4_verdict_acc_best`*.

# %% tags=["remove-cell"]
report.glue_all(
    {f"verdict_{alt}": verdicts.claim4(grid.detection, grid.retraining, grid.cancellation, value=alt).verdict
     for alt in verdicts.ALTERNATIVES},
    prefix="c4_",
)
