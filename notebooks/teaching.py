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
# # Teaching: influence on a model you can retrain exactly
#
# Every method in this book (TracIn, cosine, DataInf) tries to answer one question: *if this
# training example had not been there, would the model do better or worse on the query
# examples?* On a fine-tuned transformer nobody can afford the true answer: it would take one
# retraining per training example. This chapter uses a model small enough that we *can*: an
# L2-regularised logistic regression on Rotten Tomatoes review snippets {cite:p}`pang2005seeing`.
# Its training objective is strictly convex, so retraining without one example has a unique
# answer that Newton's method finds to machine precision. This exact leave-one-out (LOO)
# influence is the yardstick. We hold TracIn {cite:p}`pruthi2020estimating`, cosine, DataInf
# {cite:p}`kwon2024datainf` and the classical influence function {cite:p}`koh2017understanding`
# against it.
#
# All scores follow the book's sign convention: **larger = more beneficial; harmful examples
# have the lowest scores; removal drops the lowest.** The computations live in
# `layerinf.teaching`; this page only calls them and describes what comes out.

# %% tags=["parameters"]
profile = "default"
task = "rt"
seed = 0
n_train = 3000
n_query = 300
n_eval = 1000
noise_rate = 0.2
n_features = 64
l2 = 0.01
datainf_lambda = 0.1
n_sweep = 200
contrast_task = "spam"
contrast_n_train = 1000

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from layerinf import metrics, plotting, report
from layerinf import teaching as T
from layerinf.config import RunConfig, check_task

# Validate the shared parameters before any work (the package checks the others).
RunConfig(task=task, seed=seed, n_train=n_train, n_query=n_query, n_eval=n_eval,
          noise_rate=noise_rate, datainf_lambda=datainf_lambda)
check_task(contrast_task)
# The methods' names come from their registry (the same labels as on every other page).
LABELS = {"loo": "exact LOO", "influence_function": "influence function",
          **{m: plotting.label(m) for m in ("tracin", "cosine", "datainf")}}


def gl(key, value):
    """Glue a number for the prose (nothing displayed), as every page does."""
    report.glue_all({key: value})


# %% [markdown]
# ## 1. The model and exact leave-one-out
#
# Each snippet is turned into $d$ numbers by a small, transparent featuriser: TF-IDF over the
# words that occur in at least two training snippets, projected onto the top $d-1$ singular
# directions of the training TF-IDF matrix, standardised, plus a constant 1 for the intercept. The
# featuriser is fitted once and then frozen, like a pre-trained encoder whose head is fine-tuned.
# A fraction of the training labels is flipped (these are the *noisy* examples). The model
# minimises
#
# $$
# L(w) = \frac1n \sum_{i=1}^n \ell(z_i; w) + \frac{\lambda_2}{2}\lVert w\rVert^2,
# \qquad \ell(z; w) = \log\bigl(1+e^{x^\top w}\bigr) - y\,x^\top w ,
# $$
#
# so the gradient of one example is $g_i = (p_i - y_i)\,x_i$ with $p_i = \sigma(x_i^\top w)$, and
# the Hessian is $H = \frac1n\sum_i p_i(1-p_i)\,x_i x_i^\top + \lambda_2 I$.

# %%
prob = T.text_problem(task, n_train, n_query, n_eval, seed, noise_rate, n_features)
w = T.fit_logreg(prob.X, prob.y, l2)
gl("n_train", prob.X.shape[0])
gl("n_query", prob.Xq.shape[0])
gl("n_noisy", prob.noisy_mask.sum())
gl("d", prob.X.shape[1])
gl("vocab", len(prob.featuriser.vocabulary))
gl("grad_norm", np.linalg.norm(T.gradient(prob.X, prob.y, w, l2)))
gl("acc_eval", T.accuracy(prob.Xe, prob.ye, w))
gl("acc_query", T.accuracy(prob.Xq, prob.yq, w))
gl("hessian_cond", np.linalg.cond(T.hessian(prob.X, w, l2)))
print(f"{len(prob.y)} training examples ({int(prob.noisy_mask.sum())} noisy), "
      f"d = {prob.X.shape[1]}, evaluation accuracy {T.accuracy(prob.Xe, prob.ye, w):.3f}")

