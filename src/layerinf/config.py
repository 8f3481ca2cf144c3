"""Typed, validated configuration of one pipeline run, and the three profiles.

A `RunConfig` is frozen: every stage of the pipeline is cached under a hash of exactly the fields it
reads (see `STAGE_FIELDS`), so a field that silently changed after construction would poison caches.
All validation happens in `__post_init__`, i.e. before any heavy work starts.

NumPy-free and torch-free on purpose: the command line and the notebooks validate parameters with it
before importing anything expensive.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerinf import tasks as _tasks
from layerinf.hub import HUB_TIMEOUT_S, hub_offline, hub_unreachable  # noqa: F401  (re-exported)

FIXED_GROUPS: tuple[str, ...] = ("we", "block1", "block2", "block3", "block4", "cl", "all")
PROFILES: tuple[str, ...] = ("smoke", "default", "paper")
#: How the training, query and evaluation examples are drawn (`data.SAMPLERS`).
SAMPLINGS: tuple[str, ...] = ("stratified", "balanced")
#: Most retrainings one pack may train at once (`retrain_pack`).
MAX_PACK = 64
#: Tasks read from a prepared file of the data directory, and GLUE tasks (``glue/<name>``): from the
#: task registry (`layerinf.tasks`, one module per task).
OFFLINE_TASKS: tuple[str, ...] = _tasks.names("prepared")
GLUE_TASKS: tuple[str, ...] = tuple(n.removeprefix("glue/") for n in _tasks.names("hub") if n.startswith("glue/"))
NAMED_MODELS: tuple[str, ...] = ("minilm", "smollm2", "tiny")
#: What each named model is, for the pages' prose (`describe_model`).
MODEL_DESCRIPTIONS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2, a 6-layer BERT sentence encoder (22.7 M parameters)",
    "smollm2": (
        "SmolLM2-135M-Instruct, a 30-layer Llama-architecture decoder (134.5 M parameters) whose weights "
        "come from a Q4_1-quantised GGUF file, dequantised to float32"
    ),
    "tiny": "a randomly initialised 2-layer BERT (a test fixture: its numbers mean nothing)",
}
#: Groups that contain the word embedding: the only ones a WE-only method can be scored on.
WE_GROUPS: tuple[str, ...] = ("we", "all", "type:we")


#: The largest seed: derived seeds (data order, noise, the second dropout seed) add to it and must
#: stay within what NumPy, Python and torch generators accept everywhere.
MAX_SEED = 2**31 - 1_000_000


class ConfigError(ValueError):
    """A user-supplied value is not allowed. The message names the parameter and the allowed values."""


# The method and aggregation names come from their registries (one file per method in
# `layerinf.methods`, per aggregation in `layerinf.aggregations`), whose import is NumPy-free. They
# are read here, after `ConfigError`, because a malformed registration raises it.
from layerinf import aggregations as _aggregations  # noqa: E402
from layerinf import methods as _methods  # noqa: E402
from layerinf import own as _own  # noqa: E402

#: Every registered influence method: what a config, a setup or `compute_scores` accepts.
METHOD_CHOICES: tuple[str, ...] = _methods.names()
#: The methods a run computes by default (the paper's: tracin, cosine, datainf, tracin_we, tracin_we_top10).
METHODS: tuple[str, ...] = tuple(m.name for m in _methods.specs() if m.default)
#: Methods that only exist on the word-embedding matrix.
WE_ONLY_METHODS: tuple[str, ...] = tuple(m.name for m in _methods.specs() if m.we_only)
#: Every registered aggregation: what a setup or `aggregation.aggregate` accepts.
AGGREGATION_CHOICES: tuple[str, ...] = _aggregations.names()
#: The aggregations a run computes by default (the paper's: mean, mean_c, rank, vote).
AGGREGATIONS: tuple[str, ...] = tuple(a.name for a in _aggregations.specs() if a.default)


def _help(text: str, default: Any) -> Any:
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed in a frozen config")
    return field(default=default, metadata={"help": text})


def describe_model(model: str) -> str:
    """One phrase saying what `model` is: the description of a named model, else its id or path."""
    return MODEL_DESCRIPTIONS.get(model, f"{model} (a Hugging Face model id or local directory)")


def allowed(name: str, value: object, choices: tuple[str, ...] | list[str]) -> None:
    """Raise `ConfigError` unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(map(str, choices))}")


def check_task(task: str) -> None:
    """Task names: those of the task registry (`layerinf.tasks`), or own data: a CSV / TSV / JSONL file
    or a ``save_to_disk`` directory (`is_data_path`; its content is checked by `layerinf.userdata`)."""
    if _own.is_data_path(task):
        _own.check_data_path("task", task)
        return
    try:
        _tasks.get(task)
    except ConfigError as err:
        raise ConfigError(f"{err}, or own data: {_own.OWN_DATA}") from None


