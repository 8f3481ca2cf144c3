"""Whole-page screenshots of built pages, and how they render, with headless Debian Chromium (``--screenshots``)."""

from __future__ import annotations

import html
import json
import re
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


#: The reader's window: 1280 CSS px wide; a screenshot is as tall as the whole page.
WIDTH = 1280
#: Chromium's screenshots stop at about this many pixels; longer pages are cut there (and say so).
MAX_HEIGHT = 16_000

#: Run in the page once it has settled (images included): the page's height, the width of the text
#: column and the rendered width of every figure in it, written into the DOM that --dump-dom prints.
_MEASURE_JS = """
<script>
setTimeout(function () {  // virtual time (--virtual-time-budget): after load, images and fonts
  var article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  var text = article.getBoundingClientRect().width;
  var style = window.getComputedStyle(article);
  text -= parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  var figures = Array.prototype.map.call(article.querySelectorAll("img"), function (img) {
    return {src: (img.getAttribute("src") || "").slice(0, 80), width: img.getBoundingClientRect().width};
  });
  var out = document.createElement("pre");
  out.id = "layerinf-measure";
  out.textContent = JSON.stringify({height: document.documentElement.scrollHeight, text: text, figures: figures});
  document.body.appendChild(out);
}, 3000);
</script>
"""


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise BookBuildError("screenshots need Chromium, which is not installed: apt-get install -y chromium")
    return chromium


def measure(page: Path, width: int = WIDTH) -> dict:
    """How `page` renders at `width` CSS px: ``height`` (of the whole page), ``text`` (the width of
    the text column) and ``figures`` (the rendered width of every image in it), from headless Chromium
    on a copy of the page with a measuring script (the copy sits beside the page, so its relative
    resources load, and is removed afterwards)."""
    page = Path(page).resolve()
    probe = page.with_name(f".measure-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE_JS + "</body>"), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory(prefix="layerinf-chromium-") as profile_dir:
            cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--dump-dom"]
            cmd += ["--virtual-time-budget=15000", f"--window-size={width},1000", probe.as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(r'<pre id="layerinf-measure">(.*?)</pre>', proc.stdout, flags=re.DOTALL)
    if proc.returncode != 0 or match is None:
        raise BookBuildError(f"chromium could not measure {page}:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(html.unescape(match.group(1)))


def screenshot(pages: Sequence[Path], out_dir: Path, width: int = WIDTH) -> list[Path]:
    """Render HTML `pages` to whole-page PNGs (`width` CSS px wide, as tall as the page, up to
    `MAX_HEIGHT`) in `out_dir` with headless Debian Chromium."""
    chromium = _chromium()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages:
        page = Path(page).resolve()
        if not page.is_file():
            raise BookBuildError(f"screenshot: {page} does not exist")
        height = int(measure(page, width)["height"])
        if height > MAX_HEIGHT:
            print(f"   {page.name}: {height} px tall, cut at {MAX_HEIGHT}", flush=True)
        parts = page.parts[page.parts.index("html") + 1 :] if "html" in page.parts else (page.name,)
        png = out_dir / ("__".join(parts).removesuffix(".html") + ".png")
        with tempfile.TemporaryDirectory(prefix="layerinf-chromium-") as profile_dir:
            cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", f"--screenshot={png}"]
            cmd += ["--hide-scrollbars", f"--window-size={width},{min(height, MAX_HEIGHT)}", page.as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0 or not png.is_file():
            raise BookBuildError(f"chromium could not render {page}:\n{proc.stderr.strip()[-2000:]}")
        print(f"   screenshot {png} ({width}×{min(height, MAX_HEIGHT)})", flush=True)
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