# %% [markdown]
# There are {glue:text}`n_train` training examples, of which {glue:text}`n_noisy` carry a flipped
# label, {glue:text}`n_query` query examples and $d$ = {glue:text}`d` features built from a
# vocabulary of {glue:text}`vocab` words. Newton's method stops at a gradient norm of
# {glue:text}`grad_norm:.1e`. The model is weak: its accuracy on the held-out evaluation examples
# is {glue:text}`acc_eval:.3f`, and {glue:text}`acc_query:.3f` on the query examples. A bag of words
# squeezed into {glue:text}`d` directions cannot read sarcasm, and this will matter in section 3.
#
# **Leave-one-out, exactly.** Removing example $i$ means dropping its term from the sum while the
# other examples keep their weight $1/n$. (This is the same as retraining on the $n-1$ others with
# the mean loss and $\lambda_2$ scaled by $n/(n-1)$.) The LOO influence of training example $i$ on
# query example $j$ is
#
# $$
# \mathrm{LOO}(i,j) = \ell(\bar z_j; w_{-i}) - \ell(\bar z_j; w) ,
# $$
#
# the change in the query loss, in nats. It is positive when removing $i$ *hurts* the query, i.e.
# when $i$ is beneficial, which matches the book's convention. Averaged over the queries it is the
# change in mean query loss. Each refit starts from $w$ and takes a few Newton steps, with the
# curvature at $w$ held fixed, until the gradient norm is below $10^{-12}$.
#
# **The influence function.** A Newton step from $w$ on the objective without $i$ moves the
# weights by $\Delta w \approx \frac1n H^{-1} g_i$, because the new objective's gradient at $w$ is
# $-g_i/n$. So, to first order,
#
# $$
# \mathrm{IF}(i,j) = \frac1n\, v_j^\top H^{-1} g_i ,\qquad v_j = \nabla_w \ell(\bar z_j; w),
# $$
#
# in the same units as LOO. The other methods drop pieces of this formula. **TracIn** replaces
# $H^{-1}$ by the identity: $\langle v_j, g_i\rangle$. **Cosine** also divides by both gradient
# norms. **DataInf** replaces $H$ by the damped empirical Fisher $\frac1n\sum_k g_k g_k^\top +
# \lambda I$, and then inverts each rank-one term separately rather than the sum:
#
# $$
# \mathrm{DataInf}(i,j) = \frac1\lambda\langle v_j, g_i\rangle - \frac{1}{n\lambda}\sum_k
# \frac{\langle v_j, g_k\rangle\langle g_k, g_i\rangle}{\lambda + \lVert g_k\rVert^2},
# \qquad \lambda = 0.1\cdot\operatorname{mean}_{i,p} g_{ip}^2 .
# $$

# %%
start = time.perf_counter()
scores = T.score_all(prob.X, prob.y, prob.Xq, prob.yq, l2, w=w,
                     lam_scale=datainf_lambda)  # name -> [n, m]
gl("loo_seconds", time.perf_counter() - start)
per = {name: T.per_example(s) for name, s in scores.items()}  # [n]: mean over queries

# Exactness check: retrain without the most harmful example from scratch (w = 0), as
# the equivalent problem on the n − 1 others with l2 · n/(n − 1), and compare.
worst = int(np.argmin(per["loo"]))
keep = np.arange(len(prob.y)) != worst
w_scratch = T.fit_logreg(prob.X[keep], prob.y[keep], l2 * len(keep) / (len(keep) - 1))
scratch = T.losses(prob.Xq, prob.yq, w_scratch) - T.losses(prob.Xq, prob.yq, w)
gl("loo_check", np.abs(scratch - scores["loo"][worst]).max())
gl("loo_worst", per["loo"][worst])
gl("loo_scale", np.abs(scores["loo"]).mean())

