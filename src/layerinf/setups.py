"""Retraining setups: what a run removes and retrains, written ``method/group/aggregation``.

A *setup* is (influence method, layer group, aggregation): remove the training examples with the
lowest aggregated scores and retrain. A *baseline* removes without scores: ``random``, ``oracle``
(every noisy example first), ``none`` (nothing: the fine-tuning itself, seeded like a retraining)
and ``none_reseed`` (nothing, another dropout seed: the noise floor). This module is the one place
that parses and checks them (NumPy- and torch-free, like `config`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from layerinf.config import (
    AGGREGATION_CHOICES,
    FIXED_GROUPS,
    WE_ONLY_METHODS,
    ConfigError,
    RunConfig,
    allowed,
    check_group,
    check_setup_parts,
)

#: random: a random 30 %; oracle: every noisy example first; none: nothing removed (this is the
#: original fine-tuning, which is seeded like a retraining); none_reseed: nothing removed, retrained
#: with another dropout seed: the noise floor of a retrained accuracy.
BASELINES: tuple[str, ...] = ("random", "oracle", "none", "none_reseed")


_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "names"),
    "int": ((int,), "integers"),
    "number": ((int, float), "numbers"),
}


def as_list(
    spec: Mapping[str, Any], key: str, where: str, default: Sequence[Any] | None = None, kind: str = "str"
) -> list[Any]:
    """`spec[key]` as a non-empty list of `kind` items (a lone scalar becomes a one-item list; a bare
    string is one item, never its letters). Nulls, nested lists or mappings, and items of another type
    are refused by name."""
    value = spec.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: {key!r} is missing or null; give a list, e.g. {key}: [...]")
    if isinstance(value, (str, int, float)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where}: {key}={value!r} must be a non-empty list")
    types, what = _KINDS[kind]
    for item in value:
        if isinstance(item, bool) or not isinstance(item, types):
            raise ConfigError(f"{where}: {key} must be a list of {what}; {item!r} is a {type(item).__name__}")
    return list(value)


@dataclass(frozen=True)
class Setup:
    """A retraining setup: remove the lowest-scored examples under (method, group, aggregation)."""

    method: str
    group: str
    aggregation: str

    @property
    def name(self) -> str:
        return f"{self.method}/{self.group}/{self.aggregation}"


def setup_grid(methods: Sequence[str], groups: Sequence[str], aggregations: Sequence[str]) -> list[str]:
    """Every (method, group, aggregation) combination as setup strings (WE-only methods: group we)."""
    from layerinf import methods as registry

    def groups_of(method: str) -> Sequence[str]:
        if method in WE_ONLY_METHODS:
            return ("we",)
        if method in registry.names() and not registry.get(method).scores_we:  # e.g. gradients only
            return [g for g in groups if g not in ("we", "type:we")]
        return groups

    return [f"{m}/{g}/{a}" for m in methods for g in groups_of(m) for a in aggregations]


def _parts(spec: str) -> list[str]:
    parts = spec.split("/") if isinstance(spec, str) else []
    if len(parts) != 3:
        raise ConfigError(f"setup {spec!r} must be 'method/group/aggregation', e.g. 'tracin/block2/vote'")
    return parts


def check_setup(spec: str, methods: Sequence[str]) -> None:
    """Validate one ``method/group/aggregation`` string against the run's methods."""
    parts = _parts(spec)
    try:
        check_setup_parts(*parts, methods)
    except ConfigError as err:
        raise ConfigError(f"setup {spec!r}: {err}") from None


def parse_setups(specs: Sequence[str], methods: Sequence[str] | None = None) -> tuple[Setup, ...]:
    """``"tracin/block2/vote"`` → Setup(method, group, aggregation); checked against `methods` if given."""
    for spec in specs:
        if methods is not None:
            check_setup(spec, methods)
    return tuple(Setup(*_parts(spec)) for spec in specs)


def check_baselines(baselines: Sequence[str]) -> tuple[str, ...]:
    """Baselines of an experiment: any of `config.BASELINES`, each at most once."""
    for b in baselines:
        allowed("baselines", b, BASELINES)
    if len(set(baselines)) != len(baselines):
        raise ConfigError(f"baselines={list(baselines)!r} lists a baseline twice")
    return tuple(baselines)


def expand_setups(value: Any, where: str, methods: Sequence[str]) -> tuple[str, ...]:
    """Setups of a spec: a list of ``method/group/aggregation`` strings, or a cross-product spec
    ``{methods: [...], groups: [...], aggregations: [...]}``."""
    if value is None:
        return ()
    if isinstance(value, dict):
        unknown = set(value) - {"methods", "groups", "aggregations"}
        if unknown:
            raise ConfigError(
                f"{where}: setups has unknown key(s) {sorted(unknown)}; use methods, groups, aggregations"
            )
        specs = setup_grid(
            as_list(value, "methods", f"{where} setups", methods),
            as_list(value, "groups", f"{where} setups"),
            as_list(value, "aggregations", f"{where} setups"),
        )
    elif isinstance(value, (list, tuple)):
        specs = as_list({"setups": value}, "setups", where) if value else []
    else:
        raise ConfigError(f"{where}: setups={value!r} must be a list of method/group/aggregation or a mapping")
    for spec in specs:
        check_setup(spec, methods)
    if len(set(specs)) != len(specs):
        raise ConfigError(f"{where}: setups list a setup twice")
    return tuple(specs)


def check_choices(
    cfg: RunConfig, groups: Sequence, aggregations: Sequence, setups: Sequence, baselines: Sequence
) -> tuple[tuple, tuple, tuple, tuple]:
    """A run's choices (`runner.run`) as tuples, each checked against what exists, before any heavy work."""
    groups, aggregations, baselines, setups = (
        _names("groups", groups),
        _names("aggregations", aggregations),
        _names("baselines", baselines),
        _names("setups", setups),
    )
    if not groups:
        raise ConfigError(f"groups=() is empty; choose at least one of: {', '.join(FIXED_GROUPS)}, layer<i>, type:<t>")
    if not aggregations:
        raise ConfigError(f"aggregations=() is empty; choose at least one of: {', '.join(AGGREGATION_CHOICES)}")
    for group in groups:
        check_group(group)
    for how in aggregations:
        allowed("aggregations", how, AGGREGATION_CHOICES)
    for b in baselines:
        allowed("baselines", b, BASELINES)
    for s in setups:
        if not isinstance(s, Setup):
            raise ConfigError(f"setups: {s!r} is not a Setup(method, group, aggregation)")
        try:
            check_setup_parts(s.method, s.group, s.aggregation, cfg.methods)
        except ConfigError as err:
            raise ConfigError(f"setup {s.name!r}: {err}") from None
    return groups, aggregations, setups, baselines


def _names(name: str, values: Sequence) -> tuple:
    """`values` as a tuple; a bare string (``groups="all"``) is refused rather than split into letters."""
    if isinstance(values, str):
        raise ConfigError(f"{name}={values!r} must be a list, e.g. {name}=[{values!r}]")
    return tuple(values)
