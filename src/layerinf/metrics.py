"""Noise-detection metrics of aggregated scores, and the gradient cancellation ratio.

Inputs: ``scores`` float [n] (one aggregated score per training example) and ``is_noisy`` bool [n]
(True where the label was flipped).
**Sign convention: larger score = more beneficial; harmful = lowest; removal drops the lowest.**
The inspection order is therefore ascending score (most harmful first), ties broken stably by
example index (lower index first).

- NDR(t) = (#noisy among the first t inspected) / (#noisy), t = 1..n.
- NDR@q = NDR(round(q·n)) for a fraction q ∈ (0, 1] (Python rounding, half to even).
- AUC-NDR = area under the piecewise-linear NDR curve through (0, 0), divided by its value for a
  perfect ranking: (Σ_{t=1..n} NDR(t) − 1/2) / (n − n_noisy/2). The −1/2 (= NDR(n)/2, the
  trapezoid correction) makes a perfect ranking score exactly 1; a random ranking scores
  0.5 / (1 − noise_rate/2) in expectation (≈ 0.556 at 20 % noise). With distinct scores,
  AUC-NDR = (n_noisy/2 + (n − n_noisy)·ROC-AUC) / (n − n_noisy/2).
- ROC-AUC of "−score detects noisy" (ties count 1/2).
- Cancellation ratio of a block of per-example gradients g [n, p]:
  C = Σ_p Σ_i |g_ip| / Σ_p |Σ_i g_ip|, and the per-parameter ratios c_p = Σ_i |g_ip| / |Σ_i g_ip|.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
from scipy.stats import rankdata

from layerinf.config import ConfigError

#: The NDR@q levels of the paper, as fractions.
NDR_LEVELS: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.60, 0.70, 0.80, 0.90)
#: Elements per chunk when `cancellation` walks a dense [n, p] array.
_CANCEL_CHUNK_ELEMENTS = 2**23


def _check_scores(scores: np.ndarray, is_noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (scores float64 [n], is_noisy bool [n])."""
    s = np.asarray(scores)
    y = np.asarray(is_noisy)
    if s.ndim != 1:
        raise ConfigError(f"scores must be a 1-d array [n]; got shape {s.shape}")
    if s.shape != y.shape:
        raise ConfigError(f"scores has shape {s.shape} but is_noisy has shape {y.shape}; they must match")
    if s.dtype == bool or not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise ConfigError(f"scores must be a real array; got dtype {s.dtype}")
    if s.size == 0:
        raise ConfigError("scores is empty; at least one training example is needed")
    s = s.astype(np.float64, copy=False)
    bad = int(s.size - np.count_nonzero(np.isfinite(s)))
    if bad:
        raise ConfigError(f"scores has {bad} non-finite entries (NaN or inf) out of {s.size}; all must be finite")
    if y.dtype != bool:
        if not np.issubdtype(y.dtype, np.integer) or not np.isin(y, (0, 1)).all():
            raise ConfigError(f"is_noisy must be a boolean array (or 0/1 integers); got dtype {y.dtype}")
        y = y.astype(bool)
    return s, y


def inspection_order(scores: np.ndarray) -> np.ndarray:
    """Indices [n] of the training examples, most harmful (lowest score) first, ties by index."""
    return np.argsort(np.asarray(scores), kind="stable")


def _curve(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    n_noisy = int(np.count_nonzero(y))
    if n_noisy == 0:
        raise ConfigError(f"is_noisy has no True entry among {y.size} examples; NDR needs at least one noisy example")
    return np.cumsum(y[inspection_order(s)], dtype=np.float64) / n_noisy


def ndr_curve(scores: np.ndarray, is_noisy: np.ndarray) -> np.ndarray:
    """NDR(t) for t = 1..n as float64 [n]: share of the noisy examples among the t lowest-scored.

    Non-decreasing, ends at 1. O(n log n). ConfigError if there is no noisy example.
    """
    return _curve(*_check_scores(scores, is_noisy))


def _check_level(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)):
        raise ConfigError(f"q={q!r} must be a fraction in (0, 1]")
    value = float(q)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise ConfigError(f"q={q!r} must be a fraction in (0, 1] (e.g. 0.3 for NDR@30)")
    return value


def _at(curve: np.ndarray, q: float) -> float:
    t = round(q * curve.size)
    return 0.0 if t == 0 else float(curve[t - 1])


def ndr_at(scores: np.ndarray, is_noisy: np.ndarray, q: float) -> float:
    """NDR@q = NDR(round(q·n)) for a fraction q ∈ (0, 1]; 0.0 when round(q·n) == 0."""
    q = _check_level(q)
    return _at(ndr_curve(scores, is_noisy), q)


def level_name(q: float) -> str:
    """Column name of an NDR level: 0.3 -> ``ndr@30``."""
    return f"ndr@{round(_check_level(q) * 100)}"


def ndr_table(scores: np.ndarray, is_noisy: np.ndarray, levels: Iterable[float] = NDR_LEVELS) -> dict[str, float]:
    """{``ndr@5``: …, ``ndr@10``: …, …, ``ndr@90``: …} for the paper's levels (or ``levels``)."""
    curve = ndr_curve(scores, is_noisy)
    return {level_name(q): _at(curve, _check_level(q)) for q in levels}


def auc_ndr(scores: np.ndarray, is_noisy: np.ndarray) -> float:
    """Normalised area under the NDR curve: 1 for a perfect ranking (noisy examples lowest).

    (Σ_{t=1..n} NDR(t) − 1/2) / (n − n_noisy/2); see the module docstring for the −1/2.
    """
    s, y = _check_scores(scores, is_noisy)
    curve = _curve(s, y)
    n, n_noisy = y.size, int(np.count_nonzero(y))
    return float((curve.sum() - 0.5) / (n - n_noisy / 2))


