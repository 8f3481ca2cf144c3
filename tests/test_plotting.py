"""Every figure of the book on small synthetic inputs: FIG_WIDTH inches wide, a PNG of at least
1,100 px at the saved dpi, no text under MIN_FONT pt; the layer-wise curves of a 30-layer model
have tick labels that keep apart and a y axis within [0, 1]."""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from layerinf import counterexample, metrics, plotting, verdicts
from layerinf.plotting.style import DPI, FIG_WIDTH, MIN_FONT, MODULE_TYPES
from layerinf.tools import benchreport
from test_verdicts import synthetic

DET, RET, CANC = synthetic(4, +1, 0.004)
GROUP_LABELS = {"we": "WE", "block1": "layers 0–7", "block2": "layers 8–15", "block3": "layers 16–22",
                "block4": "layers 23–29", "cl": "CL", "all": "all"}  # fmt: skip


def module_table(n_layers: int, methods=("tracin", "cosine", "datainf"), runs: int = 3, seed: int = 0) -> pd.DataFrame:
    """`tables.module_table` rows of `runs` runs: WE, CL and the four LoRA module types per layer."""
    rng = np.random.default_rng(seed)
    rows = []
    for method, s in itertools.product(methods, range(runs)):
        base = {"method": method, "aggregation": "mean", "model": "m", "task": "a", "seed": s}
        for kind, layer in itertools.product(MODULE_TYPES, range(n_layers)):
            v = float(np.clip(0.35 + 0.15 * np.sin(3 * layer / n_layers) + rng.normal(0, 0.06), 0, 1))
            rows.append({**base, "module": f"{kind}.{layer}", "layer": layer, "kind": kind, "ndr@30": v, "auc_ndr": v})
        for kind in ("we", "cl"):
            v = float(np.clip(0.4 + rng.normal(0, 0.1), 0, 1))
            rows.append({**base, "module": kind, "layer": np.nan, "kind": kind, "ndr@30": v, "auc_ndr": v})
    return pd.DataFrame(rows)


def comparisons(unit: str) -> list:
    claims = (
        verdicts.claim1(DET, RET, CANC),
        verdicts.claim2(DET, RET),
        verdicts.claim3(DET, RET),
        verdicts.claim4(DET, RET, CANC),
    )
    rows = [c for r in claims for c in r.comparisons + r.context if c.unit == unit]
    assert rows, unit
    return rows


def noisy_and_scores(n: int = 200, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    noisy = rng.random(n) < 0.2
    scores = {
        f"TracIn, {GROUP_LABELS[g]}": rng.normal(0, 1, n) - k * noisy for k, g in enumerate(("we", "block2", "cl"))
    }
    return noisy, scores


def ndr_curves() -> Figure:
    noisy, scores = noisy_and_scores()
    curves = {f"{name}, {how}": metrics.ndr_curve(s + 0.3 * j, noisy) for name, s in scores.items() for j, how in
              enumerate(("Mean", "Vote"))}  # fmt: skip
    return plotting.ndr_curves(curves, 0.2)


def runs_lines() -> Figure:
    joined = verdicts.joined(DET, RET, CANC)
    tr = joined[(joined.method == "tracin") & (joined.aggregation == "mean")].copy()
    none = RET[RET.setup == "none"].set_index(["model", "task", "seed"])[verdicts.ACC].rename("none")
    tr = tr.join(none, on=["model", "task", "seed"])
    tr["change"] = 100 * (tr[verdicts.ACC] - tr["none"])
    return plotting.runs_lines(tr, "cancellation", "change", "cancellation ratio C of the group (log scale)",
                               "accuracy change vs no removal (points)", logx=True)  # fmt: skip


def scatter() -> Figure:
    joined = verdicts.joined(DET, RET, CANC)
    return plotting.scatter_with_rho(joined, "ndr@30", verdicts.ACC, "aggregation", "NDR@30 of the setup's scores",
                                     "accuracy after removal + retraining")  # fmt: skip


def correlation_heatmap() -> Figure:
    groups = ["we", "block1", "block2", "block3", "block4", "cl"]
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, len(groups)))
    matrix = pd.DataFrame(a, columns=groups).corr(method="spearman")
    return plotting.correlation_heatmap(matrix, "TracIn scores of noisy examples: Spearman ρ between groups",
                                        GROUP_LABELS)  # fmt: skip


