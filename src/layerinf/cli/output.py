"""``layerinf results``: every recorded run of the artifact store as one tidy table, and how tables
are written (CSV, markdown, Parquet)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import click

from layerinf.cli.common import _fail, _use_artifacts

RESULTS_HELP = """Every recorded run in the artifact store as one tidy table.

\b
--table detection (default): one row per run × method × layer group × aggregation:
  run (record hash), model, task, seed, noise_rate, n_train, finetune_acc, method, group,
  aggregation, n_modules, ndr@5 … ndr@90, auc_ndr, roc_auc, cancellation (ratio of the
  group; the same for every method and aggregation of a run).
--table retraining: one row per run × retraining setup or baseline: run, model, task, seed,
  noise_rate, n_train, finetune_acc, setup, method, group, aggregation, removed,
  removed_noisy, removed_top_class_share, kept_min_class_share (class make-up of the removed set),
  acc_selected (evaluation accuracy at the epoch of lowest query loss: the primary number),
  bacc_selected (its balanced accuracy), acc_best (the paper's best epoch), acc_last, best_epoch.
finetune_acc is the evaluation accuracy of the fine-tuned checkpoint the scores were computed at.
"""


@click.command(help=RESULTS_HELP)
@click.option("--format", "fmt", type=click.Choice(["csv", "markdown", "parquet"]), default="csv", show_default=True)
@click.option("--table", type=click.Choice(["detection", "retraining"]), default="detection", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="file to write (default: stdout)")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), help="artifact store root")
def results(fmt: str, table: str, output: Path | None, artifacts: Path | None) -> None:
    if fmt == "parquet" and output is None:
        _fail("--format parquet needs --output FILE (it is a binary format)")
    from layerinf.cache import Store
    from layerinf.records import tidy

    if output is not None:
        _check_writable(output, "--output")
    root = _use_artifacts(artifacts)
    frame = tidy(Store(root))[table]
    if output is None:
        click.echo(frame.to_csv(index=False) if fmt == "csv" else markdown(frame), nl=False)
    else:
        _write(frame, fmt, output)
        click.echo(f"{len(frame)} rows -> {output}", err=True)


def markdown(frame: Any) -> str:
    """A GitHub-flavoured markdown table (floats with 4 decimals)."""

    def cell(x: object) -> str:
        if isinstance(x, float):
            return "" if math.isnan(x) else f"{x:.4f}"
        return str(x)

    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _check_writable(path: Path, option: str) -> None:
    """Refuse, before any work, an output file whose folder cannot be created or written."""
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        _fail(f"{option} {str(path)!r}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        _fail(f"{option} {str(path)!r}: {existing} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        _fail(f"{option} {str(path)!r} exists and is not writable")


def _write(frame: Any, fmt: str, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(output, index=False)
    elif fmt == "parquet":
        try:
            frame.to_parquet(output, index=False)
        except ImportError as err:
            _fail(f"--format parquet needs pyarrow: {err}")
    else:
        output.write_text(markdown(frame))
