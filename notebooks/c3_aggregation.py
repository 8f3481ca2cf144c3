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
# # Claim 3: Rank and Vote aggregation beat averaging
#
# **Claim, as one falsifiable sentence.** Aggregating per-module influence by *ranks* (Rank) or by
# *votes for the most harmful examples* (Vote) selects training examples whose removal gives a
# higher retrained accuracy than averaging the raw scores (Mean).
#
# Raw influence magnitudes differ by orders of magnitude between modules, so a mean over modules
# and queries is dominated by a few of them. Rank replaces each (module, query) column by the
# positions of the training examples in it; Vote gives each column's k most harmful examples
# k, k−1, … points. {cite}`vitel2025first` report that both improve retrained accuracy, that Vote
# can lift a weak setup to the top, and that Vote works best for k around 10–50 % of n (as reported).
#
# **Verdict on this build: {glue:text}`c3_verdict`** ({glue:text}`c3_n_runs` runs of
# {glue:text}`c3_scope`).
#
# **Criterion, fixed before the data** (`layerinf.verdicts.CRITERIA`): {glue:text}`c3_criterion`
#
# ```{glue:figure} c3_forest
# :name: fig-c3-forest
#
# Retrained accuracy of Rank and Vote minus Mean (deciding, top), and the controls (context): each
# run's value is its mean over the three retrained groups (WE, a middle block, CL); diamonds are the
# mean over runs, bars 95 % whole-run bootstrap intervals. Rank and Vote use only the queries the
# fine-tuned model predicts correctly; mean_c is Mean over those queries, so mean_c − Mean is the
# effect of dropping the wrong queries and Vote − mean_c the effect of ranking itself. Grey band: the
# dropout noise floor.
# ```
#
# ```{glue:} c3_decision
# ```
#
# The tables behind this page, as CSV: {download}`every comparison <tables/c3_aggregation/comparisons.csv>`
# (estimate, interval, n, test, p), {download}`retrained accuracy per run and setup
# <tables/c3_aggregation/retraining.csv>`, {download}`detection per run <tables/c3_aggregation/detection.csv>` and
# {download}`fine-tuning per run <tables/c3_aggregation/finetune.csv>`.

# %% tags=["parameters", "remove-cell"]
profile = "default"
grid_file = None  # a book grid file; None: grids/book/<profile>.yaml, the one every page reads
models = None  # replaces the main experiment's models (`layerinf book --model`)
overrides = {}  # experiment keys or RunConfig fields (`layerinf book --set`); "llm." for the LLM experiment

# %% tags=["remove-cell"]
import pandas as pd
from myst_nb import glue

from layerinf import experiment, plotting, report, verdicts
from layerinf.execution import run_experiment
from layerinf.tables import vote_k_table

book = experiment.book(profile, grid_file, models, overrides)
P = book["main"].parameters()
grid = run_experiment(book["main"])
n_layers = grid.n_layers
groups = ["we", "block1", "block2", "block3", "block4", "cl", "all"]
names = grid.group_labels()
result = verdicts.claim3(grid.detection, grid.retraining)
report.export_tables("c3_aggregation", comparisons=result.table(), retraining=grid.retraining, detection=grid.detection,
                     finetune=grid.info)
floor = report.noise_floor(grid.retraining)
scope = P.scope
report.glue_all({**result.flat(), "scope": scope, "noise_pct": 100 * P.noise_rate, "noise_floor_pts": 100 * floor["rms"]}, prefix="c3_")
acc_rows = [c for c in result.comparisons + result.context if c.unit == "accuracy"]
glue("c3_forest", plotting.comparisons_forest(acc_rows, band=(-floor["rms"], floor["rms"])), display=False)
glue("c3_decision", report.decision_table(result.comparisons + result.context).style.hide(axis="index"), display=False)

# %% [markdown]
# ## What was run
#
# Each run is one (model, task, seed): {glue:text}`c3_scope`. Each fine-tunes the model with LoRA on
# the training examples ({glue:text}`c3_noise_pct:.0f` % of their labels flipped), scores every training example against every
# query example per module, removes the 30 % lowest-scored under each setup and retrains from the same
# initialisation. The parameters of this page:

# %% tags=["remove-input"]
report.parameters_frame(
    profile=profile, models=P.models, tasks=P.tasks, seeds=P.seeds, n_train=P.n_train, n_query=P.n_query, n_eval=P.n_eval,
    epochs=P.epochs, sampling=P.sampling, noise_rate=P.noise_rate, retrained_setups=len(P.setups),
).style.hide(axis="index")

# %% [markdown]
# ## Group by group
#
# The differences per layer group (points are runs; diamonds the mean with a 95 % interval over
# runs), for the three groups on which every aggregation was retrained.