# %% [markdown]
# All {glue:text}`n_train` refits took {glue:text}`loo_seconds:.1f` s. As a check, the most
# harmful example was removed and the model retrained from zero, not warm-started. Its LOO row
# differs from the warm-started one by at most {glue:text}`loo_check:.1e` nats, against a typical
# |LOO| entry of {glue:text}`loo_scale:.1e`. Removing that example changes the mean query loss by
# {glue:text}`loo_worst:.2e` nats. The value is negative: the model does better without it.
#
# ## 2. How close does each method get to LOO?
#
# Each point below is one training example. The x-axis shows its exact LOO influence averaged over
# the queries (change in mean query loss, in nats). The y-axis shows the same average of a method's
# scores. Only the influence function shares LOO's units. The others are scores whose ranking is
# what matters, so the panel titles give the Spearman rank correlation ρ with LOO.

# %%
methods = list(T.TEACHING_METHODS)
rho = {m: T.spearman(per[m], per["loo"]) for m in methods}
for m in methods:
    gl(f"rho_{m}", rho[m])
gl("rho_pairs_influence_function",
   T.spearman(scores["influence_function"], scores["loo"]))
gl("relerr_influence_function",
   T.relative_error(scores["influence_function"], scores["loo"]))
ylabels = {"influence_function": "first-order estimate:\nchange in mean query loss (nats)",
           "tracin": "TracIn ⟨v, g⟩, mean over queries",
           "cosine": "cosine, mean over queries", "datainf": "DataInf, mean over queries"}
groups = ((~prob.noisy_mask, "tab:blue", "clean"), (prob.noisy_mask, "tab:red", "noisy"))
fig, axes = plt.subplots(2, 2, figsize=(10, 8), layout="constrained")
for ax, m in zip(axes.flat, methods):
    for mask, colour, label in groups:
        ax.scatter(per["loo"][mask], per[m][mask], s=5, alpha=0.5, color=colour, label=label)
    ax.set(title=f"{LABELS[m]}: Spearman ρ = {rho[m]:.3f}", ylabel=ylabels[m],
           xlabel="exact LOO: change in mean query loss (nats)")
    ax.ticklabel_format(style="sci", scilimits=(-2, 3))
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
axes[0, 0].legend(markerscale=3)
plt.show()

# %% [markdown]
# The influence function tracks exact LOO almost perfectly: ρ = {glue:text}`rho_influence_function:.3f`
# over the per-example means, and ρ = {glue:text}`rho_pairs_influence_function:.3f` over all
# (training, query) pairs. Its relative error ‖IF − LOO‖/‖LOO‖ is
# {glue:text}`relerr_influence_function:.3f`. A convex model with one example removed out of
# {glue:text}`n_train` is the textbook case where a first-order Taylor expansion holds.
# TracIn (ρ = {glue:text}`rho_tracin:.3f`) and DataInf (ρ = {glue:text}`rho_datainf:.3f`) come close
# too. They differ from the influence function only in the matrix between $v_j$ and $g_i$, and
# here the Hessian is tame: the features are standardised, nearly uncorrelated SVD directions, and
# $H$ has condition number {glue:text}`hessian_cond:.1f`. Cosine (ρ = {glue:text}`rho_cosine:.3f`)
# agrees least, because it throws away how large each gradient is (exercise 1). In a transformer,
# $H$ is far from the identity and no exact LOO exists, which is why the paper judges methods by
# what they *do* (detect noise, improve retraining) rather than by agreement with LOO.
#
# ## 3. Which examples look harmful?
#
# Flipped labels should look harmful: training on "fresh" for a rotten review pushes the model the
# wrong way on similar queries. The upper panel ranks every training example from most harmful
# (0) to most beneficial (1) under each method and compares noisy with clean examples. The lower
# panel shows NDR@30, the share of all noisy examples found among the 30 % lowest-scored. Chance is 0.30.

# %%
ranked = ["loo", *methods]
ndr = {m: metrics.ndr_at(per[m], prob.noisy_mask, 0.3) for m in ranked}
auc = {m: metrics.roc_auc(per[m], prob.noisy_mask) for m in ranked}
for m in ranked:
    gl(f"ndr30_{m}", ndr[m])
    gl(f"auc_{m}", auc[m])
