"""layerinf: per-module training-data influence for language models.

The companion package of the book reproducing Vitel & Chhabra, "First is Not Really Better Than
Last" (ICLR 2026). Sign convention everywhere: larger score = more beneficial; the most harmful
training examples have the lowest scores and removal drops the lowest.

The public API is `__all__`::

    import layerinf as li

    exp = li.define_experiment("default", ["minilm"], ["bbc"], [0, 1], setups=["tracin/block2/vote"])
    result = li.run_experiment(exp)            # ExperimentResult: .detection, .retraining, .runs, ...
    verdicts = li.decide_all(result.detection, result.retraining, result.cancellation)
    flagged = li.explain(result.first, groups=["block2", "we"], k=5)   # the examples themselves: .top, ...

Importing the package is cheap: the names are imported on first use, and the NumPy-only modules
(config, scores, aggregation, metrics, comparison) never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name → (module, attribute in it).
_EXPORTS: dict[str, tuple[str, str]] = {
    "ConfigError": ("layerinf.config", "ConfigError"),
    "RunConfig": ("layerinf.config", "RunConfig"),
    "preset": ("layerinf.config", "preset"),
    "Setup": ("layerinf.setups", "Setup"),
    "Experiment": ("layerinf.experiment", "Experiment"),
    "define_experiment": ("layerinf.experiment", "define"),
    "load_experiment": ("layerinf.experiment", "load"),
    "run_experiment": ("layerinf.execution", "run_experiment"),
    "ExperimentResult": ("layerinf.results", "ExperimentResult"),
    "RunResult": ("layerinf.results", "RunResult"),
    "run": ("layerinf.runner", "run"),
    "ModuleScores": ("layerinf.scores", "ModuleScores"),
    "decide_all": ("layerinf.verdicts", "decide_all"),
    "explain": ("layerinf.examples", "explain"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later look-ups do not come back here
        return value
    raise AttributeError(f"module 'layerinf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
