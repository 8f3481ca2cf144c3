"""The `make book` driver: vendor MathJax, execute the notebooks, render the book strictly.

Jupyter Book only renders (``execute_notebooks: off``); execution happens here, with papermill, so
that every number on a claim page is computed by the build that produced the page::

    python -m layerinf.bookbuild --profile smoke|default|paper [--only NAME ...] [--no-execute]
                                 [--screenshots [PAGE ...]]

Stages:

1. MathJax 3 (``tex-chtml``, es5) is vendored from the npm tarball into ``book/_vendor/mathjax/``
   so that the rendered HTML makes no outside request (skipped when the recorded tarball sha256
   matches the pin).
2. Each notebook ``notebooks/<name>.py`` (jupytext py:percent) is converted to ipynb and executed
   by papermill (kernel ``python3``, cwd = repository root) with the parameters of
   ``notebooks/params/<name>.<profile>.yaml`` plus ``profile``, into ``book/_executed/<name>.ipynb``.
   Wall times land in ``book/_executed/timings.json``:
   ``{name: {"seconds": float, "profile": str, "timestamp": ISO-8601 UTC, "cores": int}}``
   (entries of notebooks not re-executed by this run are kept).
3. ``jupyter-book build`` with ``--warningiserror --nitpick --keep-going --all``; any warning fails.
   Pages of the table of contents that do not exist yet (notebooks nobody has written, or not
   executed) are left out of a derived ``_build/_toc.partial.yml``, and the build says so loudly.
4. `check_offline` scans the HTML for resources fetched from outside.
5. Optionally, headless Chromium renders pages to PNG in ``_build/screenshots/``.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import psutil
import yaml

from layerinf.config import PROFILES, allowed

ROOT = Path(__file__).resolve().parents[2]
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

MATHJAX_VERSION = "3.2.2"
#: sha256 of ``npm pack mathjax@3.2.2`` (the registry tarball); a different tarball is refused.
MATHJAX_SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
#: Tarball members the ``tex-chtml`` component needs: the component itself, the CHTML woff fonts it
#: loads from ``[mathjax]/output/chtml/fonts/woff-v2``, the TeX extensions its autoload may request,
#: and the assistive-MathML extension the menu loads by default.
_MATHJAX_KEEP = re.compile(
    r"^package/(LICENSE"
    r"|es5/tex-chtml\.js"
    r"|es5/output/chtml/fonts/woff-v2/[\w-]+\.woff"
    r"|es5/input/tex/extensions/[\w-]+\.js"
    r"|es5/a11y/assistive-mml\.js)$"
)

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW_SIZE = "1200,2400"


class BookBuildError(RuntimeError):
    """A stage of the book build failed; the message says which and why."""


# --------------------------------------------------------------------------- notebooks and params


def available_notebooks(root: Path = ROOT) -> list[str]:
    """Names of the notebooks in `NOTEBOOK_ORDER` whose source ``notebooks/<name>.py`` exists, in order."""
    return [name for name in NOTEBOOK_ORDER if (root / "notebooks" / f"{name}.py").is_file()]


def select_notebooks(only: Sequence[str] | None, root: Path = ROOT) -> list[str]:
    """The notebooks to execute: all available ones, or `only` (validated), in the fixed order."""
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


def params_path(name: str, profile: str, root: Path = ROOT) -> Path:
    return root / "notebooks" / "params" / f"{name}.{profile}.yaml"


def load_params(name: str, profile: str, root: Path = ROOT) -> dict[str, Any]:
    """Parameters of notebook `name` under `profile`, checked against its ``parameters`` cell, plus ``profile``."""
    allowed("profile", profile, PROFILES)
    path = params_path(name, profile, root)
    if not path.is_file():
        raise BookBuildError(f"notebook {name}: parameter file {path.relative_to(root)} is missing")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise BookBuildError(f"{path.relative_to(root)} is not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise BookBuildError(f"{path.relative_to(root)} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(params, dict):
        raise BookBuildError(f"{path.relative_to(root)}: expected a mapping of parameter names to values")
    names = set(parameter_names(root / "notebooks" / f"{name}.py"))
    if not set(INJECTED) <= names:
        # papermill would inject them anyway, but only declared names are documented and defaulted
        raise BookBuildError(
            f"notebooks/{name}.py: the parameters cell must declare {', '.join(INJECTED)} (the build injects it)"
        )
    declared = names - set(INJECTED)
    given = set(params) - set(INJECTED)
    if given != declared:
        raise BookBuildError(
            f"{path.relative_to(root)}: keys do not match the notebook's parameters cell; "
            f"missing {sorted(declared - given)}, unknown {sorted(given - declared)}"
        )
    if params.get("profile", profile) != profile:
        raise BookBuildError(f"{path.relative_to(root)}: profile={params['profile']!r} but the file is for {profile!r}")
    return {**params, "profile": profile}


def apply_overrides(name: str, params: dict[str, Any], overrides: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """`params` with `overrides` applied to the parameters this notebook declares (others are skipped:
    e.g. ``models`` does not exist in the teaching chapter)."""
    declared = set(parameter_names(root / "notebooks" / f"{name}.py"))
    return {**params, **{k: v for k, v in overrides.items() if k in declared}}


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


#: Notebook parameters that are `RunConfig` fields (the LLM grid of a page uses the ``llm_`` ones,
#: and shares epochs, sampling and noise_rate with the page's main grid).
_RUN_FIELDS = ("n_train", "n_query", "n_eval", "epochs", "sampling", "noise_rate")


def check_grid_params(name: str, params: dict[str, Any]) -> None:
    """Build (and so validate) every run configuration a notebook's parameters describe, and check
    its retraining setups, before any notebook executes: a bad ``--set`` value fails the build in
    one line instead of in the middle of a notebook."""
    from layerinf.config import ConfigError, preset
    from layerinf.sweep import check_setup

    profile = params["profile"]
    for prefix in ("", "llm_"):
        if f"{prefix}models" not in params:
            continue
        grid = {}
        for key in ("models", "tasks", "seeds"):
            value = params.get(f"{prefix}{key}")
            if not isinstance(value, list) or not value:
                raise BookBuildError(f"notebook {name}: {prefix}{key}={value!r} must be a non-empty list")
            grid[key] = value
        fields = {
            f: params[f"{prefix}{f}"] if f"{prefix}{f}" in params else params[f]
            for f in _RUN_FIELDS
            if f"{prefix}{f}" in params or f in params
        }
        methods = params.get(f"{prefix}methods")
        try:
            for model in grid["models"]:
                for task in grid["tasks"]:
                    for seed in grid["seeds"]:
                        cfg = preset(profile, model=model, task=task, seed=seed, methods=methods, **fields)
            for spec in params.get("retrain_setups", []) if prefix == "" else []:
                check_setup(spec, cfg.methods)
        except (ConfigError, TypeError) as err:
            raise BookBuildError(f"notebook {name}: {err}") from None


def execute_notebook(name: str, profile: str, root: Path = ROOT, overrides: dict[str, Any] | None = None) -> float:
    """Convert ``notebooks/<name>.py`` to ipynb and execute it into ``book/_executed/<name>.ipynb``.

    Returns the wall time in seconds. On failure the partial output is moved to
    ``<name>.failed.ipynb`` (so a later build never renders it) and `BookBuildError` is raised.
    """
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
    """Tag papermill's injected-parameters cell ``remove-cell``: the page shows its parameters once,
    as a table of its own, not as a second code cell (the notebook file keeps the cell)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


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


