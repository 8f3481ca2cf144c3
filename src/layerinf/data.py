"""Data: the examples of one run, sampled from a task's pool into training, query and evaluation examples.

- **Pools** (`layerinf.pools.load_pool`, re-exported here): every labelled example of a task of the
  registry (`layerinf.tasks`), from its prepared file or from the Hugging Face hub.
- **Sampling** (`make_splits`): a stratified, disjoint sample of training, query and evaluation
  examples, and label noise on the training labels. `inject_label_noise` is the only place that
  knows which labels were flipped; it returns the noisy mask, which is passed on, never re-derived.

No torch here on purpose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from layerinf import tasks
from layerinf.config import ConfigError, RunConfig, check_task
from layerinf.own import is_data_path
from layerinf.pools import Pool, Split, load_pool

#: At most this many GLUE validation examples are used (then split 50/50 into query and evaluation).
GLUE_VALIDATION_CAP: int = 1000
#: Independent random stream for label noise, derived from the run seed (see `inject_label_noise`).
_NOISE_STREAM: int = 1


# --------------------------------------------------------------------------------------------------
# The examples of one run


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, query and evaluation examples of one task, with the label noise that was injected.

    Attributes:
        task: task name (``rt``, ``spam``, ``bbc`` or ``glue/<name>``).
        label_names: name of each label id.
        num_classes: ``len(label_names)`` (rt 2, spam 2, bbc 5, GLUE 2).
        train: training examples; ``train.labels`` are the NOISY labels the model is trained on.
        query: query examples (clean labels); influence scores are computed against them.
        eval: evaluation examples (clean labels); only used to measure accuracy.
        clean_train_labels: [n_train] int64, training labels before noise.
        noisy_mask: [n_train] bool, True where the label was flipped (from `inject_label_noise`).
    """

    task: str
    label_names: tuple[str, ...]
    num_classes: int
    train: Split
    query: Split
    eval: Split
    clean_train_labels: np.ndarray
    noisy_mask: np.ndarray

    def fingerprint(self) -> str:
        """sha256 of everything a run reads from its data: the task, the label names and, per split,
        the example ids, texts, pair texts and labels, and the noisy mask. Every cache key carries it,
        so changed texts (an edited prepared file, another ``LAYERINF_DATA_DIR``, a new GLUE release)
        never reuse results computed on the old ones."""
        h = hashlib.sha256(json.dumps([self.task, list(self.label_names)]).encode())
        for split in (self.train, self.query, self.eval):
            h.update(json.dumps([list(map(str, split.ids)), split.texts, split.text_pairs]).encode())
            h.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.noisy_mask, dtype=bool).tobytes())
        return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Sampling and label noise


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name}={value!r} must be a number in [0, 1)")
    return float(value)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ConfigError(f"labels must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}")
    return arr


def _largest_remainder(counts: np.ndarray, k: int) -> np.ndarray:
    """Per-class quotas summing to `k`, proportional to `counts` (Hamilton / largest remainder).

    Ties in the remainder go to the larger class, then to the lower class id. When ``k >=`` the number
    of classes, every class gets at least one (taken from the class with the largest quota).
    """
    n = int(counts.sum())
    scaled = counts.astype(np.int64) * k
    quota, remainder = scaled // n, scaled % n
    missing = k - int(quota.sum())
    order = np.lexsort((np.arange(len(counts)), -counts, -remainder))
    quota[order[:missing]] += 1
    if k >= len(counts):
        for c in np.flatnonzero(quota == 0):
            quota[int(np.argmax(quota))] -= 1
            quota[c] += 1
    return quota


def _draw(
    labels: np.ndarray, k: int, rng: np.random.Generator, quotas: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
) -> np.ndarray:
    """`k` distinct positions of `labels`: ``quotas(classes, counts, k)`` examples of each class, drawn
    uniformly within the class, returned in random order (int64)."""
    arr = _check_labels(labels)
    n = len(arr)
    if isinstance(k, bool) or not isinstance(k, Integral) or not 0 <= k <= n:
        raise ConfigError(f"k={k!r} must be an integer between 0 and the number of labels ({n})")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    classes, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    quota = quotas(classes, counts, int(k))
    parts = [rng.choice(np.flatnonzero(inverse == c), size=int(q), replace=False) for c, q in enumerate(quota) if q]
    return rng.permutation(np.concatenate(parts)).astype(np.int64)


