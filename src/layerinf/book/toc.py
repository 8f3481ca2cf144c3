"""The table of contents (``_toc.yml``): the pages it names, and a copy without the pages not written yet."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from layerinf.book.base import BookBuildError, book_root


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


def page_exists(docname: str, root: Path | None = None) -> bool:
    root = book_root(root)
    return any((root / f"{docname}{ext}").is_file() for ext in (".md", ".ipynb"))


def prune_toc(toc: dict[str, Any], root: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """A copy of `toc` without chapters whose page does not exist, and the names left out.

    Parts that end up empty are dropped. The root page must exist.
    """
    root = book_root(root)
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
