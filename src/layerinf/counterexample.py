"""The counterexample behind claim 1: cancellation is not a reliable guide to layer choice.

Two training examples, a clean z_c and its label-flipped twin z_n, and one query, seen through two
parameter blocks θ and ω. With TracIn (no learning-rate factor) the score of a block is the dot
product of the query gradient and the training gradient, and scores add over blocks:
I_{θ,ω}(z) = ⟨v_θ, g_θ(z)⟩ + ⟨v_ω, g_ω(z)⟩.
**Sign convention: larger score = more beneficial; the noisy twin should score lowest.**

Defaults (the spec's numbers): θ gradients agree (g_c = (1, 0.2), g_n = (0.9, 0.3), no
cancellation), ω gradients are opposite (g_c = (1, 0), g_n = (−1, 0): C(ω) = ∞), query
v_θ = (0.5, 0.5), v_ω = (1, 0). θ alone scores both examples 0.6 (separation 0); θ+ω scores the
clean one 1.6 and the noisy one −0.4 (separation 2.0). The very opposition that makes ω "cancel"
is what separates the noisy example from the clean one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from layerinf.config import ConfigError
from layerinf.metrics import cancellation

#: Names of the three views, in the order `evaluate` returns them.
BLOCKS: tuple[str, ...] = ("theta", "omega", "theta+omega")


@dataclass(frozen=True)
class Counterexample:
    """Gradients of the clean and noisy training example and of the query, per block (tuples of floats)."""

    theta_clean: tuple[float, ...] = (1.0, 0.2)
    theta_noisy: tuple[float, ...] = (0.9, 0.3)
    omega_clean: tuple[float, ...] = (1.0, 0.0)
    omega_noisy: tuple[float, ...] = (-1.0, 0.0)
    v_theta: tuple[float, ...] = (0.5, 0.5)
    v_omega: tuple[float, ...] = (1.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("theta_clean", "theta_noisy", "omega_clean", "omega_noisy", "v_theta", "v_omega"):
            value = tuple(float(x) for x in getattr(self, name))
            if not value or not all(math.isfinite(x) for x in value):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a non-empty tuple of finite floats")
            object.__setattr__(self, name, value)
        for block in ("theta", "omega"):
            names = (f"{block}_clean", f"{block}_noisy", f"v_{block}")
            sizes = {name: len(getattr(self, name)) for name in names}
            if len(set(sizes.values())) != 1:
                raise ConfigError(f"the {block} block needs equally long gradients; got lengths {sizes}")

    def gradients(self, block: str) -> tuple[np.ndarray, np.ndarray]:
        """(training gradients [2, p] with rows clean, noisy; query gradient [p]) of one view."""
        if block == "theta":
            return np.array([self.theta_clean, self.theta_noisy]), np.array(self.v_theta)
        if block == "omega":
            return np.array([self.omega_clean, self.omega_noisy]), np.array(self.v_omega)
        if block == "theta+omega":
            g_t, v_t = self.gradients("theta")
            g_o, v_o = self.gradients("omega")
            return np.hstack([g_t, g_o]), np.concatenate([v_t, v_o])
        raise ConfigError(f"block={block!r} is not allowed; choose one of: {', '.join(BLOCKS)}")

    def scaled(self, factor: float) -> Counterexample:
        """The same example with the ω training gradients (clean and noisy) multiplied by ``factor``."""
        return Counterexample(
            theta_clean=self.theta_clean,
            theta_noisy=self.theta_noisy,
            omega_clean=tuple(factor * x for x in self.omega_clean),
            omega_noisy=tuple(factor * x for x in self.omega_noisy),
            v_theta=self.v_theta,
            v_omega=self.v_omega,
        )


def evaluate(ce: Counterexample | None = None) -> dict[str, dict[str, float]]:
    """TracIn scores, separation and cancellation ratio per view.

    Returns {view: {"clean", "noisy", "separation", "cancellation"}} for the views ``theta``,
    ``omega`` and ``theta+omega``: the scores ⟨v, g⟩ of the clean and the noisy example,
    separation = clean − noisy, and the cancellation ratio C of the view's two training gradients
    (`layerinf.metrics.cancellation`; inf when they cancel exactly, NaN when all are zero).
    ``pd.DataFrame(evaluate(ce)).T`` is a one-line table.
    """
    ce = Counterexample() if ce is None else ce
    out: dict[str, dict[str, float]] = {}
    for block in BLOCKS:
        grads, query = ce.gradients(block)
        clean, noisy = (float(x) for x in grads @ query)
        out[block] = {
            "clean": clean,
            "noisy": noisy,
            "separation": clean - noisy,
            "cancellation": float(cancellation(grads)["ratio"]),
        }
    return out


def sweep(ce: Counterexample | None, factors: Iterable[float] | np.ndarray) -> pd.DataFrame:
    """Scale the ω training gradients by each factor and re-evaluate.

    One row per factor with columns ``factor``, ``clean``, ``noisy``, ``separation`` (of θ+ω),
    ``cancellation_theta``, ``cancellation_omega``, ``cancellation_total`` (θ+ω). With the defaults
    the separation is 2·factor while C(ω) stays infinite: more cancellation-prone signal, better
    separation.
    """
    ce = Counterexample() if ce is None else ce
    values = np.asarray(list(factors) if not isinstance(factors, np.ndarray) else factors, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ConfigError(f"factors={factors!r} must be a non-empty 1-d sequence of finite numbers")
    rows = []
    for factor in values:
        result = evaluate(ce.scaled(float(factor)))
        total = result["theta+omega"]
        rows.append(
            {
                "factor": float(factor),
                "clean": total["clean"],
                "noisy": total["noisy"],
                "separation": total["separation"],
                "cancellation_theta": result["theta"]["cancellation"],
                "cancellation_omega": result["omega"]["cancellation"],
                "cancellation_total": total["cancellation"],
            }
        )
    return pd.DataFrame(rows)
