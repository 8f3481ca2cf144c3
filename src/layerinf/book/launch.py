"""Notebooks for the launch buttons: an executed page as a notebook that runs in Colab or Binder.

The book's pages are executed notebooks whose prose is MyST: ``{glue:text}`name``` roles and
``{glue:figure}`` / ``{glue:}`` directives that only Jupyter Book renders. `launchable` turns one
into a notebook a reader can open and run anywhere:

- every glue role and directive is replaced by the value the build computed (text formatted as the
  role asks, tables as their HTML, figures as a PNG attached to the markdown cell);
- a first code cell installs the package from its repository and prepares the data where
  ``layerinf`` is not importable (Colab), and in any case moves to the checkout, since the pages run
  from the repository root. Inside the book build it is never run (the build executes the sources,
  not these copies).

`write_all` writes the copies to ``_build/launch/book/_executed/``; the publishing workflow pushes
them to the branch the launch buttons open.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from layerinf.book.base import book_root

REPOSITORY = "https://github.com/layerinf/layerinf"
#: The first cell of a launched notebook.
SETUP_CELL = f'''# Set-up for Colab / Binder: install layerinf from its repository (with the CPU build of torch)
# and prepare its offline data, unless layerinf is installed already; then run from the checkout.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("layerinf") is None:
    subprocess.check_call(["git", "clone", "--depth", "1", "{REPOSITORY}", "layerinf"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--extra-index-url",
                           "https://download.pytorch.org/whl/cpu", "-r", "layerinf/requirements.txt",
                           "-r", "layerinf/requirements-extra.txt"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "layerinf"])
    sys.path.insert(0, os.path.abspath("layerinf/src"))
    os.environ["LAYERINF_ROOT"] = os.path.abspath("layerinf")
    subprocess.check_call([sys.executable, "-m", "layerinf.tools.prepare", "prepare"], cwd="layerinf")
from layerinf import paths
if paths.checkout_root() is not None:
    os.chdir(paths.checkout_root())
'''

_ROLE = re.compile(r"\{glue(?::text)?\}`([^`:]+?)(?::([^`]*))?`")
#: Any other MyST role (cite, doc, download, eq, ...): shown as its text, without the target.
_OTHER_ROLE = re.compile(r"\{[a-z:]+\}`([^`<]*?)\s*(?:<[^`>]*>)?`")
_DIRECTIVE = re.compile(r"```\{glue:(figure)?\}\s*(\S+)\n(.*?)```", re.DOTALL)


_RECORD = "application/papermill.record/"


def glue_outputs(nb: Any) -> dict[str, dict[str, Any]]:
    """Each glued name's output data (mime type → content) in an executed notebook (scrapbook's
    ``application/papermill.record/`` prefix removed)."""
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                out[name] = {k.removeprefix(_RECORD): v for k, v in output.get("data", {}).items()}
    return out


def _text(data: dict[str, Any], fmt: str | None) -> str:
    raw = data.get("text/plain") or ""
    raw = raw if isinstance(raw, str) else "".join(raw)
    if fmt:
        try:
            return format(ast.literal_eval(raw), fmt)
        except (ValueError, SyntaxError, TypeError):
            return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    return value if isinstance(value, str) else str(value)


def _directive(match: re.Match[str], glued: dict[str, dict[str, Any]], attachments: dict[str, Any]) -> str:
    is_figure, name, body = match.group(1), match.group(2), match.group(3)
    data = glued.get(name, {})
    caption = "\n".join(line for line in body.splitlines() if not line.startswith(":")).strip()
    if is_figure or "image/png" in data:
        if "image/png" not in data:
            return f"*(figure {name}: not computed in this build)*"
        attachments[f"{name}.png"] = {"image/png": data["image/png"]}
        return f"![{name}](attachment:{name}.png)\n\n{caption}".rstrip()
    html = data.get("text/html")
    return (html if isinstance(html, str) else "".join(html)) if html else _text(data, None)


def launchable(nb: Any) -> Any:
    """A copy of executed notebook `nb` that runs outside the book (see the module docstring)."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    glued = glue_outputs(nb)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        attachments: dict[str, Any] = {}
        source = _DIRECTIVE.sub(lambda m, a=attachments: _directive(m, glued, a), cell.source)
        source = _ROLE.sub(lambda m: _text(glued.get(m.group(1), {}), m.group(2)), source)
        cell.source = _OTHER_ROLE.sub(lambda m: m.group(1), source)
        if attachments:
            cell["attachments"] = attachments
    setup = nbformat.v4.new_code_cell(SETUP_CELL)
    setup.metadata["tags"] = ["launch-setup"]
    nb.cells.insert(0, setup)
    return nb


def write_all(root: Path | None = None) -> list[Path]:
    """Launchable copies of every executed page, in ``_build/launch/book/_executed/``."""
    import nbformat

    root = book_root(root)
    out_dir = root / "_build" / "launch" / "book" / "_executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((root / "book" / "_executed").glob("*.ipynb")):
        if path.name.endswith(".failed.ipynb"):
            continue
        nb = launchable(nbformat.read(path, as_version=4))
        nbformat.write(nb, out_dir / path.name)
        written.append(out_dir / path.name)
    return written
