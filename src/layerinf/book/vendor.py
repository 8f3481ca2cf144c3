"""MathJax, vendored once from the npm registry so that the rendered book fetches nothing from outside."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from layerinf.book.base import BookBuildError, book_root

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


def vendor_mathjax(root: Path | None = None) -> Path:
    """Ensure the MathJax subset is in ``book/_vendor/mathjax``; return that folder.

    Skipped when ``VENDORED.json`` there records the pinned tarball sha256 and every listed file exists.
    """
    root = book_root(root)
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
