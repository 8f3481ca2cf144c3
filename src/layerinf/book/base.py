"""What every stage of the book build shares: its error, and the checkout it builds in."""

from __future__ import annotations

from pathlib import Path

from layerinf import paths


class BookBuildError(RuntimeError):
    """A stage of the book build failed; the message says which and why."""


def book_root(root: Path | None = None) -> Path:
    """`root`, else the checkout (`layerinf.paths.book_root`: ``ConfigError`` without one)."""
    return Path(root) if root is not None else paths.book_root()