def retraining_boxes() -> Figure:
    sub = RET[RET.method.isin(["tracin", "tracin_we", "random", "oracle", "none"])]
    return plotting.retraining_boxes(sub, aggregation="mean", group_labels=GROUP_LABELS, noise_floor=0.006)


def vote_k_heatmap(n_layers: int = 6) -> Figure:
    rng = np.random.default_rng(2)
    rows = ["we", *[f"layer{i}" for i in range(n_layers)], "cl"]
    fracs = [round(0.1 * i, 1) for i in range(1, 11)]
    table = pd.DataFrame(
        [{"group": g, "k_frac": f, "ndr@30": float(rng.uniform(0.6, 0.9)), "seed": s}
         for g in rows for f in fracs for s in range(2)]
    )  # fmt: skip
    return plotting.vote_k_heatmap(
        table, {"we": "WE", "cl": "CL", **{f"layer{i}": f"layer {i}" for i in range(n_layers)}}
    )


def gradient_costs() -> Figure:
    raw = {
        model: {"sizes": {"64": {c: {"median_s": t * scale, "runs_s": [t * scale] * 3}
                                 for c, t in (("batched", 1.0), ("vmap", 2.5), ("loop", 6.0), ("train", 0.4))}}}
        for model, scale in (("tiny-bert", 1.0), ("SmolLM2-135M", 8.0))
    }  # fmt: skip
    return plotting.gradient_costs(benchreport.gradient_cost_frame(raw))


def scaling() -> Figure:
    rows = [
        {"n_train": n, "n_query": 16, "run_s": 2.0 * n, "peak_rss_mb": 900 + n, "gradient_bytes": 4096 * n,
         "stages_s": {"load": 3.0, "finetune": 0.5 * n, "gradients": 0.8 * n, "influence/tracin": 0.1 * n}}
        for n in (128, 256, 512, 1024)
    ]  # fmt: skip
    return plotting.scaling(benchreport.scaling_frame(rows))


def noise_histograms(n_panels: int = 3) -> Figure:
    noisy, scores = noisy_and_scores()
    return plotting.noise_histograms(dict(list(scores.items())[:n_panels]), noisy)


def aggregation_differences() -> Figure:
    return plotting.aggregation_differences(verdicts.aggregation_differences(RET), group_labels=GROUP_LABELS)


#: name → figure builder; the names are those of the rendered files in `render` below.
FIGURES: dict[str, Callable[[], Figure]] = {
    "layerwise_ndr_6": lambda: plotting.layerwise_ndr(module_table(6), 6),
    "layerwise_ndr_30": lambda: plotting.layerwise_ndr(module_table(30, runs=2), 30),
    "layerwise_ndr_1method": lambda: plotting.layerwise_ndr(module_table(2, ("tracin",), runs=2), 2),
    "comparisons_forest_accuracy": lambda: plotting.comparisons_forest(comparisons("accuracy"), band=(-0.006, 0.006)),
    "comparisons_forest_rho": lambda: plotting.comparisons_forest(
        comparisons("rho"), band=(-0.5, 0.5), band_label="|ρ| < 0.5: not a reliable guide", title="Spearman ρ"
    ),
    "scatter_with_rho": scatter,
    "runs_lines": runs_lines,
    "counterexample_sweep": lambda: plotting.counterexample_sweep(counterexample.sweep(None, np.linspace(0, 2, 9))),
    "ndr_curves": ndr_curves,
    "noise_histograms": noise_histograms,
    "noise_histograms_2": lambda: noise_histograms(2),
    "correlation_heatmap": correlation_heatmap,
    "retraining_boxes": retraining_boxes,
    "aggregation_differences": aggregation_differences,
    "vote_k_heatmap": vote_k_heatmap,
    "vote_k_heatmap_30": lambda: vote_k_heatmap(30),
    "gradient_costs": gradient_costs,
    "scaling": scaling,
}


