"""Influence on a model small enough to retrain exactly: L2-regularised logistic regression.

The teaching chapter of the book compares TracIn, cosine, DataInf and the influence function with
the ground truth they all try to approximate: the exact change of the query loss when one training
example is removed and the model is retrained (leave-one-out, LOO). That ground truth is only
affordable for a small, strictly convex model, so this module provides one:

    L(w) = (1/n) Σ_i ℓ(x_i, y_i; w) + (l2/2) ‖w‖²,    ℓ(x, y; w) = log(1 + e^{xᵀw}) − y·xᵀw,

with labels y ∈ {0, 1} and features X of shape [n, d] (the last column is a constant 1, i.e. the
intercept, regularised like every other weight). For l2 > 0 the objective is strictly convex, so the
optimum is unique and Newton's method finds it to machine precision: LOO retraining is exact up to
a solver tolerance of 1e-12 on the gradient norm.

**Sign convention** (the project's, see CONTRIBUTING.md): every score is oriented so that
**larger = more beneficial; harmful = lowest; removal drops the lowest**. For LOO this means

    LOO(i, j) = ℓ_j(w_{-i}) − ℓ_j(w)         ("change in query loss when i is removed"):

removing a beneficial example raises the query loss (positive score), removing a harmful one
lowers it (negative score).

**What "removing i" means.** By default the remaining examples keep their weight 1/n, i.e. the
term of example i is dropped from the sum and nothing else changes. That is the same as retraining
on the other n − 1 examples with the mean loss and l2 scaled by n/(n − 1). With
``renormalise=True`` the model is instead retrained on the n − 1 others with the unchanged l2 (the
"retrain on what is left" reading); both agree to first order up to a shift that is the same for
every training example (see `influence_function`).

NumPy/SciPy only; everything is float64. Shapes: n training examples, m query examples,
d features. The parts, each its own module: `features` (text -> features), `model` (the objective
and its Newton solver), `loo` (exact leave-one-out and the influence function), `similarity`
(TracIn, cosine and DataInf — the pipeline's own code — and the exact Fisher influence), `analysis`
(rank agreement, gradient alignment) and `problems` (synthetic and text problems). Everything is
re-exported here: ``from layerinf import teaching; teaching.fit_logreg(...)``.
"""

from __future__ import annotations

from layerinf.teaching.analysis import (
    Alignment,
    gradient_alignment,
    per_example,
    percentile_ranks,
    relative_error,
    spearman,
)
from layerinf.teaching.features import Featuriser, fit_featuriser, tokenize
from layerinf.teaching.loo import L2Point, influence_function, l2_sweep, loo_influence
from layerinf.teaching.model import (
    accuracy,
    fit_logreg,
    gradient,
    grads,
    hessian,
    losses,
    objective,
    residuals,
)
from layerinf.teaching.problems import TextProblem, flip_labels, synthetic_problem, text_problem
from layerinf.teaching.similarity import (
    TEACHING_METHODS,
    cosine,
    datainf,
    datainf_lambda,
    fisher_influence,
    score_all,
    tracin,
)

__all__ = [
    "TEACHING_METHODS",
    "Alignment",
    "Featuriser",
    "L2Point",
    "TextProblem",
    "accuracy",
    "cosine",
    "datainf",
    "datainf_lambda",
    "fisher_influence",
    "fit_featuriser",
    "fit_logreg",
    "flip_labels",
    "gradient",
    "gradient_alignment",
    "grads",
    "hessian",
    "influence_function",
    "l2_sweep",
    "loo_influence",
    "losses",
    "objective",
    "per_example",
    "percentile_ranks",
    "relative_error",
    "residuals",
    "score_all",
    "spearman",
    "synthetic_problem",
    "text_problem",
    "tokenize",
    "tracin",
]
