"""Executing one notebook with papermill, and the timing record of the build
(``book/_executed/timings.json``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from layerinf.book.base import BookBuildError, book_root
from layerinf.book.notebooks import NOTEBOOK_ORDER, apply_overrides, load_params


def execute_notebook(
    name: str, profile: str, root: Path | None = None, overrides: dict[str, Any] | None = None
) -> float:
    """Convert ``notebooks/<name>.py`` to ipynb and execute it into ``book/_executed/<name>.ipynb``.

    Returns the wall time in seconds. On failure the partial output is moved to
    ``<name>.failed.ipynb`` (so a later build never renders it) and `BookBuildError` is raised.
    """
    root = book_root(root)
    import jupytext
    import nbformat
    import papermill

    params = apply_overrides(name, load_params(name, profile, root), overrides or {}, root)
    out_dir = root / "book" / "_executed"
    out_dir.mkdir(parents=True, exist_ok=True)  # papermill does not create it
    output = out_dir / f"{name}.ipynb"
    failed = out_dir / f"{name}.failed.ipynb"
    failed.unlink(missing_ok=True)
    nb = jupytext.read(root / "notebooks" / f"{name}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory(prefix=f"layerinf-{name}-") as tmp:
        source = Path(tmp) / f"{name}.ipynb"
        nbformat.write(nb, source)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=params,
                kernel_name="python3",
                language="python",
                cwd=str(root),
                progress_bar=False,
            )
        except Exception as err:  # papermill raises PapermillExecutionError, kernel death raises others
            if output.exists():
                output.replace(failed)
            raise BookBuildError(
                f"notebook {name} failed (profile {profile}; partial output in {failed.relative_to(root)}):\n{err}"
            ) from err
    seconds = time.perf_counter() - start
    hide_injected_parameters(output)
    return seconds


def hide_injected_parameters(path: Path) -> None:
    """Show a page's parameters once. Where the page hides its ``parameters`` cell (claim pages: they
    show a table instead), papermill's injected-parameters cell is tagged ``remove-cell`` too. Where
    the ``parameters`` cell is shown (the teaching chapter teaches with its code), it is given the
    values this build ran with, and the injected cell, which would repeat them, is dropped: a
    visible cell never shows a default the build did not use."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tags_of = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    shown = next(
        (c for c, t in zip(nb.cells, tags_of, strict=True) if "parameters" in t and "remove-cell" not in t), None
    )
    keep = []
    for cell, tags in zip(nb.cells, tags_of, strict=True):
        if "injected-parameters" in tags:
            if shown is not None:
                shown.source = "# The parameters of this build\n" + cell.source.split("\n", 1)[-1].lstrip("\n")
                continue
            if "remove-cell" not in tags:
                cell.metadata["tags"] = [*tags, "remove-cell"]
        keep.append(cell)
    nb.cells = keep
    nbformat.write(nb, path)


def record_timing(
    name: str, seconds: float, profile: str, root: Path | None = None, kernel_peak_mb: float | None = None
) -> None:
    """Add or replace the entry of `name` in ``book/_executed/timings.json`` (written atomically)."""
    root = book_root(root)
    path = root / "book" / "_executed" / "timings.json"
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no executed notebooks yet
    timings: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    timings[name] = {
        "seconds": round(seconds, 3),
        "kernel_peak_rss_mb": None if kernel_peak_mb is None else round(kernel_peak_mb, 1),
        "profile": profile,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count() or 1,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def warn_mixed_profiles(root: Path | None = None) -> None:
    """Say loudly if the executed notebooks about to be rendered come from different profiles."""
    root = book_root(root)
    path = root / "book" / "_executed" / "timings.json"
    timings: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    present = [n for n in NOTEBOOK_ORDER if (root / "book" / "_executed" / f"{n}.ipynb").is_file()]
    profiles = {n: timings.get(n, {}).get("profile", "unknown") for n in present}
    if len(set(profiles.values())) > 1:
        listing = ", ".join(f"{n}={p}" for n, p in profiles.items())
        print(f"!! MIXED PROFILES: the executed notebooks come from different profiles: {listing}", flush=True)
