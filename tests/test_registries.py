"""The method and aggregation registries: order, what is derived from them, and the extension hooks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from layerinf import aggregation, aggregations, config, influence, methods, plotting
from layerinf.aggregations import Aggregation
from layerinf.config import ConfigError
from layerinf.methods import Method
from test_influence import make_grads


def test_registration_order_and_derived_choice_lists() -> None:
    paper = ("tracin", "cosine", "datainf", "tracin_we", "tracin_we_top10")
    assert methods.names()[: len(paper)] == paper and methods.names()[len(paper)] == "diag_fisher"
    assert config.METHODS == paper and config.METHOD_CHOICES == methods.names()
    assert config.WE_ONLY_METHODS == ("tracin_we", "tracin_we_top10")
    assert (
        aggregations.names() == config.AGGREGATIONS == config.AGGREGATION_CHOICES == ("mean", "mean_c", "rank", "vote")
    )
    assert aggregation.AGGREGATIONS == config.AGGREGATIONS


def test_config_imports_neither_numpy_nor_torch() -> None:
    code = "import sys, layerinf.config; print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plot_labels_and_colours_come_from_the_specs() -> None:
    from matplotlib.colors import to_rgb

    for spec in (*methods.specs(), *aggregations.specs()):
        assert plotting.label(spec.name) == spec.label
        assert plotting.COLOURS[spec.name] == to_rgb(spec.colour)


def test_unknown_names_are_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"method='tracn'.*diag_fisher"):
        methods.get("tracn")
    with pytest.raises(ConfigError, match=r"how='median'.*mean, mean_c, rank, vote"):
        aggregations.get("median")
    with pytest.raises(ConfigError, match="hows=\\[\\] is empty"):
        aggregations.aggregate_many(np.ones((1, 2, 2)), [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of from_products= or from_gradients="),
        ({"from_gradients": lambda t, q, d: t @ q.T, "needs_gram": True}, "needs_norms/needs_gram"),
        ({"from_gradients": lambda t, q, d: t @ q.T, "we_only": True}, "we_only/we_rows"),
        ({"name": "Bad-Name", "from_gradients": lambda t, q, d: t @ q.T}, "lower-case Python identifier"),
    ],
)
def test_malformed_method_specs_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Method(**{"name": "x", "label": "X", "colour": "black", "description": "", **kwargs})


def test_a_method_is_registered_once() -> None:
    with pytest.raises(ConfigError, match="registered twice"):
        methods.register(methods.get("tracin"))
    with pytest.raises(ConfigError, match="registered twice"):
        aggregations.register(aggregations.get("vote"))


def test_a_gradient_method_without_sparse_scorer_skips_the_word_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(methods._REGISTRY, "_specs", dict(methods._REGISTRY._specs))
    methods.register(Method("scaled", "Scaled", "black", "2 × TracIn", from_gradients=lambda t, q, d: 2.0 * (t @ q.T)))
    train, query = make_grads(5), make_grads(3)
    scores = influence.compute_scores(train, query, "scaled", out_dtype=np.float64, progress=False)
    assert "we" not in scores.names and len(scores.names) == len(train.infos) - 1
    tracin = influence.compute_scores(train, query, "tracin", out_dtype=np.float64, progress=False).group("cl")
    np.testing.assert_allclose(scores.group("cl").values, 2 * tracin.values, rtol=1e-12)
    monkeypatch.setattr(config, "METHOD_CHOICES", (*config.METHOD_CHOICES, "scaled"))
    with pytest.raises(ConfigError, match="does not score the word embedding"):
        config.check_setup_parts("scaled", "we", "mean", ("scaled",))
    config.check_setup_parts("scaled", "all", "mean", ("scaled",))


def test_a_new_aggregation_is_dispatched_and_shares_the_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aggregations._REGISTRY, "_specs", dict(aggregations._REGISTRY._specs))
    calls = []
    original = aggregation._rank_statistics

    def counted(*args, **kwargs):
        calls.append(kwargs["need_rank"])
        return original(*args, **kwargs)

    monkeypatch.setattr(aggregation, "_rank_statistics", counted)
    both = Aggregation(
        "rank_minus_vote",
        "R − V",
        "black",
        "",
        lambda s: s.rank_sums() - s.vote_sums(),
        uses_k=True,
        statistics=("ranks", "votes"),
    )
    aggregations.register(both)
    values = np.random.default_rng(0).normal(size=(2, 7, 3))
    out = aggregation.aggregate_many(values, ["rank", "rank_minus_vote", "vote"], k=2)
    assert calls == [True]  # one arg-sort of the columns for all three
    np.testing.assert_array_equal(out["rank_minus_vote"], out["rank"] * 6 + out["vote"])
    assert not aggregations.get("rank_minus_vote").default


def test_an_undeclared_statistic_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aggregations._REGISTRY, "_specs", dict(aggregations._REGISTRY._specs))
    aggregations.register(Aggregation("sloppy", "S", "black", "", lambda s: s.rank_sums().astype(float)))
    with pytest.raises(ConfigError, match="statistics=\\('ranks',\\)"):
        aggregation.aggregate(np.ones((1, 3, 2)), "sloppy")
    with pytest.raises(ConfigError, match="statistics='median' is not allowed"):
        Aggregation("x", "X", "black", "", lambda s: s, statistics=("median",))
