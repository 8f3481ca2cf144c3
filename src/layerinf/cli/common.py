"""What every command shares: the one-line failure and the artifact root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from layerinf.config import ConfigError

#: Exit status of a bad parameter or configuration (as click's usage errors).
EXIT_USAGE = 2


def _fail(message: str) -> NoReturn:
    raise ConfigError(message)


def _use_artifacts(artifacts: Path | None) -> Path:
    """The artifact root: --artifacts (exported as LAYERINF_ARTIFACTS for everything this process
    starts), else ``$LAYERINF_ARTIFACTS`` or the repository's ``artifacts/``."""
    from layerinf.cache import artifacts_root

    if artifacts is not None:
        os.environ["LAYERINF_ARTIFACTS"] = str(artifacts.expanduser().resolve())
    return artifacts_root()
