"""The experiment: one spec of runs (models × tasks × seeds × noise rates), one parser, one validator.

Everything that runs more than one configuration goes through an `Experiment`: `layerinf sweep`
(a YAML file), `layerinf run` (an experiment of one run), the claim notebooks (the book's grid file,
``grids/book/<profile>.yaml``) and the Python API (`define`). `layerinf.execution.run_experiment` runs
one with a local or a Ray executor. An experiment spec (YAML, or a mapping) has the keys::

    name: smoke                       # optional; defaults to the file name
    description: ...                  # optional
    profile: smoke                    # smoke | default | paper: the base RunConfig (config.preset)
    models: [tiny]                    # named models, Hugging Face ids or local directories
    tasks: [rt]                       # a registered task (`layerinf tasks`)
    seeds: [0, 1]
    noise_rates: [0.2]                # optional; default: the profile's noise_rate
    methods: [tracin, datainf]        # optional; default: the profile's methods
    setups: [tracin/all/mean]         # retraining setups as method/group/aggregation strings, or the
    # setups: {methods: [tracin], groups: [all, block1], aggregations: [mean, vote]}  (cross product)
    baselines: [random]               # any of random, oracle, none, none_reseed; default: none of them
    groups: [we, block1, all]         # optional: layer groups of the detection table (default: all fixed)
    aggregations: [mean, rank, vote]  # optional: aggregations of the detection table (default: all)
    config: {n_train: 64, epochs: 1}  # optional: any other RunConfig field
    per_model:                        # optional: RunConfig fields for one model only (e.g. its lr)
      tiny: {lr: 1.0e-3}

One *job* is one (model, task, seed, noise rate): one `runner.run`. Every RunConfig of an experiment
is built, and so validated, when the spec is parsed: before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layerinf.config import (
    AGGREGATION_CHOICES,
    AGGREGATIONS,
    FIXED_GROUPS,
    PROFILES,
    ConfigError,
    RunConfig,
    allowed,
    check_group,
    field_names,
    preset,
)
from layerinf.setups import BASELINES, Setup, as_list, check_baselines, expand_setups

KEYS: tuple[str, ...] = (
    "name",
    "description",
    "profile",
    "models",
    "tasks",
    "seeds",
    "noise_rates",
    "methods",
    "setups",
    "baselines",
    "groups",
    "aggregations",
    "config",
    "per_model",
)


@dataclass(frozen=True)
class Job:
    """One run of an experiment: its configuration and what it retrains and reports."""

    cfg: RunConfig
    setups: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    groups: tuple[str, ...] = FIXED_GROUPS
    aggregations: tuple[str, ...] = AGGREGATIONS

    @property
    def label(self) -> str:
        c = self.cfg
        return f"{c.model} {c.task} seed={c.seed} noise={c.noise_rate:g}"

    @property
    def retrainings(self) -> int:
        """Training passes after the fine-tuning: every setup and every baseline but ``none``, which is
        the fine-tuning itself."""
        return len(self.setups) + sum(b != "none" for b in self.baselines)

    @property
    def parsed_setups(self) -> tuple[Setup, ...]:
        return tuple(Setup(*spec.split("/")) for spec in self.setups)


@dataclass(frozen=True)
class Parameters:
    """An experiment as its pages quote it (`Experiment.parameters`)."""

    profile: str
    models: list[str]
    tasks: list[str]
    seeds: list[int]
    n_train: int
    n_query: int
    n_eval: int
    epochs: int
    sampling: str
    noise_rate: float
    methods: list[str]
    setups: list[str]
    scope: str


@dataclass(frozen=True)
class Experiment:
    """A validated experiment spec and the jobs it expands to (one per model × task × seed × noise
    rate, in that nesting order). `spec` is the mapping it was parsed from (what `with_changes` edits)."""

    name: str
    profile: str
    jobs: tuple[Job, ...]
    spec: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    description: str = ""

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(j.cfg.model for j in self.jobs))

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(j.cfg.task for j in self.jobs))

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(j.cfg.seed for j in self.jobs))

    @property
    def setups(self) -> tuple[str, ...]:
        return self.jobs[0].setups

    @property
    def first(self) -> RunConfig:
        """The configuration of the first job (what the pages quote for sizes shared by every run)."""
        return self.jobs[0].cfg

    def parameters(self) -> Parameters:
        """What a page says about the experiment: its runs' coordinates, the first job's sizes (the
        book's experiments share them across runs), its methods and setups, and a scope sentence."""
        c = self.first
        return Parameters(
            profile=self.profile,
            models=list(self.models),
            tasks=list(self.tasks),
            seeds=list(self.seeds),
            n_train=c.n_train,
            n_query=c.n_query,
            n_eval=c.n_eval,
            epochs=c.epochs,
            sampling=c.sampling,
            noise_rate=c.noise_rate,
            methods=list(c.methods),
            setups=list(self.setups),
            scope=f"{', '.join(self.models)} on {', '.join(self.tasks)}, seeds {', '.join(map(str, self.seeds))}",
        )

    def with_changes(self, **changes: Any) -> Experiment:
        """The same experiment with spec keys replaced (validated again). A RunConfig field name
        (``n_train=...``) goes into ``config``; ``models`` also drops ``per_model`` entries of models
        that are no longer in it."""
        spec = {**self.spec, "config": dict(self.spec.get("config") or {})}
        for key, value in changes.items():
            if key in KEYS:
                spec[key] = value
            elif key in field_names():
                spec["config"][key] = value
            else:
                raise ConfigError(
                    f"{key!r} is neither an experiment key ({', '.join(KEYS)}) nor a RunConfig field "
                    f"({', '.join(field_names())})"
                )
        if "models" in changes and isinstance(spec.get("per_model"), dict):
            models = changes["models"] if isinstance(changes["models"], list) else [changes["models"]]
            spec["per_model"] = {m: v for m, v in spec["per_model"].items() if m in models}
        return parse(spec, name=self.name, source=self.source)


def _fields(value: Any, where: str) -> dict[str, Any]:
    """RunConfig overrides of a spec (``config:`` or one ``per_model:`` entry), names checked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of RunConfig fields, got {value!r}")
    for name in value:
        if name in ("model", "task", "seed", "noise_rate", "methods"):
            raise ConfigError(f"{where}.{name}: set by the experiment's own key (models, tasks, ...); remove it here")
        if name not in field_names():
            raise ConfigError(f"{where}: unknown RunConfig field {name!r}; known: {', '.join(field_names())}")
    return dict(value)


def parse(spec: Mapping[str, Any], name: str = "experiment", source: Path | None = None) -> Experiment:
    """Validate an experiment spec (the content of a YAML file) and expand it into jobs."""
    where = str(source) if source else name
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: an experiment must be a mapping with keys {', '.join(KEYS)}")
    spec = dict(spec)
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        hint = " (RunConfig fields go under config:)" if set(unknown) & set(field_names()) else ""
        raise ConfigError(f"{where}: unknown key(s) {unknown}{hint}; allowed: {', '.join(KEYS)}")
    profile = spec.get("profile", "default")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ConfigError(f"{where}: profile={profile!r} must be one name: {', '.join(PROFILES)}")
    config = _fields(spec.get("config"), f"{where}: config")
    per_model = spec.get("per_model") or {}
    if not isinstance(per_model, dict):
        raise ConfigError(f"{where}: per_model must map a model name to RunConfig fields")
    per_model = {str(m): _fields(v, f"{where}: per_model[{m!r}]") for m, v in per_model.items()}
    models = as_list(spec, "models", where)
    stray = sorted(set(per_model) - set(models))
    if stray:
        raise ConfigError(f"{where}: per_model names model(s) {stray} that are not in models: {models}")
    tasks = as_list(spec, "tasks", where)
    seeds = as_list(spec, "seeds", where, kind="int")
    base = preset(profile, **config, **({"task": tasks[0]} if tasks else {}))  # own-data fields need own data
    rates = [float(r) for r in as_list(spec, "noise_rates", where, [base.noise_rate], kind="number")]
    methods = tuple(as_list(spec, "methods", where, list(base.methods)))
    setups = expand_setups(spec.get("setups"), where, methods)
    baselines = check_baselines(as_list(spec, "baselines", where) if spec.get("baselines") else [])
    groups = tuple(as_list(spec, "groups", where, list(FIXED_GROUPS)))
    for g in groups:
        check_group(g)
    hows = tuple(as_list(spec, "aggregations", where, list(AGGREGATIONS)))
    for how in hows:
        allowed("aggregations", how, AGGREGATION_CHOICES)
    jobs = []
    for model in models:
        extra = per_model.get(model, {})
        for task in tasks:
            for seed in seeds:
                for rate in rates:
                    fields = {**config, **extra, "model": model, "task": task, "seed": seed, "noise_rate": rate}
                    cfg = preset(profile, **fields, methods=methods)
                    jobs.append(Job(cfg, setups, baselines, groups, hows))
    return Experiment(
        name=str(spec.get("name") or name),
        profile=profile,
        jobs=tuple(jobs),
        spec=spec,
        source=source,
        description=str(spec.get("description") or ""),
    )


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"experiment file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"experiment file {str(path)!r} is not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"experiment file {str(path)!r} is not valid YAML: {' '.join(str(err).split())}") from None


def load(path: Path | str) -> Experiment:
    """Read and validate an experiment file (see the module docstring for its keys)."""
    path = Path(path)
    return parse(_read_yaml(path), name=path.stem, source=path)


def define(
    profile: str,
    models: Sequence[str],
    tasks: Sequence[str],
    seeds: Sequence[int],
    *,
    setups: Sequence[str] | Mapping[str, Any] = (),
    baselines: Sequence[str] = BASELINES,
    groups: Sequence[str] = FIXED_GROUPS,
    aggregations: Sequence[str] = AGGREGATIONS,
    name: str = "experiment",
    **fields: Any,
) -> Experiment:
    """An experiment from Python values: `fields` are RunConfig fields (``noise_rate`` and
    ``methods`` included); by default every baseline is retrained."""
    if isinstance(models, str) or isinstance(tasks, str):
        raise ConfigError("models and tasks must be lists, e.g. models=['minilm']")
    if not models or not tasks or not seeds:
        raise ConfigError("models, tasks and seeds must each name at least one value")
    spec: dict[str, Any] = {
        "name": name,
        "profile": profile,
        "models": list(models),
        "tasks": list(tasks),
        "seeds": [int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else s for s in seeds],
        "setups": setups if isinstance(setups, Mapping) else list(setups),
        "baselines": list(check_baselines(list(baselines))),
        "groups": list(groups),
        "aggregations": list(aggregations),
    }
    if "noise_rate" in fields:
        spec["noise_rates"] = [fields.pop("noise_rate")]
    if "methods" in fields:
        spec["methods"] = list(fields.pop("methods"))
    spec["config"] = fields
    return parse(spec, name=name)


def from_config(
    cfg: RunConfig, profile: str, setups: Sequence[str] = (), baselines: Sequence[str] = (), name: str = "run"
) -> Experiment:
    """The experiment of one run (``layerinf run``): `cfg` as built from a profile and options."""
    own = ("model", "task", "seed", "noise_rate", "methods")
    spec = {
        "name": name,
        "profile": profile,
        "models": [cfg.model],
        "tasks": [cfg.task],
        "seeds": [cfg.seed],
        "noise_rates": [cfg.noise_rate],
        "methods": list(cfg.methods),
        "setups": list(setups),
        "baselines": list(baselines),
        "config": {k: v for k, v in cfg.to_dict().items() if k not in own},
    }
    return parse(spec, name=name)


# --------------------------------------------------------------------------------------------------
# The book's experiments: one file per profile that every claim page reads.

#: The experiments a book grid file names: the retrained grid of the claims, and the decoder LLM's.
BOOK_EXPERIMENTS: tuple[str, ...] = ("main", "llm")


def book_grid_path(profile: str, root: Path | None = None) -> Path:
    """``grids/book/<profile>.yaml`` of the checkout (`paths.book_root`)."""
    from layerinf import paths

    allowed("profile", profile, PROFILES)
    return (root or paths.book_root()) / "grids" / "book" / f"{profile}.yaml"


def book(
    profile: str,
    grid: Path | str | None = None,
    models: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Experiment]:
    """The book's experiments under `profile`: ``{"main": ..., "llm": ...}`` from `grid` (default:
    `book_grid_path`). `models` replaces the main experiment's models (``layerinf book --model``);
    `overrides` are `Experiment.with_changes` arguments, for the main experiment, or for the LLM one
    when prefixed ``llm.`` (``layerinf book --set seeds=[1,2,3,4] --set llm.n_train=100``)."""
    path = Path(grid) if grid else book_grid_path(profile)
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or set(raw) != set(BOOK_EXPERIMENTS):
        raise ConfigError(f"book grid {str(path)!r} must map exactly {', '.join(BOOK_EXPERIMENTS)} to experiments")
    out = {}
    for key in BOOK_EXPERIMENTS:
        exp = parse(raw[key], name=f"{path.stem}-{key}", source=path)
        if exp.profile != profile:
            raise ConfigError(f"book grid {str(path)!r}: {key} has profile {exp.profile!r}, not {profile!r}")
        out[key] = exp
    changes: dict[str, dict[str, Any]] = {key: {} for key in BOOK_EXPERIMENTS}
    for name, value in (overrides or {}).items():
        target, _, field_name = name.rpartition(".")
        target = target or "main"
        if target not in changes:
            raise ConfigError(f"override {name!r}: prefix must be one of {', '.join(BOOK_EXPERIMENTS)}")
        changes[target][field_name] = value
    if models:
        changes["main"]["models"] = list(models)
    return {key: out[key].with_changes(**changes[key]) if changes[key] else out[key] for key in BOOK_EXPERIMENTS}