class ChildMemoryPeak:
    """Largest resident memory (MB) of any one child process (a notebook's kernel) while the
    `with` block runs, sampled every `interval` seconds by a background thread (a spike shorter than
    that can be missed). Per notebook, unlike ``RUSAGE_CHILDREN``'s maximum over every child the
    build has waited for."""

    def __init__(self, interval: float = 0.5) -> None:
        self._me, self.interval = psutil.Process(), interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for child in self._me.children(recursive=True):
            try:
                self.peak_mb = max(self.peak_mb, child.memory_info().rss / 2**20)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # ended between listing and reading

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ChildMemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def record_timing(
    name: str, seconds: float, profile: str, root: Path = ROOT, kernel_peak_mb: float | None = None
) -> None:
    """Add or replace the entry of `name` in ``book/_executed/timings.json`` (written atomically)."""
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


def execute_all(names: Sequence[str], profile: str, root: Path = ROOT, overrides: dict[str, Any] | None = None) -> None:
    """Execute `names` in order with a progress line each; stop at the first failure."""
    if not names:
        print("== execute: no notebooks to run")
    clock = root / "_build" / "book-start"  # written by `make book` before set-up
    if clock.is_file():
        setup = time.time() - float(clock.read_text().split()[0])
        clock.unlink()  # a later direct run of this module must not reuse an old clock
        record_timing("_setup", setup, profile, root)
        print(f"== set-up took {setup:.0f} s", flush=True)
    for k, name in enumerate(names, 1):
        print(f"== execute [{k}/{len(names)}] {name} (profile {profile}) ...", flush=True)
        with ChildMemoryPeak() as memory:
            seconds = execute_notebook(name, profile, root, overrides)
        record_timing(name, seconds, profile, root, memory.peak_mb)
        print(f"   {name}: done in {seconds:.1f} s, kernel peak {memory.peak_mb:,.0f} MB", flush=True)


