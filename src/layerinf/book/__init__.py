"""The book builder (tooling, not science): vendor MathJax, execute the notebooks, render the book strictly.

Jupyter Book only renders (``execute_notebooks: off``); execution happens here, with papermill, so
that every number on a claim page is computed by the build that produced the page::

    python -m layerinf.book --profile smoke|default|paper [--only NAME ...] [--no-execute]
                            [--screenshots [PAGE ...]]

Stages, one module each:

1. `vendor`: MathJax 3 (``tex-chtml``, es5) is vendored from the npm tarball into
   ``book/_vendor/mathjax/`` so that the rendered HTML makes no outside request (skipped when the
   recorded tarball sha256 matches the pin).
2. `notebooks` and `execute`: each notebook ``notebooks/<name>.py`` (jupytext py:percent) is
   converted to ipynb and executed by papermill (kernel ``python3``, cwd = the checkout) with the
   parameters of ``notebooks/params/<name>.<profile>.yaml`` plus ``profile``, into
   ``book/_executed/<name>.ipynb``. Wall times land in ``book/_executed/timings.json``:
   ``{name: {"seconds": float, "profile": str, "timestamp": ISO-8601 UTC, "cores": int}}``
   (entries of notebooks not re-executed by this run are kept); `memory` samples each kernel's peak.
3. `html`: ``jupyter-book build`` with ``--warningiserror --nitpick --keep-going --all``; any
   warning fails. Pages of the table of contents that do not exist yet are left out of a derived
   ``_build/_toc.partial.yml`` (`toc`), and the build says so loudly.
4. `html.check_offline` scans the HTML for resources fetched from outside.
5. Optionally, `screenshots`: headless Chromium renders pages to PNG in ``_build/screenshots/``.

The book needs a checkout (notebooks, pages, ``_toc.yml``): `layerinf.paths.book_root`.
"""

from layerinf.book.base import BookBuildError as BookBuildError
from layerinf.book.notebooks import glued as glued
