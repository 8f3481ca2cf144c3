"""The ``layerinf`` command line: run, sweep, book, models, tasks, results, explain.

Thin on purpose: every command validates its parameters with `layerinf.config` (before torch is
imported), then calls the package (`execution.run_experiment`, `layerinf.book`). Any bad value, i.e. a
`ConfigError` or a `CacheMismatch` from the package or a bad option, ends the command with one line
``error: <message>`` on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from layerinf.cli.common import EXIT_USAGE, _fail, _use_artifacts
from layerinf.cli.explain import explain_cmd, no_noise_lines, own_options
from layerinf.config import (
    GLUE_TASKS,
    METHOD_CHOICES,
    OFFLINE_TASKS,
    PROFILES,
    ConfigError,
    RunConfig,
    field_help,
    field_names,
    preset,
)
from layerinf.own import OWN_DATA

SUMMARY_Q = "ndr@30"
SUMMARY_AGGREGATIONS = ("mean", "rank", "vote")


def _csv(value: str | None) -> tuple[str, ...] | None:
    """``"a,b , c"`` -> ("a", "b", "c"); None stays None (option not given)."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def coerce(name: str, text: str) -> Any:
    """Convert the text of ``--set name=text`` to the type of the RunConfig field `name`."""
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    if name not in fields:
        _fail(f"--set {name}=...: unknown config field {name!r}; known: {', '.join(field_names())}")
    default = fields[name].default
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return _csv(text)
    except ValueError:
        _fail(f"--set {name}={text!r}: expected a {type(default).__name__} ({fields[name].metadata['help']})")
    return text


def build_config(profile: str, options: dict[str, Any], settings: Sequence[str]) -> RunConfig:
    """The RunConfig of ``layerinf run``: the profile, then the dedicated options, then ``--set``."""
    overrides = {k: v for k, v in options.items() if v is not None}
    for item in settings:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            _fail(f"--set {item!r} must look like field=value, e.g. --set lr=1e-3")
        if name in overrides:
            _fail(f"--set {name}=... repeats a value already given (by its own option or an earlier --set)")
        overrides[name] = coerce(name, text)
    return preset(profile, **overrides)


def _list_fields(ctx: click.Context) -> None:
    defaults = RunConfig()
    for name, text in field_help().items():
        click.echo(f"{name:<18} {text} (default: {getattr(defaults, name)!r})")
    ctx.exit(0)


