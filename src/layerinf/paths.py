"""Where things live: the data directory, the recorded checksums, the artifact store and the checkout.

One place, so that the package runs the same from a checkout and as an installed (non-editable)
package:

- ``$LAYERINF_DATA_DIR``, ``$LAYERINF_ARTIFACTS`` and ``$LAYERINF_ROOT`` win when set.
- Otherwise, in a checkout (``LAYERINF_ROOT``, or the directory two levels above this package when
  its ``pyproject.toml`` names the project ``layerinf``): the checkout's ``data/`` and ``artifacts/``.
- Otherwise (an installed package): ``./data`` and ``./artifacts`` under the current directory. The
  book needs the notebooks and pages of a checkout, so `book_root` refuses.

The recorded checksums (``sources.json``) ship inside the package, beside the task registry.

Standard library only (imported by the command line before anything heavy).
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path

from layerinf.config import ConfigError

DATA_ENV = "LAYERINF_DATA_DIR"
ARTIFACTS_ENV = "LAYERINF_ARTIFACTS"
ROOT_ENV = "LAYERINF_ROOT"
_PACKAGE = Path(__file__).resolve().parent


def is_checkout(path: Path) -> bool:
    """Whether `path` holds a ``pyproject.toml`` naming the project ``layerinf``."""
    try:
        project = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8")).get("project")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(project, dict) and project.get("name") == "layerinf"


@functools.cache
def _source_checkout() -> Path | None:
    """The checkout this package is imported from (``src/layerinf`` of it), if any."""
    candidate = _PACKAGE.parents[1]
    return candidate if is_checkout(candidate) else None


def checkout_root() -> Path | None:
    """The repository checkout: ``$LAYERINF_ROOT``, else the one this package is imported from, else None."""
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise ConfigError(f"{ROOT_ENV}={env!r} is not a directory; point it at a checkout of layerinf")
        return root
    return _source_checkout()


def _base() -> Path:
    return checkout_root() or Path.cwd()


def default_data_dir() -> Path:
    """The data directory when ``$LAYERINF_DATA_DIR`` is not set: the checkout's ``data/``, else ``./data``."""
    return _base() / "data"


def data_dir() -> Path:
    """``$LAYERINF_DATA_DIR``, else `default_data_dir`."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else default_data_dir()


def artifacts_dir() -> Path:
    """``$LAYERINF_ARTIFACTS``, else the checkout's ``artifacts/``, else ``./artifacts``."""
    env = os.environ.get(ARTIFACTS_ENV)
    return Path(env) if env else _base() / "artifacts"


def sources_json() -> Path:
    """The recorded provenance and sha256 values of the offline corpora, shipped with the package."""
    return _PACKAGE / "tasks" / "sources.json"


def book_root() -> Path:
    """The checkout the book is built in; `ConfigError` for an installed package without one."""
    root = checkout_root()
    if root is None:
        raise ConfigError(
            f"the book commands need a checkout of the layerinf repository (notebooks/, book/, _toc.yml); "
            f"run them in one or set {ROOT_ENV} to its path"
        )
    return root