def warn_mixed_profiles(root: Path = ROOT) -> None:
    """Say loudly if the executed notebooks about to be rendered come from different profiles."""
    path = root / "book" / "_executed" / "timings.json"
    timings: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    present = [n for n in NOTEBOOK_ORDER if (root / "book" / "_executed" / f"{n}.ipynb").is_file()]
    profiles = {n: timings.get(n, {}).get("profile", "unknown") for n in present}
    if len(set(profiles.values())) > 1:
        listing = ", ".join(f"{n}={p}" for n, p in profiles.items())
        print(f"!! MIXED PROFILES: the executed notebooks come from different profiles: {listing}", flush=True)


# --------------------------------------------------------------------------- MathJax


def vendor_mathjax(root: Path = ROOT) -> Path:
    """Ensure the MathJax subset is in ``book/_vendor/mathjax``; return that folder.

    Skipped when ``VENDORED.json`` there records the pinned tarball sha256 and every listed file exists.
    """
    dest = root / "book" / "_vendor" / "mathjax"
    stamp = dest / "VENDORED.json"
    if stamp.is_file():
        info = json.loads(stamp.read_text(encoding="utf-8"))
        if info.get("tarball_sha256") == MATHJAX_SHA256 and all((dest / f).is_file() for f in info.get("files", [])):
            return dest
    npm = shutil.which("npm")
    if npm is None:
        raise BookBuildError("npm is needed once to vendor MathJax (apt-get install -y npm); it was not found")
    print(f"== vendor: MathJax {MATHJAX_VERSION} from the npm registry", flush=True)
    with tempfile.TemporaryDirectory(prefix="layerinf-mathjax-") as tmp:
        proc = subprocess.run(
            [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent"], cwd=tmp, capture_output=True, text=True
        )
        tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise BookBuildError(f"npm pack mathjax@{MATHJAX_VERSION} failed:\n{proc.stderr.strip()}")
        digest = hashlib.sha256(tarballs[0].read_bytes()).hexdigest()
        if digest != MATHJAX_SHA256:
            raise BookBuildError(f"mathjax tarball sha256 {digest} differs from the pinned {MATHJAX_SHA256}")
        if dest.exists():
            shutil.rmtree(dest)
        files: list[str] = []
        with tarfile.open(tarballs[0]) as tar:
            for member in tar.getmembers():
                if not (member.isfile() and _MATHJAX_KEEP.match(member.name)):
                    continue
                rel = member.name.removeprefix("package/").removeprefix("es5/")
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                extracted = tar.extractfile(member)
                assert extracted is not None  # regular file
                target.write_bytes(extracted.read())
                files.append(rel)
    if "tex-chtml.js" not in files:
        raise BookBuildError("the mathjax tarball has no es5/tex-chtml.js")
    info = {"package": f"mathjax@{MATHJAX_VERSION}", "tarball_sha256": MATHJAX_SHA256, "files": sorted(files)}
    stamp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    size = sum((dest / f).stat().st_size for f in files) / 1e6
    print(f"   {len(files)} files, {size:.1f} MB in {dest.relative_to(root)}", flush=True)
    return dest


# --------------------------------------------------------------------------- table of contents


def _toc_entries(node: Any) -> Iterable[dict[str, Any]]:
    """Every mapping with a ``file`` key in a jb-book TOC, depth first."""
    if isinstance(node, dict):
        if "file" in node or "root" in node:
            yield node
        for value in node.values():
            yield from _toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _toc_entries(item)


def toc_files(toc: dict[str, Any]) -> list[str]:
    """Document paths (without extension) named in a jb-book TOC: the root, then the files in order."""
    return [str(e.get("file", e.get("root"))) for e in _toc_entries(toc)]


def page_exists(docname: str, root: Path = ROOT) -> bool:
    return any((root / f"{docname}{ext}").is_file() for ext in (".md", ".ipynb"))


def prune_toc(toc: dict[str, Any], root: Path = ROOT) -> tuple[dict[str, Any], list[str]]:
    """A copy of `toc` without chapters whose page does not exist, and the names left out.

    Parts that end up empty are dropped. The root page must exist.
    """
    if not page_exists(toc["root"], root):
        raise BookBuildError(f"the root page {toc['root']} of _toc.yml does not exist")
    missing: list[str] = []
    parts = []
    for part in toc.get("parts", []):
        chapters = []
        for chapter in part.get("chapters", []):
            if page_exists(chapter["file"], root):
                chapters.append(chapter)
            else:
                missing.append(chapter["file"])
        if chapters:
            parts.append({**part, "chapters": chapters})
    return {**toc, "parts": parts}, missing


# --------------------------------------------------------------------------- build and checks

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARNING_LINE = re.compile(r"WARNING:|ERROR:|\[Warning\]|Warning: Validation errors")


def build_html(root: Path = ROOT) -> Path:
    """Run ``jupyter-book build`` strictly; return ``_build/html``. Any warning fails the build."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pruned, missing = prune_toc(toc, root)
    toc_arg: list[str] = []
    if missing:
        partial = root / "_build" / "_toc.partial.yml"
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(yaml.safe_dump(pruned, sort_keys=False), encoding="utf-8")
        print(f"!! PARTIAL BOOK: these pages do not exist yet and are left out: {', '.join(missing)}", flush=True)
        toc_arg = ["--toc", str(partial)]
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else "jupyter-book", "build", str(root), *toc_arg]
    cmd += ["--warningiserror", "--nitpick", "--keep-going", "--all"]
    print("== build: " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    warnings = []
    for line in proc.stdout:
        sys.stdout.write(line)
        if _WARNING_LINE.search(line):
            warnings.append(_ANSI.sub("", line).rstrip())
    if proc.wait() != 0 or warnings:
        listing = "\n".join(warnings) or "(see the output above)"
        raise BookBuildError(f"jupyter-book build failed (exit {proc.returncode}) with warnings:\n{listing}")
    return root / "_build" / "html"


class _ResourceScanner(HTMLParser):
    """Collects URLs a browser would fetch by itself (not links a reader clicks)."""

    _ATTRS: ClassVar[dict[str, tuple[str, ...]]] = {
        "script": ("src",),
        "img": ("src", "srcset"),
        "source": ("src", "srcset"),
        "iframe": ("src",),
        "frame": ("src",),
        "embed": ("src",),
        "object": ("data",),
        "audio": ("src",),
        "video": ("src", "poster"),
        "track": ("src",),
        "input": ("src",),
    }
    #: ``<link rel=...>`` values that are references, not fetches.
    _LINK_NOFETCH = frozenset(
        {"canonical", "alternate", "author", "license", "help", "search", "next", "prev", "index"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link":
            rels = set((values.get("rel") or "").lower().split())
            if rels and rels <= self._LINK_NOFETCH:
                return
            names: tuple[str, ...] = ("href",)
        else:
            names = self._ATTRS.get(tag, ())
        for name in names:
            value = values.get(name) or ""
            for part in value.split(","):  # srcset: "url 2x, url 3x"
                url = part.strip().split(" ")[0]
                if url:
                    self.urls.append(url)
        if values.get("style"):
            self.urls.extend(_css_urls(values["style"] or ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(_css_urls(data))


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def _css_urls(css: str) -> list[str]:
    return [a or b for a, b in _CSS_URL.findall(css)]


def _is_external(url: str) -> bool:
    return url.lower().startswith(("http://", "https://", "//"))


def check_offline(html_dir: Path) -> None:
    """Fail if any built HTML page or stylesheet fetches a script, stylesheet, image, font or frame from outside.

    Links in ``<a href>`` are fine (a reader chooses to follow them). Raises `BookBuildError` listing
    ``file: url`` for every offender.
    """
    html_dir = Path(html_dir)
    if not html_dir.is_dir():
        raise BookBuildError(f"check_offline: {html_dir} is not a directory")
    offenders: list[str] = []
    for path in sorted(html_dir.rglob("*.html")):
        scanner = _ResourceScanner()
        scanner.feed(path.read_text(encoding="utf-8", errors="replace"))
        offenders += [f"{path.relative_to(html_dir)}: {u}" for u in scanner.urls if _is_external(u)]
    for path in sorted(html_dir.rglob("*.css")):
        css = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(html_dir)}: {u}" for u in _css_urls(css) if _is_external(u)]
    if offenders:
        raise BookBuildError("the book fetches resources from outside:\n" + "\n".join(sorted(set(offenders))))


def screenshot(pages: Sequence[Path], out_dir: Path) -> list[Path]:
    """Render HTML `pages` to PNG (1200×2400) in `out_dir` with headless Debian Chromium."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise BookBuildError("screenshots need Chromium, which is not installed: apt-get install -y chromium")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages:
        page = Path(page).resolve()
        if not page.is_file():
            raise BookBuildError(f"screenshot: {page} does not exist")
        parts = page.parts[page.parts.index("html") + 1 :] if "html" in page.parts else (page.name,)
        png = out_dir / ("__".join(parts).removesuffix(".html") + ".png")
        with tempfile.TemporaryDirectory(prefix="layerinf-chromium-") as profile_dir:
            cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", f"--screenshot={png}"]
            cmd += [f"--window-size={WINDOW_SIZE}", page.as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not png.is_file():
            raise BookBuildError(f"chromium could not render {page}:\n{proc.stderr.strip()[-2000:]}")
        print(f"   screenshot {png}", flush=True)
        written.append(png)
    return written


def screenshot_targets(html_dir: Path, requested: Sequence[str], root: Path = ROOT) -> list[Path]:
    """HTML files for `requested` docnames (e.g. ``book/intro``); all built TOC pages if empty."""
    if requested:
        names = [r.removesuffix(".html") for r in requested]
    else:
        names = toc_files(yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")))
    pages = [html_dir / f"{n}.html" for n in names]
    missing = [str(p) for p in pages if not p.is_file()]
    if requested and missing:
        raise BookBuildError(f"--screenshots: no built page {', '.join(missing)}")
    return [p for p in pages if p.is_file()]


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layerinf.bookbuild", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)} (default: default)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="execute only these notebooks")
    parser.add_argument("--no-execute", action="store_true", help="render the already executed notebooks")
    parser.add_argument(
        "--model",
        nargs="+",
        metavar="M",
        help="run the claim notebooks with these models "
        "(named model, Hugging Face id or local directory) instead of the profile's",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a notebook parameter (YAML value), e.g. --set seeds=[0,1] --set n_train=400; repeatable",
    )
    parser.add_argument(
        "--screenshots",
        nargs="*",
        metavar="PAGE",
        help="render pages (docnames such as book/intro; default: every page) to _build/screenshots/",
    )
    # A copy of the repository (e.g. to try the build with throwaway notebooks) can be built in place.
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        # Every value is checked before anything is vendored or executed.
        allowed("profile", args.profile, PROFILES)
        names = select_notebooks(args.only, root)
        overrides = parse_overrides(args.model, args.set)
        declared = {p for n in names for p in parameter_names(root / "notebooks" / f"{n}.py")}
        unknown = sorted(set(overrides) - declared)
        if unknown:
            raise BookBuildError(f"--set {unknown}: no notebook has such a parameter; known: {sorted(declared)}")
        for model in overrides.get("models", ()):
            check_model_name(model)
        if not args.no_execute:
            for name in names:
                check_grid_params(name, apply_overrides(name, load_params(name, args.profile, root), overrides, root))
    except (BookBuildError, ValueError) as err:
        print(f"bookbuild: error: {err}", file=sys.stderr)
        return 2  # a bad option or parameter, like the layerinf command's usage errors
    try:
        vendor_mathjax(root)
        if not args.no_execute:
            execute_all(names, args.profile, root, overrides)
        warn_mixed_profiles(root)
        html_dir = build_html(root)
        check_offline(html_dir)
        print(f"== offline check: no outside resources in {html_dir}")
        if args.screenshots is not None:
            screenshot(screenshot_targets(html_dir, args.screenshots, root), root / "_build" / "screenshots")
    except (BookBuildError, ValueError) as err:
        print(f"bookbuild: error: {err}", file=sys.stderr)
        return 1
    print(f"== book: {html_dir / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
