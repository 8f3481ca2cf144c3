"""Rendering the book strictly with jupyter-book, and checking that its HTML fetches nothing from outside."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import yaml

from layerinf.book.base import BookBuildError, book_root
from layerinf.book.toc import prune_toc

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


_WARNING_LINE = re.compile(r"WARNING:|ERROR:|\[Warning\]|Warning: Validation errors")


def partial_config(root: Path) -> Path:
    """A copy of ``_config.yml`` for a build that leaves pages out: references to a page that is not
    built (e.g. "see the cost page") are rendered as plain text instead of failing the build
    (Sphinx's ``ref.doc`` warnings only; every other warning still fails it)."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["suppress_warnings"] = [*sphinx.get("suppress_warnings", []), "ref.doc"]
    path = root / "_build" / "_config.partial.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build_html(root: Path | None = None) -> Path:
    """Run ``jupyter-book build`` strictly; return ``_build/html``. Any warning fails the build."""
    root = book_root(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pruned, missing = prune_toc(toc, root)
    toc_arg: list[str] = []
    if missing:
        partial = root / "_build" / "_toc.partial.yml"
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(yaml.safe_dump(pruned, sort_keys=False), encoding="utf-8")
        print(f"!! PARTIAL BOOK: these pages do not exist yet and are left out: {', '.join(missing)}", flush=True)
        toc_arg = ["--toc", str(partial), "--config", str(partial_config(root))]
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
