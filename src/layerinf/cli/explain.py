"""Own data and own model on the command line: the options of ``layerinf run`` that name them, what a
run without injected noise prints, and ``layerinf explain`` (the training examples themselves)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from layerinf.cli.common import _use_artifacts
from layerinf.config import FIXED_GROUPS, field_help

#: ``layerinf run`` options for own data and an own adapter: option name -> RunConfig field.
OWN_OPTIONS: dict[str, str] = {
    "--text-column": "text_column",
    "--pair-column": "pair_column",
    "--label-column": "label_column",
    "--query-file": "query_file",
    "--eval-file": "eval_file",
    "--adapter": "adapter",
}


def own_options(command: Callable) -> Callable:
    """Add the `OWN_OPTIONS` to a command; their values arrive as keyword arguments named by field."""
    helps = field_help()
    for option, name in reversed(OWN_OPTIONS.items()):
        command = click.option(option, name, help=helps[name])(command)
    return command


def no_noise_lines(agreement: Any) -> list[str]:
    """What a run without injected noise reports instead of NDR: how far the layer groups agree on
    the examples they flag, for the first method and aggregation (the whole table is the run's
    ``agreement``; `layerinf explain` shows the examples)."""
    import pandas as pd

    lines = ["no injected noise (noise_rate=0): no NDR; what the layer groups flag instead"]
    if not len(agreement):
        return lines
    first = agreement[(agreement["method"] == agreement["method"].iloc[0])]
    first = first[first["aggregation"] == first["aggregation"].iloc[0]]
    order = list(dict.fromkeys([*first["group_a"], *first["group_b"]]))
    both = pd.concat([first, first.rename(columns={"group_a": "group_b", "group_b": "group_a"})])
    table = both.pivot(index="group_a", columns="group_b", values="jaccard").reindex(index=order, columns=order)
    table.index.name, table.columns.name = None, None
    method, how, n = first["method"].iloc[0], first["aggregation"].iloc[0], int(first["n_flagged"].iloc[0])
    lines.append(f"{method} / {how}: share of the {n} lowest-scored examples two groups both flag (Jaccard)")
    lines.extend(table.to_string(float_format=lambda x: f"{x:.2f}", na_rep="").splitlines())
    return lines


def _names(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


@click.command("explain")
@click.argument("run")
@click.option("--method", "methods", help="comma-separated methods (default: every method of the run)")
@click.option("--groups", default="block2,we", show_default=True, help=f"layer groups ({', '.join(FIXED_GROUPS)}, …)")
@click.option("--aggregations", default="mean", show_default=True, help="comma-separated aggregations")
@click.option("-k", "k", type=int, default=5, show_default=True, help="examples per list")
@click.option("--query", help="a query example's id or position: rank by its score instead of an aggregation")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="directory for the tables")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), help="artifact store root")
def explain_cmd(
    run: str,
    methods: str | None,
    groups: str,
    aggregations: str,
    k: int,
    query: str | None,
    output: Path | None,
    fmt: str,
    artifacts: Path | None,
) -> None:
    """The training examples a finished run's layer groups flag: the k most harmful (lowest-scored)
    and most helpful per method × group × aggregation, or for one --query, and the most
    self-influential per group, with their texts, labels and noisy flag.

    RUN is the record `layerinf run` printed (`results: <dir>`), or its 16-hex name. With --output
    the tables are written: top (every list), self_influence (per example and module), scores (the
    full per-example table, one column per method/group/aggregation) and, per method,
    module_scores_<method>.safetensors (the per-module scores; see `ModuleScores.save_safetensors`).
    """
    from layerinf.cache import Store
    from layerinf.examples import explain, format_top

    store = Store(_use_artifacts(artifacts))
    found = explain(
        run,
        store=store,
        methods=_names(methods),
        groups=_names(groups) or (),
        aggregations=_names(aggregations) or (),
        k=k,
        query=query,
    )
    if found.query is not None:
        q = found.query
        click.echo(f"query {q['id']} ({q['label_name']}): {' '.join(str(q['text']).split())}")
    for line in format_top(found.top):
        click.echo(line)
    if output is not None:
        for path in found.save(output, fmt):
            click.echo(f"wrote {path}")