# %% tags=["remove-cell"]
diffs = verdicts.aggregation_differences(grid.retraining)
fig = plotting.aggregation_differences(diffs, group_labels=names)
glue("c3_groups", fig, display=False)

# %% [markdown]
# ```{glue:figure} c3_groups
# :name: fig-c3-groups
#
# Retrained accuracy of Rank, Vote and mean_c minus that of Mean (points), TracIn, per layer group
# on which every aggregation was retrained; dots are runs, diamonds the mean with a 95 % interval
# over runs. 0 is no difference.
# ```

# %% [markdown]
# ## What each aggregation removed
#
# A removal that takes most of one class out of the training set changes the retrained model for a
# reason that has nothing to do with noise. Per setup, over runs: the noisy share of the removed
# examples ({glue:text}`c3_noise_pct:.0f` % for a random removal), the largest share one class has among them, the smallest
# share of a class kept, and in how many runs a class was wiped out (fewer than 25 % of its training
# examples kept). Mean wiped out a class in {glue:text}`c3_wipeout_mean` of
# {glue:text}`c3_sets_mean` removed sets, Vote in {glue:text}`c3_wipeout_vote` of
# {glue:text}`c3_sets_vote`.

# %% tags=["remove-input"]
sub = grid.retraining[grid.retraining.group.isin(verdicts.AGGREGATION_GROUPS) & (grid.retraining.method == "tracin")]
report.removal_makeup(sub).style.format(
    {"noisy share of removed": "{:.2f}", "top class share of removed": "{:.2f}", "min class share kept": "{:.2f}"})

# %% [markdown]
# **The same criterion on other accuracies** (shown, not deciding): on balanced accuracy the verdict
# would be *{glue:text}`c3_verdict_bacc_selected`*, on the paper's best epoch
# *{glue:text}`c3_verdict_acc_best`*.

# %% tags=["remove-cell"]
report.glue_all(
    {f"verdict_{alt}": verdicts.claim3(grid.detection, grid.retraining, value=alt).verdict
     for alt in verdicts.ALTERNATIVES},
    prefix="c3_",
)

# %% [markdown]
# ## Secondary evidence: detection by aggregation (a proxy)
#
# NDR@30 (fraction of the mislabelled examples among the 30 % lowest-scored) and AUC-NDR per method
# and aggregation, averaged over layer groups and runs. Proxies: they are shown, they do not decide.

# %% tags=["remove-input"]
det = grid.detection[~grid.detection.method.isin(["tracin_we", "tracin_we_top10"])]
order = ["mean", "mean_c", "rank", "vote"]
tab = det.pivot_table(index="method", columns="aggregation", values=["ndr@30", "auc_ndr"], aggfunc="mean")
tab = tab.reindex(columns=pd.MultiIndex.from_product([["ndr@30", "auc_ndr"], order]))
tab.rename(index=plotting.label).style.format("{:.3f}").background_gradient(cmap="viridis", axis=1)

# %% [markdown]
# ## How sensitive is Vote to k?
#
# NDR@30 of Vote_k for k from 10 % to 100 % of the training set, per layer (TracIn; mean over runs).
# k = 100 % of n gives the same ordering as Rank. The best k here is {glue:text}`c3_best_k_frac:.0%`
# of n (NDR@30 {glue:text}`c3_best_k_ndr30:.3f`, against {glue:text}`c3_k100_ndr30:.3f` at k = n; the
# paper: best around 10–50 %).

# %% tags=["remove-cell"]
fracs = [round(0.1 * i, 1) for i in range(1, 11)]
rows = ["we", *[f"layer{i}" for i in range(n_layers)], "cl"]
vote = pd.concat([vote_k_table(r, "tracin", fracs, rows) for r in grid.runs.values()], ignore_index=True)
fig = plotting.vote_k_heatmap(vote, {"we": "WE", "cl": "CL", **{f"layer{i}": f"layer {i}" for i in range(n_layers)}})
by_k = vote.groupby("k_frac")["ndr@30"].mean()
report.glue_all({"best_k_frac": float(by_k.idxmax()), "best_k_ndr30": float(by_k.max()),
                 "k100_ndr30": float(by_k.loc[1.0])}, prefix="c3_")
glue("c3_vote_k", fig, display=False)

# %% [markdown]
# ```{glue:figure} c3_vote_k
# :name: fig-c3-vote-k
#
# NDR@30 of Vote_k for k from 10 % to 100 % of the training examples (columns), per layer (rows),
# TracIn, mean over runs; a random ranking gives 0.30, and k = 100 % orders like Rank.
# ```

