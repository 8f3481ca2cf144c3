"""The registry of aggregations: one file per aggregation in this package, each calling `register`.

An aggregation turns per-module scores ``values`` [modules, n, m] into one float64 score per
training example [n], keeping the sign convention (larger = more beneficial, harmful = lowest).
It is a pure function of a `layerinf.aggregation.Selection` — the validated values, the selected
queries, Vote's k, and the column statistics several aggregations share (module sums, the ranks
of the arg-sorted columns), each computed once per `aggregate_many` call for all aggregations
that ask for it (``statistics``).

Importing this package is light on purpose: `layerinf.config` derives its choice lists from it
before NumPy is imported, so an aggregation file imports NumPy inside its function, never at the top.
The files are imported in `BUILTIN` order (the paper's aggregations), then every other public
module of the package in alphabetical order: adding an aggregation is one new file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerinf.registry import Registry
from layerinf.registry import fail as _fail

if TYPE_CHECKING:
    import numpy as np

    from layerinf.aggregation import Selection

#: The paper's aggregations, registered first and in this order (the order of `config.AGGREGATIONS`).
BUILTIN: tuple[str, ...] = ("mean", "mean_c", "rank", "vote")
#: Column statistics a `Selection` can share between the aggregations of one call.
STATISTICS: tuple[str, ...] = ("ranks", "votes")


@dataclass(frozen=True)
class Aggregation:
    """One aggregation: metadata for configs, plots and tables, and the function that computes it.

    name: the identifier used everywhere (configs, setups ``method/group/aggregation``, tables).
    label, colour: how plots and tables show it (a Matplotlib colour name, e.g. ``"tab:gray"``).
    description: one or two sentences for documentation and help texts.
    compute: `Selection` -> float64 [n]; a pure function (NumPy in, NumPy out).
    uses_query_mask: reads the selected queries (``mean`` ignores the mask: False).
    uses_k: reads Vote's k (validated against n only if some aggregation of the call uses it).
    statistics: the shared column statistics it reads (`STATISTICS`), computed in one pass.
    default: computed by a run unless told otherwise (`config.AGGREGATIONS`); a new aggregation
    stays False so that the book's grids and tables do not change.
    """

    name: str
    label: str
    colour: str
    description: str
    compute: Callable[[Selection], np.ndarray]
    uses_query_mask: bool = True
    uses_k: bool = False
    statistics: tuple[str, ...] = ()
    default: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.islower()):
            _fail(f"Aggregation name={self.name!r} must be a lower-case Python identifier, e.g. 'median'")
        if not callable(self.compute):
            _fail(f"Aggregation {self.name!r}: compute= must be a function of a Selection")
        for stat in self.statistics:
            if stat not in STATISTICS:
                _fail(f"Aggregation {self.name!r}: statistics={stat!r} is not allowed; choose from {STATISTICS}")


_REGISTRY: Registry[Aggregation] = Registry("aggregation", Aggregation, "how")
#: Add a spec (called once, at the bottom of its own file).
register = _REGISTRY.register
#: The spec of one name; `ConfigError` naming the parameter and the registered names otherwise.
get = _REGISTRY.get
#: Every registered name / spec, in registration order.
names = _REGISTRY.names
specs = _REGISTRY.specs


def aggregate_many(
    values: np.ndarray,
    hows: Sequence[str],
    *,
    k: int | None = None,
    query_mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Several aggregations of ``values`` [modules, n, m] at once -> {how: float64 [n]}, in the
    order of `hows`; the statistics they share are computed once."""
    from layerinf.aggregation import Selection  # NumPy: only when something is computed

    hows = list(hows)
    if not hows:
        _fail(f"hows=[] is empty; choose one or more of: {', '.join(names())}")
    chosen = {how: get(how) for how in hows}
    selection = Selection.build(values, list(chosen.values()), k=k, query_mask=query_mask)
    out = {name: spec.compute(selection) for name, spec in chosen.items()}
    return {how: out[how] for how in hows}


def aggregate(
    values: np.ndarray, how: str, *, k: int | None = None, query_mask: np.ndarray | None = None
) -> np.ndarray:
    """One aggregation of ``values`` [modules, n, m] -> float64 [n]."""
    get(how)
    return aggregate_many(values, [how], k=k, query_mask=query_mask)[how]


_REGISTRY.load(__name__, __path__, BUILTIN)