def stratified_sample(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a stratified random sample of `k` of the positions of `labels`, without replacement.

    Per-class counts are proportional to the class frequencies (largest-remainder rounding); every
    class is present when ``k >=`` the number of classes. Within a class the examples are drawn
    uniformly. The result is an int64 array of `k` distinct indices in random order (so a training
    set built from it is not sorted by class).
    """
    return _draw(labels, k, rng, lambda classes, counts, k: _largest_remainder(counts, k))


def _balanced_quota(classes: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    quota = np.full(len(classes), k // len(classes), dtype=np.int64)
    quota[: k % len(classes)] += 1
    short = np.flatnonzero(quota > counts)
    if short.size:
        c = int(short[0])
        raise ConfigError(
            f"sampling='balanced': class {int(classes[c])} has {int(counts[c])} examples left, "
            f"{int(quota[c])} needed for {k} balanced examples; ask for fewer or use sampling='stratified'"
        )
    return quota


def balanced_sample(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced random sample of `k` positions of `labels`, without replacement.

    Every class present in `labels` gets ``k // C`` examples; the ``k % C`` left over go one each to
    the lowest class ids. Raises `ConfigError` naming the class if it has too few examples. The result
    is an int64 array of `k` distinct indices in random order.
    """
    return _draw(labels, k, rng, _balanced_quota)


#: How `make_splits` draws each split: proportional to the class frequencies, or equal per class.
SAMPLERS = {"stratified": stratified_sample, "balanced": balanced_sample}


def inject_label_noise(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * n)`` labels, chosen uniformly at random without replacement.

    Binary labels become ``1 - y``; with more classes a flipped label becomes a uniformly drawn
    *other* class. The random stream is derived from `seed` but independent of the sampling stream of
    `make_splits` (same seed, different stream).

    Args:
        labels: [n] int, clean labels in ``[0, num_classes)``. Not modified.
        rate: noise rate in [0, 1).
        num_classes: number of classes (>= 2).
        seed: integer >= 0.

    Returns:
        ``(noisy_labels, noisy_mask)``: [n] int64 and [n] bool, ``noisy_mask == (noisy_labels != labels)``.
    """
    arr = _check_labels(labels)
    rate = _check_rate("noise_rate", rate)
    num_classes = _check_int("num_classes", num_classes, 2)
    seed = _check_int("seed", seed, 0)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ConfigError(f"labels must lie in [0, {num_classes}); got min {arr.min()} and max {arr.max()}")
    n = len(arr)
    n_flip = round(rate * n)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_NOISE_STREAM,)))
    flip = rng.choice(n, size=n_flip, replace=False)
    shift = rng.integers(1, num_classes, size=n_flip)
    noisy = arr.astype(np.int64, copy=True)
    noisy[flip] = (noisy[flip] + shift) % num_classes
    mask = np.zeros(n, dtype=bool)
    mask[flip] = True
    return noisy, mask


# --------------------------------------------------------------------------------------------------
# Pools: prepared offline files and GLUE


def _check_two_classes(task: str, pool: Pool, which: str) -> None:
    present = np.unique(pool.labels)
    if len(present) < 2:
        raise ConfigError(
            f"task={task!r}: the {which} data has only {len(present)} class(es) "
            f"({[pool.label_names[c] for c in present]}); at least two are needed"
        )


def splits_of(cfg: RunConfig) -> Splits:
    """The examples of the run `cfg`: `make_splits` for a registered task, `userdata.make_user_splits`
    for own data (a file or a saved dataset)."""
    if cfg.own_data:
        from layerinf.userdata import make_user_splits  # it imports this module

        return make_user_splits(cfg)
    return make_splits(cfg.task, cfg.n_train, cfg.n_query, cfg.n_eval, cfg.seed, cfg.noise_rate, sampling=cfg.sampling)


def make_splits(
    task: str,
    n_train: int,
    n_query: int,
    n_eval: int,
    seed: int,
    noise_rate: float,
    data_dir: Path | str | None = None,
    glue_dir: Path | str | None = None,
    sampling: str = "stratified",
) -> Splits:
    """Stratified training, query and evaluation examples of `task`, with label noise on training.

    `sampling`: ``stratified`` (class proportions of the corpus) or ``balanced`` (equal numbers per
    class, `balanced_sample`), for every split.

    Prepared tasks (rt, spam, bbc): three disjoint stratified samples of exactly `n_train`, `n_query`
    and `n_eval` examples from the whole corpus, drawn in that order with
    ``np.random.default_rng(seed)``.

    GLUE: training = stratified sample of at most `n_train` GLUE-train examples; the GLUE validation
    split is capped at 1,000 (stratified), split 50/50 (stratified) into query and evaluation
    examples, each then capped at `n_query` / `n_eval`. So GLUE splits may be smaller than asked
    for: use ``len(splits.train)``.

    Then `inject_label_noise` flips ``round(noise_rate * len(train))`` training labels. Deterministic for
    a given seed. Raises `ConfigError` for bad values, missing data or too small a pool.
    """
    check_task(task)
    if is_data_path(task):  # own data, its default columns
        from layerinf.userdata import make_user_splits

        kw = dict(n_train=n_train, n_query=n_query, n_eval=n_eval, seed=seed, noise_rate=noise_rate, sampling=sampling)
        return make_user_splits(RunConfig(task=task, **kw))
    n_train = _check_int("n_train", n_train, 1)
    n_query = _check_int("n_query", n_query, 1)
    n_eval = _check_int("n_eval", n_eval, 1)
    seed = _check_int("seed", seed, 0)
    noise_rate = _check_rate("noise_rate", noise_rate)
    if sampling not in SAMPLERS:
        raise ConfigError(f"sampling={sampling!r} is not allowed; choose one of: {', '.join(SAMPLERS)}")
    sample = SAMPLERS[sampling]
    pools = load_pool(task, data_dir=data_dir, glue_dir=glue_dir)
    rng = np.random.default_rng(seed)

    if tasks.get(task).kind == "prepared":
        pool = pools["all"]
        _check_two_classes(task, pool, "prepared")
        total = n_train + n_query + n_eval
        if total > len(pool):
            raise ConfigError(
                f"n_train + n_query + n_eval = {n_train} + {n_query} + {n_eval} = {total} exceeds the "
                f"{len(pool)} examples of task={task!r}"
            )
        remaining = np.arange(len(pool))
        chosen: list[np.ndarray] = []
        for k in (n_train, n_query, n_eval):
            pick = remaining[sample(pool.labels[remaining], k, rng)]
            remaining = np.setdiff1d(remaining, pick)
            chosen.append(pick)
        train_pool = val_pool = pool
        train_idx, query_idx, eval_idx = chosen
    else:
        train_pool, val_pool = pools["train"], pools["validation"]
        _check_two_classes(task, train_pool, "GLUE train")
        _check_two_classes(task, val_pool, "GLUE validation")
        if len(val_pool) < 2:
            raise ConfigError(f"task={task!r}: the validation data has {len(val_pool)} example(s); at least 2 needed")
        train_idx = sample(train_pool.labels, min(n_train, len(train_pool)), rng)
        val_idx = stratified_sample(val_pool.labels, min(GLUE_VALIDATION_CAP, len(val_pool)), rng)
        half = stratified_sample(val_pool.labels[val_idx], len(val_idx) // 2, rng)
        query_idx = val_idx[half]
        eval_idx = val_idx[np.setdiff1d(np.arange(len(val_idx)), half)]
        query_idx = query_idx[sample(val_pool.labels[query_idx], min(n_query, len(query_idx)), rng)]
        eval_idx = eval_idx[sample(val_pool.labels[eval_idx], min(n_eval, len(eval_idx)), rng)]

    num_classes = len(train_pool.label_names)
    clean = train_pool.labels[train_idx].astype(np.int64)
    noisy, mask = inject_label_noise(clean, noise_rate, num_classes, seed)
    return Splits(
        task=task,
        label_names=train_pool.label_names,
        num_classes=num_classes,
        train=train_pool.take(train_idx, labels=noisy),
        query=val_pool.take(query_idx),
        eval=val_pool.take(eval_idx),
        clean_train_labels=clean,
        noisy_mask=mask,
    )
