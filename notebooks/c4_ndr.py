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
# **Claim, as one falsifiable sentence.** Across layer groups, tasks and seeds, the noise
# detection rate NDR@30 of a setup's scores is positively rank-correlated with the accuracy after
# removing its 30 % most harmful examples and retraining, more strongly than the group's
# cancellation ratio is — so NDR can choose a setup without retraining.
#
# {cite}`vitel2025first` report ρ(NDR@30, accuracy) ≈ 0.4–0.7 with Mean and ≈ 0.8–0.9 with Vote,
# against ρ(cancellation, accuracy) ≈ −0.3 … 0.2 (as reported).

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
import pandas as pd

from layerinf import metrics, plotting, report
from layerinf.experiments import run_grid
from layerinf.scores import group_label

# %%
grid = run_grid(
    profile, models, tasks, seeds,
    setups=retrain_setups,
    n_train=n_train, n_query=n_query, n_eval=n_eval, noise_rate=noise_rate, methods=tuple(methods),
)
first = next(iter(grid.runs.values()))
n_layers = first.scores("tracin").n_layers
names = {g: group_label(g, n_layers) for g in ["we", "block1", "block2", "block3", "block4", "cl", "all"]}

# %% [markdown]
# ## What NDR measures
#
# Sort the training examples by score, most harmful first, and count how many of the mislabelled
# ones have been found after inspecting t of them: NDR(t). Below, the curves of one run
# ({glue:text}`c4_run_label`) for TracIn on three layer groups, with Mean and Vote; the dotted line is
# a random order, the dashed one the ideal.

# %%
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

# %% [markdown]
# Where the mislabelled examples fall: the fraction of noisy examples in each score decile (decile 1
# holds the lowest scores). A useful score piles the noise into the first deciles.

# %%
fig = plotting.noise_histograms(hist, noisy)

# %% [markdown]
# ## Does NDR@30 predict the retrained accuracy?
#
# Each point is one retrained setup (layer group × task × seed) for TracIn, coloured by
# aggregation; ρ in the legend is the Spearman correlation within each aggregation.

# %%
joined = report.joined(grid.detection, grid.retraining, grid.cancellation)
fig = plotting.scatter_with_rho(joined[joined.method == "tracin"], "ndr@30", report.ACC, "aggregation",
                                "NDR@30 of the setup's scores", "accuracy after removal + retraining")

# %% [markdown]
# **Spearman table.** One row per (aggregation, method), pooled over (layer group, task, seed):
# ρ between retrained accuracy and the group's cancellation ratio, NDR@30 and AUC-NDR, with p-values;
# `ns` marks p > 0.05.

# %%
table = report.spearman_predictiveness(grid.detection, grid.retraining, grid.cancellation)
show = table.set_index(["aggregation", "method"])[
    [c for x in ("cancellation", "ndr@30", "auc_ndr") for c in (f"{x}_rho", f"{x}_p", f"{x}_ns")]]
show.style.format({c: "{:.3f}" for c in show.columns if not c.endswith("_ns")})

# %%
summary = report.claim4(grid.detection, grid.retraining, grid.cancellation)
report.glue_all(summary, prefix="c4_")
pd.Series(summary).to_frame("value")

# %% [markdown]
# ## Verdict
#
# - TracIn: ρ(NDR@30, accuracy) = {glue:text}`c4_rho_ndr_mean_tracin:.2f` with Mean
#   (p = {glue:text}`c4_p_ndr_mean_tracin:.3f`), {glue:text}`c4_rho_ndr_rank_tracin:.2f` with Rank
#   (p = {glue:text}`c4_p_ndr_rank_tracin:.3f`) and {glue:text}`c4_rho_ndr_vote_tracin:.2f` with Vote
#   (p = {glue:text}`c4_p_ndr_vote_tracin:.3f`); ρ(cancellation, accuracy) =
#   {glue:text}`c4_rho_cancel_mean_tracin:.2f` (Mean).
# - NDR@30 is the better predictor in {glue:text}`c4_n_better` of {glue:text}`c4_n_rows` rows, and
#   significantly so in {glue:text}`c4_n_significant`.
#
# **On our models and data the claim {glue:text}`c4_verdict`** (criteria in
# `layerinf.report.claim4`). Each row pools only (layer group × task × seed) points, so p-values are
# coarse at CPU scale; the `paper` profile pools 8 tasks × 10 seeds.