pct = {m: T.percentile_ranks(per[m]) for m in ranked}
gl("median_rank_noisy_loo", np.median(pct["loo"][prob.noisy_mask]))
gl("median_rank_clean_loo", np.median(pct["loo"][~prob.noisy_mask]))

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), layout="constrained")
pos = np.arange(len(ranked))
for offset, (mask, colour, label) in zip((-0.18, 0.18), groups):
    box = ax1.boxplot([pct[m][mask] for m in ranked], positions=pos + offset, widths=0.3,
                      patch_artist=True, showfliers=False)
    for patch in box["boxes"]:
        patch.set(facecolor=colour, alpha=0.5)
    ax1.plot([], [], "s", color=colour, alpha=0.5, label=label)
ax1.set(xticks=pos, xticklabels=[LABELS[m] for m in ranked], xlim=(-0.6, len(ranked) + 0.4),
        ylabel="rank among training examples\n(0 = most harmful)")
ax1.legend(loc="lower right")
ax2.bar([LABELS[m] for m in ranked], [ndr[m] for m in ranked], color="tab:grey")
ax2.axhline(0.3, color="black", ls="--", lw=1, label="random ranking")
ax2.set(ylabel="NDR@30\n(share of noisy examples found)", ylim=(0, 1))
ax2.legend(loc="upper right")
plt.show()
pd.DataFrame({"NDR@30": ndr, "ROC-AUC": auc}).rename(index=LABELS).round(3)

# %% [markdown]
# Under exact LOO the median rank of a noisy example is {glue:text}`median_rank_noisy_loo:.2f`,
# against {glue:text}`median_rank_clean_loo:.2f` for a clean one. Even the ground truth is a
# mediocre detector here: the 30 % of examples whose removal would
# help the queries most contain {glue:text}`ndr30_loo:.2f` of the noisy examples (ROC-AUC
# {glue:text}`auc_loo:.2f`). The approximations land close to it. NDR@30 is
# {glue:text}`ndr30_influence_function:.2f` for the influence function, {glue:text}`ndr30_tracin:.2f`
# for TracIn, {glue:text}`ndr30_datainf:.2f` for DataInf and {glue:text}`ndr30_cosine:.2f` for cosine.
#
# The lesson carries over to the paper. LOO measures an effect on the *query loss of this model*,
# not "is this label wrong". When the model barely separates the classes, a flipped label on a
# snippet it cannot fit anyway hardly moves $w$. Meanwhile, some correctly labelled but atypical
# snippets do hurt the queries. A perfect LOO estimator cannot detect noise better than LOO itself.
# The paper's ground truth is therefore retraining accuracy, and NDR is offered only as a cheap
# proxy for it (claim 4). Exercise 5 repeats this section on an easier task.
#
# ## 4. The cancellation intuition
#
# {cite:t}`yeh2022first` observed that last-layer gradients of different training
# examples cancel each other, with large influences of opposite sign. Here the gradient is
# $g_i = (p_i - y_i)\,x_i$. The scalar $p_i - y_i$ is the *output-side* factor: it is negative for
# every example labelled 1 and positive for every example labelled 0. A noisy example of true class
# $c$ carries the label $1-c$, so its gradient points *against* the clean examples of class $c$,
# even though its features look like theirs. The classification head of a transformer has the same
# structure, $(p - y)\otimes h$ for the last hidden state $h$. The cell below measures, for every
# training example, the cosine between its gradient and the mean gradient of the (other) clean
# examples of its true class.

# %%
al = T.gradient_alignment(prob.X, prob.y, w, prob.clean_labels, prob.noisy_mask)
al_feat = T.gradient_alignment(prob.X, prob.y, w, prob.clean_labels, prob.noisy_mask,
                               exclude_intercept=True)
for suffix, a in (("", al), ("_feat", al_feat)):
    gl(f"cos_noisy{suffix}", a.mean_cos(noisy=True))
    gl(f"cos_clean{suffix}", a.mean_cos(noisy=False))
    gl(f"frac_noisy_opposed{suffix}", np.mean(a.cos_to_clean[prob.noisy_mask] < 0))
    gl(f"frac_clean_aligned{suffix}", np.mean(a.cos_to_clean[~prob.noisy_mask] > 0))
