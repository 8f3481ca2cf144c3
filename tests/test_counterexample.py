"""The claim-1 counterexample reproduces the spec's numbers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from layerinf.config import ConfigError
from layerinf.counterexample import Counterexample, evaluate, sweep


def test_spec_numbers() -> None:
    out = evaluate(Counterexample())
    # θ alone: clean 1·0.5 + 0.2·0.5 = 0.6, noisy 0.9·0.5 + 0.3·0.5 = 0.6 -> no separation
    assert out["theta"]["clean"] == pytest.approx(0.6)
    assert out["theta"]["noisy"] == pytest.approx(0.6)
    assert out["theta"]["separation"] == pytest.approx(0.0)
    # θ gradients agree: Σ|g| = 1.9 + 0.5 = |Σg| -> C = 1
    assert out["theta"]["cancellation"] == pytest.approx(1.0)
    # ω alone: clean 1, noisy −1; Σ|g| = 2, |Σg| = 0 -> C = ∞
    assert out["omega"]["clean"] == pytest.approx(1.0)
    assert out["omega"]["noisy"] == pytest.approx(-1.0)
    assert out["omega"]["cancellation"] == math.inf
    # θ+ω: clean 1.6, noisy −0.4, separation 2.0; C = (2.4 + 2) / (2.4 + 0) = 11/6
    assert out["theta+omega"]["clean"] == pytest.approx(1.6)
    assert out["theta+omega"]["noisy"] == pytest.approx(-0.4)
    assert out["theta+omega"]["separation"] == pytest.approx(2.0)
    assert out["theta+omega"]["cancellation"] == pytest.approx(11 / 6)
    assert evaluate() == out  # None means the defaults
    table = pd.DataFrame(out).T
    assert list(table.index) == ["theta", "omega", "theta+omega"]


def test_custom_example() -> None:
    # θ in 1-d: clean 2, noisy 1 (query 1) -> separation 1; ω in 3-d with partial cancellation.
    ce = Counterexample(
        theta_clean=(2.0,),
        theta_noisy=(1.0,),
        v_theta=(1.0,),
        omega_clean=(1.0, 1.0, 0.0),
        omega_noisy=(-1.0, 1.0, 0.0),
        v_omega=(2.0, 0.0, 5.0),
    )
    out = evaluate(ce)
    assert out["theta"]["separation"] == pytest.approx(1.0)
    assert out["omega"]["clean"] == pytest.approx(2.0)
    assert out["omega"]["noisy"] == pytest.approx(-2.0)
    # ω: Σ|g| = 2 + 2 + 0 = 4, |Σg| = 0 + 2 + 0 = 2 -> C = 2
    assert out["omega"]["cancellation"] == pytest.approx(2.0)
    assert out["theta+omega"]["separation"] == pytest.approx(5.0)


def test_sweep_separation_grows_while_cancellation_stays_infinite() -> None:
    table = sweep(Counterexample(), np.array([0.5, 1.0, 2.0, 4.0]))
    assert list(table.columns) == [
        "factor", "clean", "noisy", "separation", "cancellation_theta", "cancellation_omega", "cancellation_total",
    ]  # fmt: skip
    np.testing.assert_allclose(table["separation"], 2 * table["factor"])  # θ contributes 0
    assert (table["cancellation_omega"] == math.inf).all()
    np.testing.assert_allclose(table["cancellation_theta"], 1.0)
    # C(θ+ω) = (2.4 + 2·factor) / 2.4
    np.testing.assert_allclose(table["cancellation_total"], (2.4 + 2 * table["factor"]) / 2.4)
    zero = sweep(None, [0.0])
    assert math.isnan(zero.loc[0, "cancellation_omega"])  # all-zero ω: 0/0
    assert zero.loc[0, "separation"] == pytest.approx(0.0)


def test_validation() -> None:
    with pytest.raises(ConfigError, match="theta block needs equally long"):
        Counterexample(theta_clean=(1.0, 2.0, 3.0))
    with pytest.raises(ConfigError, match="v_omega"):
        Counterexample(v_omega=(1.0, math.nan))
    with pytest.raises(ConfigError, match="factors"):
        sweep(None, [])
    with pytest.raises(ConfigError, match="block="):
        Counterexample().gradients("phi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Counterexample().theta_clean = (0.0, 0.0)  # type: ignore[misc]