def _no_hub_progress_bars() -> None:
    """--quiet also silences the Hugging Face libraries' own bars (read when they are imported)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"


def _float(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.3f}"


def summary_lines(detection: Any, retraining: Any) -> list[str]:
    """The run summary: NDR@30 per method × group for mean/rank/vote, then retraining accuracies."""
    lines = []
    det = detection[detection["aggregation"].isin(SUMMARY_AGGREGATIONS)]
    table = det.pivot_table(index=["method", "group"], columns="aggregation", values=SUMMARY_Q, sort=False)
    table = table[[a for a in SUMMARY_AGGREGATIONS if a in table.columns]]
    lines.append("NDR@30 (share of all noisy examples found among the 30 % lowest-scored examples; higher = better)")
    lines.extend(table.to_string(float_format=_float).splitlines())
    if retraining is not None and len(retraining):
        cols = [
            "setup",
            "removed",
            "removed_noisy",
            "kept_min_class_share",
            "acc_selected",
            "bacc_selected",
            "acc_best",
        ]
        lines.append("retraining (evaluation accuracy after removing the lowest-scored examples)")
        lines.extend(retraining[cols].to_string(index=False, float_format=_float).splitlines())
    return lines


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="layerinf")
def cli() -> None:
    """Per-layer training-data influence for language models (Vitel & Chhabra, ICLR 2026).

    Everything is cached in the artifact store (--artifacts, else $LAYERINF_ARTIFACTS, else
    ./artifacts): re-running a command with the same parameters only reads the caches.
    """


@cli.command()
@click.option("--model", help="named model (tiny, minilm, smollm2), Hugging Face id, or local model directory")
@click.option("--task", help=f"{', '.join(OFFLINE_TASKS)}, glue/<{'|'.join(GLUE_TASKS)}>, or own data: {OWN_DATA}")
@click.option("--seed", type=int, help="seed of sampling, label noise, initialisation and data order")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True, help="base settings")
@click.option("--n-train", type=int, help="number of training examples")
@click.option("--noise-rate", type=float, help="fraction of training labels flipped, in [0, 1)")
@click.option("--methods", help=f"comma-separated influence methods ({', '.join(METHOD_CHOICES)})")
@click.option("--setups", help="comma-separated retraining setups method/group/aggregation, e.g. tracin/block2/vote")
@click.option(
    "--baselines",
    help="comma-separated retraining baselines: random, oracle, none, none_reseed (default: no retraining)",
)
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE", help="any RunConfig field (repeatable)")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), help="artifact store root")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars")
@own_options
@click.option(
    "--list-fields",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _param, value: _list_fields(ctx) if value else None,
    help="list every RunConfig field (for --set) and exit",
)
def run(
    model: str | None,
    task: str | None,
    seed: int | None,
    profile: str,
    n_train: int | None,
    noise_rate: float | None,
    methods: str | None,
    setups: str | None,
    baselines: str | None,
    settings: tuple[str, ...],
    artifacts: Path | None,
    quiet: bool,
    **own: str | None,
) -> None:
    """One pipeline run: fine-tune → gradients → influence → aggregation → metrics → retraining.

    Prints NDR@30 per method × layer group (Mean, Rank, Vote; with --noise-rate 0, how far the groups
    agree on the examples they flag), the retraining accuracies if any setup or baseline was asked
    for, and the run's record (what `layerinf results` and `layerinf explain` read). --task also takes
    own data (a .csv/.tsv/.jsonl file or save_to_disk directory); --adapter scores an already
    fine-tuned model instead of fine-tuning. Fields not given keep the profile's value; `--set`
    reaches every RunConfig field (`layerinf run --list-fields` lists them).
    """
    from layerinf import experiment

    options = {"model": model, "task": task, "seed": seed, "n_train": n_train, "noise_rate": noise_rate}
    options |= {"methods": _csv(methods), **own}
    cfg = build_config(profile, options, settings)
    exp = experiment.from_config(cfg, profile, _csv(setups) or (), _csv(baselines) or ())
    root = _use_artifacts(artifacts)
    if quiet:
        _no_hub_progress_bars()
    from layerinf import models

    models.model_source(cfg.model)  # fail fast (offline hub id, missing package) before any data work
    from layerinf.execution import run_experiment

    start = time.perf_counter()
    result = run_experiment(exp, store=root, progress=not quiet).first
    seconds = time.perf_counter() - start
    entry = result.record
    click.echo(
        f"run {cfg.model} {cfg.task} seed={cfg.seed} noise_rate={cfg.noise_rate:g} n_train={cfg.n_train} "
        f"(profile {profile}): {seconds:.1f}s"
    )
    lines = summary_lines(result.detection, result.retraining) if len(result.detection) else []
    for line in lines or no_noise_lines(result.agreement):
        click.echo(line)
    click.echo(f"results: {entry}")
    click.echo(f"the examples each layer group flags: layerinf explain {entry.name}")


@cli.command()
@click.argument("grid_file", metavar="GRID.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="Ray cluster to attach to: auto or ray://host:port (default: start a local Ray)")
@click.option("--dry-run", is_flag=True, help="list the jobs and their estimated cost; run nothing")
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="artifact store root; with --executor ray a path every worker can read and write",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="also write the results table (CSV)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars")
def sweep(
    grid_file: Path,
    executor: str,
    address: str | None,
    dry_run: bool,
    artifacts: Path | None,
    output: Path | None,
    quiet: bool,
) -> None:
    """Run an experiment file: one job per model × task × seed × noise rate (keys: `layerinf.experiment`).

    With --executor ray every job is a Ray task (one GPU each when the driver sees CUDA, else one
    CPU); artifacts go to --artifacts, and the results are gathered into one table, the same as with
    the local executor. --dry-run prints the jobs and the estimated CPU/GPU hours instead.
    """
    from layerinf import costs, experiment
    from layerinf.execution import run_experiment
    from layerinf.records import tidy

    grid = experiment.load(grid_file)
    if dry_run:
        for line in costs.describe(grid):
            click.echo(line)
        return
    root = _use_artifacts(artifacts)
    if quiet:
        _no_hub_progress_bars()
    start = time.perf_counter()
    result = run_experiment(
        grid,
        executor=executor,
        store=root,
        address=address,
        progress=not quiet,
        echo=lambda m: click.echo(m, err=True),
    )
    from layerinf.cache import Store

    tidy_tables = tidy(Store(root), result.records)
    click.echo(
        f"sweep {grid.name!r}: {len(grid.jobs)} jobs with the {executor} executor in {time.perf_counter() - start:.1f}s"
    )
    det = tidy_tables["detection"]
    if len(det):
        mean = det.groupby(["model", "task", "method", "group", "aggregation"], sort=False)[SUMMARY_Q].mean()
        view = mean.unstack("aggregation")
        view = view[[a for a in SUMMARY_AGGREGATIONS if a in view.columns]]
        click.echo("NDR@30, mean over seeds and noise rates")
        click.echo(view.to_string(float_format=_float))
    ret = tidy_tables["retraining"]
    if len(ret):
        click.echo("retraining: evaluation accuracy (acc_selected), mean over seeds and noise rates")
        acc = ret.groupby(["model", "task", "setup"], sort=False)[["removed_noisy", "acc_selected"]].mean()
        click.echo(acc.to_string(float_format=_float))
    if output is not None:
        _write(det, "csv", output)
        click.echo(f"detection table: {output}")
    click.echo(f"artifacts: {root}")


@cli.command()
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True)
@click.option("--model", "models_", multiple=True, help="model of the claim notebooks (repeatable)")
@click.option("--only", multiple=True, metavar="NAME", help="execute only this notebook (repeatable)")
@click.option("--no-execute", is_flag=True, help="render the already executed notebooks")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="a page parameter, or a change of the book grid's experiments (YAML value; llm.NAME for the LLM one)",
)
@click.option(
    "--screenshots",
    multiple=True,
    metavar="PAGE",
    help="also render this page (e.g. book/intro; `all`: every page) to a PNG in _build/screenshots/ (repeatable)",
)
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), help="artifact store root")
def book(
    profile: str,
    models_: tuple[str, ...],
    only: tuple[str, ...],
    no_execute: bool,
    sets: tuple[str, ...],
    screenshots: tuple[str, ...],
    artifacts: Path | None,
) -> None:
    """Execute the claim notebooks (papermill) and build the book: `python -m layerinf.book` (in a checkout).

    Re-running the book with another model is one command, e.g.
    `layerinf book --profile default --model /path/to/a/local/model` (a Hugging Face id works where
    the hub is reachable). Local directories are passed on as absolute paths.
    """
    from layerinf import paths

    paths.book_root()  # an installed package without a checkout: one line, before anything starts
    chosen = []
    for m in models_:
        RunConfig(model=m)  # validated like any run's model
        chosen.append(str(Path(m).expanduser().resolve()) if Path(m).expanduser().is_dir() else m)
    _use_artifacts(artifacts)  # exported to the build through LAYERINF_ARTIFACTS
    cmd = [sys.executable, "-m", "layerinf.book", "--profile", profile]
    if chosen:
        if "--model" not in _bookbuild_options():
            _fail("--model: this version of layerinf.book cannot set the notebooks' models yet")
        cmd += ["--model", *chosen]
    if only:
        cmd += ["--only", *only]
    if no_execute:
        cmd.append("--no-execute")
    for item in sets:
        cmd += ["--set", item]
    if screenshots:
        cmd += ["--screenshots", *(p for p in screenshots if p != "all")]
    click.echo("$ " + " ".join(cmd), err=True)
    raise click.exceptions.Exit(subprocess.call(cmd))


def _bookbuild_options() -> set[str]:
    """Long options the installed `layerinf.book` understands (read from its --help)."""
    out = subprocess.run(
        [sys.executable, "-m", "layerinf.book", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return {word.rstrip(",") for word in out.split() if word.startswith("--")}


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: run the command; bad values -> ``error: ...`` and exit status 2."""
    from layerinf.cache import CacheMismatch

    try:
        status = cli.main(args=list(argv) if argv is not None else None, prog_name="layerinf", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help() if err.ctx else str(err))
        return 0
    except click.UsageError as err:
        hint = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        click.echo(f"error: {err.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except (ConfigError, CacheMismatch) as err:
        click.echo(f"error: {_one_line(err)}", err=True)
        return EXIT_USAGE
    except OSError as err:  # the environment: a full disk, a read-only or missing path, no permission
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        click.echo(f"error: {err.strerror or type(err).__name__}{where}", err=True)
        return EXIT_USAGE
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    return status if isinstance(status, int) else 0


def _one_line(err: BaseException) -> str:
    """The message of `err` on one line (a Ray task error carries the worker's exception as `cause`)."""
    cause = getattr(err, "cause", None)
    return " ".join(str(cause if isinstance(cause, BaseException) else err).split())


from layerinf.cli.listing import models_cmd, tasks_cmd  # noqa: E402  (commands of the group above)
from layerinf.cli.output import _write, results  # noqa: E402

for _command in (models_cmd, tasks_cmd, results, explain_cmd):
    cli.add_command(_command)

if __name__ == "__main__":
    sys.exit(main())