def check_group(group: str) -> None:
    """Layer-group names: the fixed groups, ``layer{i}`` or ``type:{module type}``."""
    types = ("query_A", "query_B", "value_A", "value_B", "we", "cl")
    if isinstance(group, str):
        if group in FIXED_GROUPS:
            return
        if group.startswith("layer") and group[5:].isdigit():
            return
        if group.startswith("type:") and group[5:] in types:
            return
    raise ConfigError(
        f"group={group!r} is not allowed; choose one of: {', '.join(FIXED_GROUPS)}, layer<i>, type:<{'|'.join(types)}>"
    )


def check_setup_parts(method: str, group: str, aggregation: str, methods: Sequence[str]) -> None:
    """A retraining setup ``method/group/aggregation``: a method of the run, a valid group, a known
    aggregation, for the word-embedding-only methods a group that contains the word embedding, and
    for a method without a word-embedding scorer (`methods.Method.scores_we`) a group that is not it."""
    allowed("setup method", method, tuple(methods))
    check_group(group)
    allowed("setup aggregation", aggregation, AGGREGATION_CHOICES)
    if method in WE_ONLY_METHODS and group not in WE_GROUPS:
        raise ConfigError(
            f"method {method!r} scores the word embedding only; its group must be one of: {', '.join(WE_GROUPS)}"
        )
    if group in ("we", "type:we") and method in METHOD_CHOICES and not _methods.get(method).scores_we:
        raise ConfigError(f"method {method!r} does not score the word embedding; group={group!r} would be empty")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines the result of one pipeline run (model × task × seed)."""

    model: str = _help("named model (minilm, smollm2, tiny), Hugging Face id, or local directory", "minilm")
    task: str = _help("rt, spam, bbc, glue/<qnli|mrpc|sst2|qqp|cola|mnli|rte|stsb>, or a .csv/.jsonl file", "rt")
    seed: int = _help("seed of sampling, label noise, initialisation and data order", 0)
    n_train: int = _help("number of training examples (stratified sample)", 1000)
    n_query: int = _help("number of query examples the influence is computed against", 200)
    n_eval: int = _help("number of held-out evaluation examples for accuracy", 500)
    noise_rate: float = _help("fraction of training labels flipped, in [0, 1)", 0.2)
    sampling: str = _help(
        "how each split is drawn: stratified (corpus class shares) or balanced (equal per class)", "stratified"
    )
    max_length: int = _help("maximum number of tokens per example", 64)
    lora_r: int = _help("LoRA rank", 4)
    lora_alpha: float = _help("LoRA alpha (scaling = alpha / r)", 4.0)
    lora_dropout: float = _help("LoRA dropout during training", 0.05)
    train_embeddings: bool = _help("also fine-tune the word-embedding matrix (paper: frozen)", False)
    epochs: int = _help("fine-tuning epochs (retraining uses the same)", 3)
    batch_size: int = _help("training batch size", 16)
    lr: float = _help("AdamW peak learning rate (cosine schedule, 10 % warm-up)", 3e-4)
    weight_decay: float = _help("AdamW weight decay", 0.0)
    warmup_frac: float = _help("fraction of steps used for linear warm-up", 0.1)
    grad_batch_size: int = _help("batch size of the per-sample-gradient passes", 32)
    retrain_pack: int = _help(
        "retrainings of a run trained at once (batched adapters); 0: on a GPU as many as memory allows "
        "(at most 16), on a CPU 1; 1: one after another",
        0,
    )
    methods: tuple[str, ...] = _help("influence methods", METHODS)
    datainf_lambda: float = _help("DataInf damping: lambda_l = this × mean squared gradient entry", 0.1)
    removal_frac: float = _help("fraction of training examples removed before retraining", 0.3)
    vote_k_frac: float = _help("Vote k as a fraction of n (k = round(frac·n))", 0.2)
    device: str = _help("auto, cpu, cuda, cuda:<i> or mps", "auto")
    dtype: str = _help("float32, float64 or bfloat16 (bfloat16 only on CUDA)", "float32")
    text_column: str = _help("own data: the column of the (first) text", "text")
    pair_column: str = _help("own data: the column of the second text of a sentence pair ('' = none)", "")
    label_column: str = _help("own data: the label column (any values; label ids follow their sorted order)", "label")
    query_file: str = _help("own data: a file of query examples ('' = sampled from the task's data)", "")
    eval_file: str = _help("own data: a file of evaluation examples ('' = sampled from the task's data)", "")
    adapter: str = _help("a fine-tuned peft adapter directory or trainable-state .safetensors ('' = fine-tune)", "")

    def __post_init__(self) -> None:
        # Normalise before validating: sequences to tuples (YAML and the CLI give lists), NumPy
        # scalars to Python numbers (a cache key must not depend on where a number came from).
        if isinstance(self.methods, str):
            raise ConfigError(f"methods={self.methods!r} must be a list of names, e.g. methods=[{self.methods!r}]")
        try:
            object.__setattr__(self, "methods", tuple(self.methods))
        except TypeError:
            raise ConfigError(f"methods={self.methods!r} must be a list of: {', '.join(METHOD_CHOICES)}") from None
        for name, kind in _FIELD_KINDS.items():
            object.__setattr__(self, name, _coerce(name, getattr(self, name), kind))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model={self.model!r} must be a non-empty name, Hugging Face id or path")
        check_task(self.task)
        allowed("sampling", self.sampling, SAMPLINGS)
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(
                f"seed={self.seed!r} must be an integer in [0, {MAX_SEED}] (what every random generator accepts)"
            )
        for name in ("n_train", "n_query", "n_eval", "max_length", "lora_r", "epochs", "batch_size", "grad_batch_size"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name}={value!r} must be an integer >= 1")
        if not 0 <= self.retrain_pack <= MAX_PACK:
            raise ConfigError(
                f"retrain_pack={self.retrain_pack!r} must be an integer in [0, {MAX_PACK}] "
                "(0: chosen from the memory; 1: sequential)"
            )
        if self.n_train < 4:
            raise ConfigError(f"n_train={self.n_train} must be at least 4 (two per class)")
        if not 0.0 <= self.noise_rate < 1.0:
            raise ConfigError(f"noise_rate={self.noise_rate!r} must be in [0, 1)")
        if not 0.0 < self.vote_k_frac <= 1.0:
            raise ConfigError(f"vote_k_frac={self.vote_k_frac!r} must be in (0, 1]")
        if not 0.0 < self.removal_frac < 1.0:
            raise ConfigError(f"removal_frac={self.removal_frac!r} must be in (0, 1)")
        if round(self.removal_frac * self.n_train) >= self.n_train:
            raise ConfigError(
                f"removal_frac={self.removal_frac!r} would remove all n_train={self.n_train} examples "
                "before retraining; at least one must be kept"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout={self.lora_dropout!r} must be in [0, 1)")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ConfigError(f"warmup_frac={self.warmup_frac!r} must be in [0, 1)")
        for name in ("lr", "lora_alpha", "datainf_lambda"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a finite number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay={self.weight_decay!r} must be a finite number >= 0")
        if not self.methods:
            raise ConfigError("methods=() is empty; choose at least one of: " + ", ".join(METHOD_CHOICES))
        for method in self.methods:
            allowed("methods", method, METHOD_CHOICES)
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"methods={self.methods!r} lists a method twice")
        dev = self.device
        if not isinstance(dev, str) or not (
            dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())
        ):
            raise ConfigError(f"device={dev!r} is not allowed; choose auto, cpu, cuda, cuda:<i> or mps")
        allowed("dtype", self.dtype, ("float32", "float64", "bfloat16"))
        _own.check_own(self)

    def vote_k(self, n: int) -> int:
        """Vote k for `n` training examples: round(vote_k_frac · n), at least 1.

        `n` is the number of training examples the run actually has, which is smaller than
        `n_train` when a GLUE training split is (documented: capped to its size).
        """
        return max(1, round(self.vote_k_frac * n))

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes` applied (and validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s) {sorted(unknown)}; known: {field_names()}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field, but the own-data and own-adapter fields only when set: a run of a registered
        task keeps the record key it had before they existed (the data's content hash and the
        adapter's are in every cache key anyway, `runner.Pipeline.identity`)."""
        data = dataclasses.asdict(self)
        data["methods"] = list(self.methods)
        for name in _own.OWN_FIELDS:
            if data[name] == _own.OWN_DEFAULTS[name]:
                del data[name]
        return data

    @property
    def own_data(self) -> bool:
        """The task is a data file or directory of the user's (`layerinf.userdata`)."""
        return _own.is_data_path(self.task)

    def subset(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The values of `names` only: what a stage's cache key is made of."""
        full = {**_own.OWN_DEFAULTS, **self.to_dict()}
        return {name: full[name] for name in names}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        unknown = set(data) - set(field_names())
        if unknown:
            raise ConfigError(f"unknown config field(s) {sorted(unknown)}; known: {field_names()}")
        return cls(**data)


#: The type of every non-string field: "int" (integers, not bools), "float" (real numbers), "bool".
#: Checked and normalised to the Python type in `RunConfig.__post_init__`.
_INTS = "seed n_train n_query n_eval max_length lora_r epochs batch_size grad_batch_size retrain_pack"
_FLOATS = "noise_rate lora_alpha lora_dropout lr weight_decay warmup_frac datainf_lambda removal_frac vote_k_frac"
_FIELD_KINDS: dict[str, str] = {
    **dict.fromkeys(_INTS.split(), "int"),
    **dict.fromkeys(_FLOATS.split(), "float"),
    "train_embeddings": "bool",
}


def _coerce(name: str, value: Any, kind: str) -> Any:
    """`value` as a Python int / finite float / bool, or `ConfigError` naming the field."""
    # Duck-typed on purpose: NumPy scalars (np.int64, np.float32, np.bool_) are accepted, strings and
    # bools-for-numbers are not. NumPy is not imported here (see the module docstring).
    is_bool = isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")
    if kind == "bool":
        if not is_bool:
            raise ConfigError(f"{name}={value!r} must be True or False")
        return bool(value)
    if is_bool or isinstance(value, (str, bytes)):
        raise ConfigError(f"{name}={value!r} must be {'an integer' if kind == 'int' else 'a number'}")
    if kind == "int":
        if not isinstance(value, numbers.Integral):
            raise ConfigError(f"{name}={value!r} must be an integer")
        return int(value)
    if not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}={value!r} must be a number")
    return float(value)  # NaN and inf fail the range checks of __post_init__


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def field_help() -> dict[str, str]:
    """Help string per field (used by the command line and the book's "re-run" page)."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(RunConfig)}


#: The fields each pipeline stage depends on. A stage's cache key is the hash of these values plus
#: the stage version, so changing e.g. `methods` never invalidates fine-tuning.
_DATA = ("task", "seed", "n_train", "n_query", "n_eval", "noise_rate", "sampling")
_MODEL = ("model", "max_length", "lora_r", "lora_alpha", "lora_dropout", "train_embeddings", "dtype")
_TRAIN = ("epochs", "batch_size", "lr", "weight_decay", "warmup_frac")
#: `grad_batch_size` changes which examples share a padded batch, and so the float rounding of the
#: gradients (and of everything computed from them). Besides these fields every key carries the
#: content hash of the run's examples and the device type the stage ran on (`runner.Pipeline.key`).
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "data": _DATA,
    "finetune": _DATA + _MODEL + _TRAIN,
    "gradients": _DATA + _MODEL + _TRAIN + ("grad_batch_size",),
    "influence": _DATA + _MODEL + _TRAIN + ("grad_batch_size", "datainf_lambda"),
    "retrain": _DATA + _MODEL + _TRAIN,
}


def preset(profile: str, **overrides: Any) -> RunConfig:
    """The configuration of a profile, with `overrides` applied.

    - ``smoke``: the random 2-layer `tiny` model on a few hundred examples; seconds per run (CI).
    - ``default``: the real all-MiniLM-L6-v2 on this 2-core CPU, 32 tokens (a Rotten Tomatoes snippet
      averages about 25); minutes per run.
    - ``paper``: the paper's GPU-scale setup (train ≤ 4,500, query/eval 500, length 128, 10 epochs).
    """
    allowed("profile", profile, PROFILES)
    unknown = set(overrides) - set(field_names())
    if unknown:
        raise ConfigError(f"unknown config field(s) {sorted(unknown)}; known: {', '.join(field_names())}")
    base: dict[str, Any]
    if profile == "smoke":
        base = dict(model="tiny", n_train=160, n_query=24, n_eval=64, max_length=32, epochs=2, batch_size=16, lr=1e-3)
    elif profile == "default":
        base = dict(
            model="minilm", n_train=1000, n_query=200, n_eval=500, max_length=32, epochs=3, batch_size=16, lr=3e-3
        )
    else:
        base = dict(
            model="roberta-large",
            task="glue/sst2",
            n_train=4500,
            n_query=500,
            n_eval=500,
            max_length=128,
            epochs=10,
            batch_size=32,
            lr=3e-4,
        )
    base.update(overrides)
    if profile == "paper" and "lr" not in overrides:  # the paper's learning rate of that model
        base["lr"] = PAPER_LR.get(base["model"], base["lr"])
    return RunConfig(**base)


#: The paper's learning rates per model (spec: "LRs: roberta 3e-4, Llama 1e-4, Qwen 3e-4, Mistral 5e-5").
PAPER_LR: dict[str, float] = {
    "roberta-large": 3e-4,
    "meta-llama/Llama-3.2-1B": 1e-4,
    "Qwen/Qwen2.5-1.5B": 3e-4,
    "mistralai/Mistral-7B-v0.3": 5e-5,
}
