"""The book's notebooks and their parameters: which exist, what each declares, the values of a
profile (the book grid ``grids/book/<profile>.yaml`` every claim page reads, and a page's own
``notebooks/params/<name>.<profile>.yaml`` if it has parameters of its own) with ``--model`` /
``--set`` overrides, checks of every run those values describe, and the values an executed notebook
glued.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from layerinf.book.base import BookBuildError, book_root
from layerinf.config import PROFILES, allowed

#: Execution order; scorecard last because it summarises what the others computed.
NOTEBOOK_ORDER: tuple[str, ...] = (
    "teaching",
    "c1_cancellation",
    "c2_layers",
    "c3_aggregation",
    "c4_ndr",
    "cost",
    "scorecard",
)


#: Injected by the driver into every notebook; never listed in the params files.
INJECTED: tuple[str, ...] = ("profile",)


def available_notebooks(root: Path | None = None) -> list[str]:
    """Names of the notebooks in `NOTEBOOK_ORDER` whose source ``notebooks/<name>.py`` exists, in order."""
    root = book_root(root)
    return [name for name in NOTEBOOK_ORDER if (root / "notebooks" / f"{name}.py").is_file()]


def select_notebooks(only: Sequence[str] | None, root: Path | None = None) -> list[str]:
    """The notebooks to execute: all available ones, or `only` (validated), in the fixed order."""
    root = book_root(root)
    present = available_notebooks(root)
    if not only:
        return present
    for name in only:
        if name not in NOTEBOOK_ORDER:
            raise BookBuildError(f"--only {name!r} is not a book notebook; choose from: {', '.join(NOTEBOOK_ORDER)}")
        if name not in present:
            raise BookBuildError(
                f"--only {name!r}: notebooks/{name}.py does not exist (present: {', '.join(present) or 'none'})"
            )
    return [name for name in present if name in only]


def parameter_names(notebook: Path) -> list[str]:
    """Names assigned at top level in the cell tagged ``parameters`` of a jupytext notebook.

    Raises `BookBuildError` if there is no such cell, or more than one.
    """
    import jupytext

    nb = jupytext.read(notebook)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise BookBuildError(f"{notebook}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    names: list[str] = []
    for node in ast.parse(cells[0].source).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names.extend(t.id for t in targets if isinstance(t, ast.Name))
    return names


#: Parameters of a claim page that say which runs it shows: the book grid file (None: the profile's
#: ``grids/book/<profile>.yaml``), the main experiment's models (``--model``) and the changes of
#: ``--set`` to the experiments (`layerinf.experiment.book`). They have defaults in the notebook and
#: are never listed in a parameter file: the runs are defined once, in the grid file.
GRID_PARAMS: tuple[str, ...] = ("grid_file", "models", "overrides")


def params_path(name: str, profile: str, root: Path | None = None) -> Path:
    root = book_root(root)
    return root / "notebooks" / "params" / f"{name}.{profile}.yaml"


def _own_params(name: str, root: Path) -> set[str]:
    """What a parameter file of notebook `name` must give: its declared parameters except the
    injected profile and the grid parameters."""
    names = set(parameter_names(root / "notebooks" / f"{name}.py"))
    if not set(INJECTED) <= names:
        # papermill would inject them anyway, but only declared names are documented and defaulted
        raise BookBuildError(
            f"notebooks/{name}.py: the parameters cell must declare {', '.join(INJECTED)} (the build injects it)"
        )
    return names - set(INJECTED) - set(GRID_PARAMS)


def load_params(name: str, profile: str, root: Path | None = None) -> dict[str, Any]:
    """Parameters of notebook `name` under `profile` plus ``profile``: the notebook's own parameters
    from ``notebooks/params/<name>.<profile>.yaml`` (checked against its ``parameters`` cell; a page
    whose only parameters are the profile and the grid has no file)."""
    root = book_root(root)
    allowed("profile", profile, PROFILES)
    path = params_path(name, profile, root)
    declared = _own_params(name, root)
    if not path.is_file():
        if declared:
            raise BookBuildError(f"notebook {name}: parameter file {path.relative_to(root)} is missing")
        return {"profile": profile}
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise BookBuildError(f"{path.relative_to(root)} is not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise BookBuildError(f"{path.relative_to(root)} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(params, dict):
        raise BookBuildError(f"{path.relative_to(root)}: expected a mapping of parameter names to values")
    given = set(params) - set(INJECTED)
    if given != declared:
        grid = sorted(given & set(GRID_PARAMS))
        hint = f" ({', '.join(grid)}: set by the book grid file, grids/book/{profile}.yaml)" if grid else ""
        raise BookBuildError(
            f"{path.relative_to(root)}: keys do not match the notebook's parameters cell; "
            f"missing {sorted(declared - given)}, unknown {sorted(given - declared)}{hint}"
        )
    if params.get("profile", profile) != profile:
        raise BookBuildError(f"{path.relative_to(root)}: profile={params['profile']!r} but the file is for {profile!r}")
    return {**params, "profile": profile}


def apply_overrides(
    name: str, params: dict[str, Any], overrides: dict[str, Any], root: Path | None = None
) -> dict[str, Any]:
    """`params` with `overrides` applied: a parameter the notebook declares is set directly (e.g.
    ``models``, or the teaching chapter's ``n_train``); any other goes into its ``overrides``
    parameter, the changes to the book grid's experiments, if it has one (else it is skipped: the
    teaching chapter runs no experiment)."""
    root = book_root(root)
    declared = set(parameter_names(root / "notebooks" / f"{name}.py"))
    direct = {k: v for k, v in overrides.items() if k in declared and k != "overrides"}
    grid = {k: v for k, v in overrides.items() if k not in declared}
    out = {**params, **direct}
    if grid and "overrides" in declared:
        out["overrides"] = {**(params.get("overrides") or {}), **grid}
    return out


def parse_overrides(models: Sequence[str] | None, sets: Sequence[str] | None) -> dict[str, Any]:
    """``--model`` values and ``--set name=value`` pairs (values parsed as YAML) as one mapping."""
    out: dict[str, Any] = {}
    if models:
        out["models"] = [str(Path(m).resolve()) if Path(m).expanduser().is_dir() else m for m in models]
    for item in sets or ():
        if "=" not in item:
            raise BookBuildError(f"--set {item!r} must be name=value, e.g. --set seeds=[0,1]")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def check_model_name(model: str) -> None:
    """A --model value: a valid RunConfig model whose source exists (named, local directory, cached or
    reachable hub id), checked before the build starts."""
    from layerinf.config import RunConfig
    from layerinf.models import model_source

    RunConfig(model=model)
    model_source(model)


def check_grid_params(name: str, params: dict[str, Any]) -> None:
    """Build (and so validate) the book's experiments a notebook's parameters describe, every run and
    retraining setup of them, before any notebook executes: a bad ``--set`` value fails the build in
    one line instead of in the middle of a notebook."""
    from layerinf import experiment
    from layerinf.config import ConfigError

    if "overrides" not in params:
        return  # a page that runs no experiment (the teaching chapter)
    try:
        experiment.book(params["profile"], params.get("grid_file"), params.get("models"), params.get("overrides"))
    except (ConfigError, TypeError) as err:
        raise BookBuildError(f"notebook {name}: {err}") from None


def glued(path: Path) -> dict[str, Any]:
    """The values a notebook glued (``myst_nb.glue``), read from the executed notebook: strings and
    numbers as Python values, anything else (figures, tables) as its text/plain form.

    This is how other tools read the verdicts, e.g.
    ``glued("book/_executed/scorecard.ipynb")["sc_c1_minilm"]`` is "held", "did not hold" or
    "inconclusive"."""
    import nbformat

    out: dict[str, Any] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get("application/papermill.record/text/plain")
            if name is None or text is None:
                continue
            try:
                out[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                out[name] = text
    return out