def png_size(fig: Figure, **kwargs) -> tuple[int, int]:
    """(width, height) in px of the figure's PNG at the saved dpi (rcParams["savefig.dpi"])."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **kwargs)
    return struct.unpack(">II", buf.getvalue()[16:24])


def visible_texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


@pytest.fixture
def figure(request: pytest.FixtureRequest):
    fig = FIGURES[request.param]()
    yield fig
    plt.close(fig)


@pytest.mark.parametrize("figure", list(FIGURES), indirect=True)
def test_every_figure_is_text_width_and_legible(figure: Figure) -> None:
    assert figure.get_size_inches()[0] == pytest.approx(FIG_WIDTH)
    assert plt.rcParams["savefig.dpi"] == DPI and figure.dpi == DPI
    width, _ = png_size(figure)
    assert width >= 1100
    # what the notebook's inline backend shows: the same figure cropped to its content
    tight, _ = png_size(figure, bbox_inches="tight")
    assert tight >= 1100
    small = [(t.get_text(), t.get_fontsize()) for t in visible_texts(figure) if t.get_fontsize() < MIN_FONT]
    assert not small


def test_layerwise_ndr_with_30_layers_keeps_tick_labels_apart_and_fractions_in_unit_range() -> None:
    fig = FIGURES["layerwise_ndr_30"]()
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert len(axes) == 3  # one panel per method, one per row
        assert all(ax.get_position().width * FIG_WIDTH > 5 for ax in axes)
        labels = []
        for ax in axes:
            lo, hi = ax.get_ylim()
            assert 0 <= lo < hi <= 1
            labels += [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        texts = [t.get_text() for t in labels]
        assert {"WE", "CL"} <= set(texts) and len(texts) >= 6
        boxes = [t.get_window_extent(renderer) for t in labels]
        for (a, ta), (b, tb) in itertools.combinations(zip(boxes, texts, strict=True), 2):
            assert not a.overlaps(b), (ta, tb)
        # every interval drawn is within [0, 1]
        for ax in axes:
            for coll in ax.collections:
                for path in coll.get_paths():
                    ys = path.vertices[:, 1]
                    assert ys.min() >= 0 and ys.max() <= 1
    finally:
        plt.close(fig)


def test_layerwise_ndr_clips_intervals_of_few_runs_to_unit_range() -> None:
    """Two runs: the t interval of WE and CL is far wider than [0, 1]; what is drawn is not."""
    fig = plotting.layerwise_ndr(module_table(2, ("tracin",), runs=2, seed=3), 2)
    try:
        ax = fig.axes[0]
        assert 0 <= ax.get_ylim()[0] < ax.get_ylim()[1] <= 1
        for line in ax.lines:
            ys = np.asarray(line.get_ydata(), dtype=float)
            if len(ys):
                assert np.nanmin(ys) >= 0 and np.nanmax(ys) <= 1
        for coll in ax.collections:
            for seg in getattr(coll, "get_segments", list)():
                assert seg[:, 1].min() >= 0 and seg[:, 1].max() <= 1
    finally:
        plt.close(fig)


def test_category_labels_do_not_overlap() -> None:
    for name in ("retraining_boxes", "aggregation_differences", "correlation_heatmap"):
        fig = FIGURES[name]()
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            ax = fig.axes[0]
            boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
            assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), name
        finally:
            plt.close(fig)


def test_noise_histograms_put_at_most_two_panels_per_row() -> None:
    fig = FIGURES["noise_histograms"]()
    try:
        fig.canvas.draw()
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 3
        assert all(ax.get_position().width * FIG_WIDTH > 2.8 for ax in visible)
        assert all(0 <= ax.get_ylim()[0] < ax.get_ylim()[1] <= 1 for ax in visible)
    finally:
        plt.close(fig)


def render(directory: str = "/tmp/figs", names: list[str] | None = None) -> None:
    """Write every figure (or `names`) to `directory`/<name>.png as the book shows it (manual check)."""
    from pathlib import Path

    Path(directory).mkdir(parents=True, exist_ok=True)
    for name in names or FIGURES:
        fig = FIGURES[name]()
        fig.savefig(Path(directory) / f"{name}.png", dpi=DPI, bbox_inches="tight")
        plt.close(fig)


if __name__ == "__main__":
    import sys

    render(names=sys.argv[1:] or None)