g = T.grads(prob.X, prob.y, w)
in_class = prob.clean_labels == 1
gl("cancel_clean", metrics.cancellation(g[in_class & ~prob.noisy_mask])["ratio"])
gl("cancel_all", metrics.cancellation(g[in_class])["ratio"])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained", sharey=True)
bins = np.linspace(-1, 1, 41)
panels = ((al, "all weights"), (al_feat, "word-feature weights only"))
for ax, (a, what) in zip(axes, panels):
    for mask, colour, label in groups:
        ax.hist(a.cos_to_clean[mask], bins=bins, alpha=0.6, density=True, color=colour,
                label=label)
    ax.set(title=what, xlabel="cosine with the mean clean gradient of the true class")
axes[0].set_ylabel("density")
axes[0].legend()
plt.show()

# %% [markdown]
# Over all weights, the mean cosine is {glue:text}`cos_clean:.2f` for clean examples and
# {glue:text}`cos_noisy:.2f` for noisy ones. {glue:text}`frac_noisy_opposed:.0%` of the noisy examples
# point away from their own class, while {glue:text}`frac_clean_aligned:.0%` of the clean ones point
# along it. The intercept does much of this work. Its gradient entry *is* the residual $p_i - y_i$,
# the purest output-side quantity, and its sign is set by the label alone. Over the word-feature
# weights only, the opposition is weaker: the mean cosine is {glue:text}`cos_clean_feat:.2f` (clean)
# against {glue:text}`cos_noisy_feat:.2f` (noisy), and {glue:text}`frac_noisy_opposed_feat:.0%` of the
# noisy examples point away. Snippets of one class are not much alike in this feature space. The
# label's sign carries the opposition, and the input features only dilute it. The
# cancellation ratio $C = \sum_p\sum_i |g_{ip}| \,/\, \sum_p |\sum_i g_{ip}|$ of the "fresh"
# examples' gradients is {glue:text}`cancel_clean:.2f` for the clean ones alone and
# {glue:text}`cancel_all:.2f` once the noisy ones are added.
#
# Cancellation and noise detection therefore come from the same source. The opposition that
# makes gradients cancel is the one that gives a noisy example a negative score against a query of
# its true class. This is the core of the paper's claim 1: a block with strong cancellation can
# still separate clean from noisy examples, and may even be the part that separates them. High
# cancellation alone is not a reason to drop a layer.
#
# ## 5. Exercises
#
# Try each exercise before opening its solution. The code cells that compute the solutions are
# folded as well.
#
# ### Exercise 1: why does cosine lose the scale?
#
# Cosine ranks the training examples worse against LOO than TracIn does (section 2). Write down
# what LOO and TracIn depend on that cosine does not. Which training examples have large gradients
# in logistic regression?

# %% tags=["hide-cell"]
gnorm = np.linalg.norm(g, axis=1)
resid = np.abs(al.residual)
gl("resid_noisy", resid[prob.noisy_mask].mean())
gl("resid_clean", resid[~prob.noisy_mask].mean())
gl("rho_absloo_gnorm", T.spearman(np.abs(per["loo"]), gnorm))
gl("auc_gnorm", metrics.roc_auc(-gnorm, prob.noisy_mask))

# %% [markdown]
# ```{admonition} Solution
# :class: dropdown
# To first order, $\mathrm{LOO}(i,j) \approx \frac1n v_j^\top H^{-1} x_i\,(p_i - y_i)$. The size of
# an example's effect scales with its residual $|p_i - y_i|$, i.e. with how badly the model fits it,
# and with the length of its feature vector. The Spearman correlation between $|\mathrm{LOO}|$
# (per-example mean) and $\lVert g_i\rVert$ is {glue:text}`rho_absloo_gnorm:.2f`. TracIn keeps this
# factor. Cosine divides it out, so a well-fitted example whose gradient happens to point the right
# way scores as high as a badly fitted one. Hence cosine's lower ρ with LOO
# ({glue:text}`rho_cosine:.3f` vs {glue:text}`rho_tracin:.3f`).
#
# How much does the scale say about noise on its own? The mean residual is
# {glue:text}`resid_noisy:.2f` for noisy examples and {glue:text}`resid_clean:.2f` for clean ones,
# and "large gradient norm" alone detects noisy examples with ROC-AUC {glue:text}`auc_gnorm:.2f`. Yet what cosine keeps, the
# *direction*, is exactly what a flipped label reverses (section 4). That is why its NDR@30
# ({glue:text}`ndr30_cosine:.2f`) can compete with TracIn's ({glue:text}`ndr30_tracin:.2f`) even
# though it agrees less with LOO. Agreement with LOO and detection of noise are different goals.
# ```
#
# ### Exercise 2: change λ₂ and watch the influence function
#
# The first-order estimate assumes that removing one example moves $w$ only a little. Predict how
# its agreement with LOO changes when the regularisation $\lambda_2$ grows or shrinks. Then check:
# the cell refits at four strengths and compares with exact LOO on a random subset of training
# examples.

