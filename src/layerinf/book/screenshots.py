"""Screenshots of built pages with headless Debian Chromium (``--screenshots``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from layerinf.book.base import BookBuildError, book_root
from layerinf.book.toc import toc_files

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


def screenshot_targets(html_dir: Path, requested: Sequence[str], root: Path | None = None) -> list[Path]:
    """HTML files for `requested` docnames (e.g. ``book/intro``); all built TOC pages if empty."""
    root = book_root(root)
    if requested:
        names = [r.removesuffix(".html") for r in requested]
    else:
        names = toc_files(yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")))
    pages = [html_dir / f"{n}.html" for n in names]
    missing = [str(p) for p in pages if not p.is_file()]
    if requested and missing:
        raise BookBuildError(f"--screenshots: no built page {', '.join(missing)}")
    return [p for p in pages if p.is_file()]