def roc_auc(scores: np.ndarray, is_noisy: np.ndarray) -> float:
    """ROC-AUC of −score as a detector of noisy examples (ties count 1/2).

    = P(score of a noisy example < score of a clean one) + ½ P(equal), computed from average ranks
    (Mann–Whitney U). ConfigError unless there is at least one noisy and one clean example.
    """
    s, y = _check_scores(scores, is_noisy)
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(f"is_noisy has {n_pos} noisy and {n_neg} clean examples; ROC-AUC needs both")
    ranks = rankdata(-s, method="average")  # rank 1 = highest score = least suspicious
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


# -- cancellation ----------------------------------------------------------------------------------


def cancellation_chunks(chunks: Iterable[np.ndarray]) -> dict[str, float | int]:
    """Cancellation statistics of gradients given as column chunks [n, p_chunk] of one block [n, p].

    Accumulates Σ_i |g_ip| and |Σ_i g_ip| per parameter (in float64) and keeps the per-parameter
    ratios c_p as float32. Returns:

    - ``ratio``: Σ_p Σ_i |g_ip| / Σ_p |Σ_i g_ip|; inf if only the denominator is 0, NaN if every
      gradient entry is 0 (0/0).
    - ``median``, ``min``, ``max``: of the c_p (inf allowed), over parameters that are not
      all-zero; NaN if every parameter is all-zero.
    - ``n_zero``: number of all-zero parameters (c_p = 0/0, excluded above).
    - ``n_params``: p.
    """
    n_rows: int | None = None
    sums_abs: list[np.ndarray] = []
    abs_sums: list[np.ndarray] = []
    for index, chunk in enumerate(chunks):
        g = np.asarray(chunk)
        if g.ndim != 2:
            raise ConfigError(f"gradient chunk {index} must be 2-d [n, p_chunk]; got shape {g.shape}")
        if g.dtype == bool or not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
            raise ConfigError(f"gradient chunk {index} must be a real array; got dtype {g.dtype}")
        if n_rows is None:
            n_rows = g.shape[0]
            if n_rows == 0:
                raise ConfigError(f"gradient chunk {index} has shape {g.shape}: no training example")
        elif g.shape[0] != n_rows:
            raise ConfigError(f"gradient chunk {index} has shape {g.shape} but earlier chunks have n={n_rows} rows")
        if g.shape[1] == 0:
            continue
        if np.issubdtype(g.dtype, np.floating):
            bad = int(g.size - np.count_nonzero(np.isfinite(g)))
            if bad:
                raise ConfigError(f"gradient chunk {index} has {bad} non-finite entries (NaN or inf)")
        sums_abs.append(np.abs(g).sum(axis=0, dtype=np.float64))
        abs_sums.append(np.abs(g.sum(axis=0, dtype=np.float64)))
    if not sums_abs:
        raise ConfigError("grads has no parameter (p = 0); cancellation needs at least one")
    return cancellation_from_sums(np.concatenate(sums_abs), np.concatenate(abs_sums))


def cancellation_from_sums(sum_abs: np.ndarray, abs_sum: np.ndarray) -> dict[str, float | int]:
    """Cancellation statistics from the per-parameter sums Σ_i |g_ip| and |Σ_i g_ip| (each [p]).

    This is all the statistics need, so sparse gradients (the word embedding) can be reduced to the
    two sums without ever being made dense. Keys as in `cancellation_chunks`.
    """
    sum_abs = np.asarray(sum_abs, dtype=np.float64)
    abs_sum = np.asarray(abs_sum, dtype=np.float64)
    if sum_abs.shape != abs_sum.shape or sum_abs.ndim != 1:
        raise ConfigError(f"sum_abs {sum_abs.shape} and abs_sum {abs_sum.shape} must be 1-d of equal length")
    if sum_abs.size == 0:
        raise ConfigError("grads has no parameter (p = 0); cancellation needs at least one")
    total_abs, total_sum = float(sum_abs.sum()), float(abs_sum.sum())
    if total_sum > 0:
        ratio = total_abs / total_sum
    else:
        ratio = math.inf if total_abs > 0 else math.nan
    nonzero = sum_abs > 0
    with np.errstate(divide="ignore", over="ignore"):
        per_param = (sum_abs[nonzero] / abs_sum[nonzero]).astype(np.float32)
    if per_param.size:
        median, low, high = float(np.median(per_param)), float(per_param.min()), float(per_param.max())
    else:
        median = low = high = math.nan
    return {
        "ratio": ratio,
        "median": median,
        "min": low,
        "max": high,
        "n_zero": int(nonzero.size - np.count_nonzero(nonzero)),
        "n_params": int(sum_abs.size),
    }


def _column_chunks(g: np.ndarray) -> Iterator[np.ndarray]:
    step = max(1, _CANCEL_CHUNK_ELEMENTS // max(1, g.shape[0]))
    for p0 in range(0, g.shape[1], step):
        yield g[:, p0 : p0 + step]


def cancellation(grads: np.ndarray) -> dict[str, float | int]:
    """Cancellation statistics of per-example gradients grads [n, p] of one module or group.

    See `cancellation_chunks` for the keys; walks the parameters in chunks, so p may be large.
    """
    g = np.asarray(grads)
    if g.ndim != 2:
        raise ConfigError(f"grads must be a 2-d array [n, p]; got shape {g.shape}")
    return cancellation_chunks(_column_chunks(g))