# %% tags=["hide-cell"]
rng = np.random.default_rng(seed)
sweep_idx = rng.choice(len(prob.y), size=min(n_sweep, len(prob.y)), replace=False)
sweep = T.l2_sweep(prob.X, prob.y, prob.Xq, prob.yq, prob.Xe, prob.ye,
                   [l2 / 10, l2, l2 * 10, l2 * 100], sweep_idx)
for k, point in enumerate(sweep):
    gl(f"sweep_l2_{k}", point.l2)
    gl(f"sweep_relerr_{k}", point.rel_error)
    gl(f"sweep_rho_{k}", point.spearman)
    gl(f"sweep_acc_{k}", point.eval_accuracy)
gl("n_sweep", len(sweep_idx))
pd.DataFrame([vars(p) for p in sweep]).round(4)

# %% [markdown]
# ```{admonition} Solution
# :class: dropdown
# More regularisation makes the objective more curved. Removing one example then moves $w$ less,
# and the quadratic model behind the influence function holds better. On {glue:text}`n_sweep` training
# examples, the relative error ‖IF − LOO‖/‖LOO‖ is {glue:text}`sweep_relerr_0:.4f` at
# $\lambda_2$ = {glue:text}`sweep_l2_0:g`, {glue:text}`sweep_relerr_1:.4f` at {glue:text}`sweep_l2_1:g`,
# {glue:text}`sweep_relerr_2:.4f` at {glue:text}`sweep_l2_2:g` and {glue:text}`sweep_relerr_3:.4f` at
# {glue:text}`sweep_l2_3:g`. The rank agreement stays high throughout (Spearman
# {glue:text}`sweep_rho_0:.4f` … {glue:text}`sweep_rho_3:.4f`). The leading error terms are
# roughly the same for every example, so the ranking is more robust than the values. The evaluation
# accuracy barely moves ({glue:text}`sweep_acc_0:.3f` … {glue:text}`sweep_acc_3:.3f`). Without
# regularisation, or in a non-convex network, $H$ can be near-singular or indefinite, and the
# influence function can be far off. This is why practical methods damp it.
# ```
#
# ### Exercise 3: what does DataInf's λ do?
#
# DataInf's damping is set to a multiple of the mean squared gradient entry. Predict what happens
# when the multiple goes to infinity, and when it goes to zero.

# %% tags=["hide-cell"]
gq = T.grads(prob.Xq, prob.yq, w)
unit = g / np.linalg.norm(g, axis=1, keepdims=True)
proj_eigs = np.linalg.eigvalsh(unit.T @ unit / len(unit))  # spectrum of the mean projector P̄
fisher_eigs = np.linalg.eigvalsh(g.T @ g / len(g))  # spectrum of the empirical Fisher F
lam_scales = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e3]
lam_rows = []
for s in lam_scales:
    lam_s = T.datainf_lambda(g, s)
    di = T.per_example(T.datainf(g, gq, lam=lam_s))
    fi = T.per_example(T.fisher_influence(g, gq, lam_s))
    lam_rows.append((s, T.spearman(di, per["loo"]), T.spearman(di, per["tracin"]),
                     T.spearman(fi, per["loo"])))
for k, (s, r_loo, r_tracin, r_fisher) in enumerate(lam_rows):
    gl(f"lam_scale_{k}", s)
    gl(f"lam_rho_loo_{k}", r_loo)
    gl(f"lam_rho_tracin_{k}", r_tracin)
    gl(f"lam_rho_fisher_{k}", r_fisher)
