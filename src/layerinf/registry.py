"""The registry behind `layerinf.methods` and `layerinf.aggregations`: named specs, one file each.

A `Registry` holds the specs of one kind in registration order and finds its files: the built-in
ones first, in a fixed order (the paper's, so that choice lists and tables keep it), then every other
public module of the package in alphabetical order, so that adding an entry is one new file.
Standard library only: `layerinf.config` reads the registries before NumPy is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Generic, NoReturn, TypeVar

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """Raise `config.ConfigError` (imported lazily: config imports the registries)."""
    from layerinf.config import ConfigError

    raise ConfigError(message)


class Registry(Generic[T]):
    """The registered specs of one kind (`kind`: "method", "aggregation"), each with a ``name``."""

    def __init__(self, kind: str, spec_type: type[T], param: str) -> None:
        self.kind, self.spec_type, self.param = kind, spec_type, param
        self._specs: dict[str, T] = {}

    def register(self, spec: T) -> T:
        """Add `spec` (called once, at the bottom of its own file)."""
        if not isinstance(spec, self.spec_type):
            fail(f"register() takes a {self.spec_type.__name__}; got {type(spec).__name__}")
        name = spec.name  # type: ignore[attr-defined]
        if name in self._specs:
            fail(f"{self.kind} {name!r} is registered twice; registered: {', '.join(self._specs)}")
        self._specs[name] = spec
        return spec

    def get(self, name: str, param: str | None = None) -> T:
        """The spec called `name`; `ConfigError` naming `param` and the registered names otherwise."""
        if not isinstance(name, str) or name not in self._specs:
            fail(f"{param or self.param}={name!r} is not allowed; choose one of: {', '.join(self._specs)}")
        return self._specs[name]

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._specs)

    def specs(self) -> tuple[T, ...]:
        """Every registered spec, in registration order."""
        return tuple(self._specs.values())

    def load(self, package: str, path: Iterable[str], builtin: tuple[str, ...]) -> None:
        """Import the files of `package` (found on `path`): `builtin` first, then the rest by name."""
        found = sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
        for module in (*builtin, *(m for m in found if m not in builtin)):
            importlib.import_module(f"{package}.{module}")
