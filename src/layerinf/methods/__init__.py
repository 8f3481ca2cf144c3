"""The registry of influence methods: one file per method in this package, each calling `register`.

A method is a `Method` spec: its name (what configs, caches and tables use), its label and colour
(plots and tables), whether it exists on the word embedding only, and how it scores one module.
Two kinds of scorer fit:

- ``from_products``: methods that need inner products only (TracIn, cosine, DataInf, TracIn-WE).
  They receive `Products` — D = ⟨g_i, v_j⟩ [n, m], the squared norms, optionally the training Gram
  matrix — which `layerinf.influence` computes in float64 for dense tensors and sparse
  word-embedding rows alike, so such a method scores every module without further code.
- ``from_gradients``: methods that need the gradients themselves (preconditioners: diagonal Fisher,
  K-FAC, EK-FAC). They receive one module's dense training and query gradients [n, p] and [m, p]
  and return [n, m]; ``from_sparse`` does the same for the sparse word-embedding rows (without it,
  the method skips the word embedding).

Every scorer also receives ``damping``: the run's ``datainf_lambda`` (a damping relative to the
mean squared gradient entry of the module), the only hyperparameter in the influence cache key.

Importing this package is light on purpose: `layerinf.config` derives its choice lists from it
before NumPy is imported, so a method file imports NumPy inside its functions, never at the top.
The files are imported in `BUILTIN` order (the paper's methods, in the order of its tables), then
every other public module of the package in alphabetical order: adding a method is one new file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerinf.registry import Registry
from layerinf.registry import fail as _fail

if TYPE_CHECKING:
    import numpy as np

    from layerinf.gradient_types import Gradients, SparseRows

#: The paper's methods, registered first and in this order (the order of `config.METHODS`).
BUILTIN: tuple[str, ...] = ("tracin", "cosine", "datainf", "tracin_we", "tracin_we_top10")


@dataclass(frozen=True)
class Products:
    """Inner products of one module's gradients, all float64.

    dots: [n, m] ⟨g_i, v_j⟩. train_sq [n], query_sq [m]: ‖g_i‖², ‖v_j‖² (zeros unless the method
    asked for norms). gram: [n, n] ⟨g_i, g_k⟩ if the method asked for it, else None; for gradients
    read from a store an object that supports only ``gram @ Y`` (`layerinf.gram`: never held whole).
    n_params: entries of the module's tensor (for the word embedding: vocabulary × hidden).
    """

    dots: np.ndarray
    train_sq: np.ndarray
    query_sq: np.ndarray
    gram: np.ndarray | None
    n_params: int


#: (products, damping) -> [n, m].
ProductScorer = Callable[[Products, float], "np.ndarray"]
#: (train [n, p], query [m, p], damping) -> [n, m].
GradientScorer = Callable[["np.ndarray", "np.ndarray", float], "np.ndarray"]
#: (train rows, query rows, n_params, damping) -> [n, m].
SparseScorer = Callable[["SparseRows", "SparseRows", int, float], "np.ndarray"]


@dataclass(frozen=True)
class Method:
    """One influence method: metadata for configs, plots and tables, and how it scores a module.

    name: the identifier used everywhere (configs, cache entries, tables).
    label, colour: how plots and tables show it (a Matplotlib colour name, e.g. ``"tab:blue"``).
    description: one or two sentences for documentation and help texts.
    from_products + needs_norms / needs_gram: an inner-product method (see the package docstring).
    from_gradients (+ from_sparse for the word embedding): a method that needs the gradients.
    we_only: scores the word-embedding matrix only (its setups need a group containing WE).
    we_rows: which word-embedding rows of a `Gradients` it scores (default: all of them).
    default: computed by a run unless its config says otherwise (`config.METHODS`); a new method
    stays False so that the book's grids and tables do not change.
    """

    name: str
    label: str
    colour: str
    description: str
    from_products: ProductScorer | None = None
    needs_norms: bool = False
    needs_gram: bool = False
    from_gradients: GradientScorer | None = None
    from_sparse: SparseScorer | None = None
    we_only: bool = False
    we_rows: Callable[[Gradients], SparseRows] | None = None
    default: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.islower()):
            _fail(f"Method name={self.name!r} must be a lower-case Python identifier, e.g. 'diag_fisher'")
        if (self.from_products is None) == (self.from_gradients is None):
            _fail(f"Method {self.name!r}: give exactly one of from_products= or from_gradients=")
        if self.from_products is None and (self.needs_norms or self.needs_gram):
            _fail(f"Method {self.name!r}: needs_norms/needs_gram are allowed only with from_products=")
        if self.from_products is not None and self.from_sparse is not None:
            _fail(f"Method {self.name!r}: from_sparse= is allowed only with from_gradients=")
        if (self.we_only or self.we_rows is not None) and not self.scores_we:
            _fail(f"Method {self.name!r}: we_only/we_rows need a word-embedding scorer (from_products or from_sparse)")

    @property
    def scores_we(self) -> bool:
        """Whether the method can score the sparse word-embedding gradients."""
        return self.from_products is not None or self.from_sparse is not None


_REGISTRY: Registry[Method] = Registry("method", Method, "method")
#: Add a spec (called once, at the bottom of its own file).
register = _REGISTRY.register
#: The spec of one name; `ConfigError` naming the parameter and the registered names otherwise.
get = _REGISTRY.get
#: Every registered name / spec, in registration order.
names = _REGISTRY.names
specs = _REGISTRY.specs


_REGISTRY.load(__name__, __path__, BUILTIN)