gl("lam_rho_tracin_min", min(r[2] for r in lam_rows))
gl("lam_rho_tracin_max", max(r[2] for r in lam_rows))
gl("lam_rho_loo_min", min(r[1] for r in lam_rows))
gl("lam_rho_loo_max", max(r[1] for r in lam_rows))
gl("proj_eig_min", proj_eigs.min())
gl("proj_eig_max", proj_eigs.max())
gl("fisher_eig_min", fisher_eigs.min())
gl("fisher_eig_max", fisher_eigs.max())
gl("lam_default", T.datainf_lambda(g, datainf_lambda))
gl("l2", l2)
pd.DataFrame(lam_rows, columns=["λ multiple", "ρ(DataInf, LOO)", "ρ(DataInf, TracIn)",
                               "ρ(damped Fisher, LOO)"]).round(4)

# %% [markdown]
# ```{admonition} Solution
# :class: dropdown
# As $\lambda\to\infty$ the correction term vanishes faster than the first one, and DataInf tends
# to TracIn/λ.
#
# The surprise is at the other end. Each rank-one inverse is
# $(g_k g_k^\top + \lambda I)^{-1} = \frac1\lambda\bigl(I - \frac{g_k g_k^\top}{\lambda + \lVert g_k\rVert^2}\bigr)$,
# which tends to $\frac1\lambda(I - P_k)$ as λ → 0, where $P_k$ projects onto $g_k$. DataInf's matrix is
# therefore about $\frac1\lambda(I - \bar P)$, with $\bar P$ the mean of the projectors. $\bar P$ has
# trace 1, so in $d$ = {glue:text}`d` dimensions its eigenvalues are small: here between
# {glue:text}`proj_eig_min:.3f` and {glue:text}`proj_eig_max:.3f`. DataInf's matrix is then nearly a
# multiple of the identity *at every λ*. Its Spearman correlation with TracIn is at least
# {glue:text}`lam_rho_tracin_min:.5f` for every multiple from {glue:text}`lam_scale_0:g` to
# {glue:text}`lam_scale_5:g`, and its correlation with LOO stays between
# {glue:text}`lam_rho_loo_min:.4f` and {glue:text}`lam_rho_loo_max:.4f`. Here λ sets DataInf's *scale*
# and hardly its ranking.
#
# What DataInf stands in for is the damped Fisher inverse $(F + \lambda I)^{-1}$. Its eigenvalues
# $1/(f+\lambda)$ follow the spectrum of $F$ (here $f$ between {glue:text}`fisher_eig_min:.3f` and
# {glue:text}`fisher_eig_max:.3f`), which is a real reweighting of directions, unlike DataInf's
# nearly flat matrix. Computed exactly (`teaching.fisher_influence`), it reaches
# ρ = {glue:text}`lam_rho_fisher_2:.4f` with LOO at the default multiple {glue:text}`lam_scale_2:g`.
# DataInf reaches {glue:text}`rho_datainf:.4f` and the influence function
# {glue:text}`rho_influence_function:.4f`. With few, well-spread gradient directions, the curvature
# changes the ranking only a little anyway. What makes DataInf insensitive to λ is the swap of
# "inverse of the average" for "average of the inverses". The default λ =
# {glue:text}`lam_default:.2e` plays the role of our $\lambda_2$ = {glue:text}`l2:g`. The empirical
# Fisher stands in for the Hessian because $\mathbb E[(p-y)^2] = p(1-p)$ when $y$ follows the model.
# ```
#
# ### Exercise 4: flip a clean example yourself
#
# Take the clean training example with the highest LOO score, the most beneficial one, and flip
# its label. Before looking: what sign will its TracIn and LOO scores have after refitting?

# %% tags=["hide-cell"]
clean_idx = np.flatnonzero(~prob.noisy_mask)
best = int(clean_idx[np.argmax(per["loo"][clean_idx])])
y_flipped = T.flip_labels(prob.y, [best])
w_flipped = T.fit_logreg(prob.X, y_flipped, l2, w0=w)
loo_after = T.per_example(T.loo_influence(prob.X, y_flipped, prob.Xq, prob.yq, l2,
                                          w=w_flipped, indices=[best]))[0]
g_best = T.grads(prob.X[[best]], y_flipped[[best]], w_flipped)
tracin_after = T.per_example(T.tracin(g_best, T.grads(prob.Xq, prob.yq, w_flipped)))[0]
gl("flip_loo_before", per["loo"][best])
gl("flip_loo_after", loo_after)
gl("flip_tracin_before", per["tracin"][best])
gl("flip_tracin_after", tracin_after)
gl("flip_rank_before", np.mean(per["loo"] < per["loo"][best]))
gl("flip_rank_after", np.mean(np.delete(per["loo"], best) < loo_after))
print(f"example {best}, label {int(prob.y[best])} -> {int(y_flipped[best])}: "
      f"{prob.train_texts[best]!r}")
print(f"LOO {per['loo'][best]:.2e} -> {loo_after:.2e}; "
      f"TracIn {per['tracin'][best]:.2e} -> {tracin_after:.2e}")

# %% [markdown]
# ```{admonition} Solution
# :class: dropdown
# Flipping $y_i$ flips the sign of the residual $p_i - y_i$ and hence of the whole gradient $g_i$.
# If $w$ stayed fixed, TracIn would change sign exactly. After refitting, $w$ moves a little. The
# example's mean TracIn score goes from {glue:text}`flip_tracin_before:.2e` to
# {glue:text}`flip_tracin_after:.2e`, and its exact LOO influence goes from
# {glue:text}`flip_loo_before:.2e` to {glue:text}`flip_loo_after:.2e` nats of mean query loss. Before
# the flip it ranked above {glue:text}`flip_rank_before:.2%` of the training examples; after the
# flip, above {glue:text}`flip_rank_after:.2%` of the others. An example that helped most, once
# mislabelled, lands among those that hurt. This is the best case for noise detection: a
# confidently fitted, typical example. Most noisy examples of section 3 are neither.
# ```
#
# ### Exercise 5: is it the estimator or the data?
#
# In section 3, even exact LOO found only a modest share of the noisy examples. Is that a
# limitation of influence, or of this model on this task? Repeat the analysis on a task where a
# bag of words separates the classes well: spam vs ham e-mails.

# %% tags=["hide-cell"]
contrast = T.text_problem(contrast_task, contrast_n_train, n_query, n_eval, seed,
                          noise_rate, n_features)
w_c = T.fit_logreg(contrast.X, contrast.y, l2)
per_c = {m: T.per_example(s) for m, s in T.score_all(
    contrast.X, contrast.y, contrast.Xq, contrast.yq, l2, w=w_c,
    lam_scale=datainf_lambda).items()}
ndr_c = {m: metrics.ndr_at(per_c[m], contrast.noisy_mask, 0.3) for m in ranked}
for m in ranked:
    gl(f"contrast_ndr30_{m}", ndr_c[m])
gl("contrast_acc", T.accuracy(contrast.Xe, contrast.ye, w_c))
gl("contrast_n_train", len(contrast.y))
print(f"{contrast_task}: evaluation accuracy {T.accuracy(contrast.Xe, contrast.ye, w_c):.3f}")
pd.DataFrame({task: ndr, contrast_task: ndr_c}).rename(index=LABELS).round(3)

# %% [markdown]
# ```{admonition} Solution
# :class: dropdown
# With the same featuriser, noise rate and $\lambda_2$ on {glue:text}`contrast_n_train` e-mails, the
# model reaches an evaluation accuracy of {glue:text}`contrast_acc:.3f`, against
# {glue:text}`acc_eval:.3f` on the reviews. Exact LOO now finds {glue:text}`contrast_ndr30_loo:.2f` of
# the noisy examples in its lowest 30 %, against {glue:text}`ndr30_loo:.2f` before. The approximations
# follow: {glue:text}`contrast_ndr30_influence_function:.2f` (influence function),
# {glue:text}`contrast_ndr30_tracin:.2f` (TracIn), {glue:text}`contrast_ndr30_datainf:.2f` (DataInf),
# {glue:text}`contrast_ndr30_cosine:.2f` (cosine). So the estimators were not the bottleneck: on
# the reviews, the model was. Noise detection needs a model that has learned the task well enough
# for a wrong label to stand out. This is one reason the paper's results vary so much across
# tasks and models, and why it judges layer groups by retraining accuracy, not by NDR alone.
# ```
