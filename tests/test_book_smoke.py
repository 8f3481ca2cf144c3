"""The whole book builds at the smoke profile: every notebook executes, every page renders with
warnings as errors, and the HTML requests nothing from outside (this is `make book PROFILE=smoke`,
run on a copy of the book sources so the developer's own build is left alone)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from layerinf.book import glued
from layerinf.book.screenshots import measure
from layerinf.verdicts import CRITERIA, VERDICTS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_smoke_book_builds(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "notebooks", copy / "notebooks")
    shutil.copytree(ROOT / "grids", copy / "grids")
    shutil.copytree(ROOT / "book", copy / "book", ignore=shutil.ignore_patterns("_executed"))
    env = {**os.environ, "LAYERINF_ARTIFACTS": str(tmp_path / "artifacts"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "layerinf.book", "--profile", "smoke", "--root", str(copy)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "PARTIAL BOOK" not in proc.stdout, "a page of _toc.yml has no source"
    html = copy / "_build" / "html"
    executed = copy / "book" / "_executed"
    for page in ("c1_cancellation", "c2_layers", "c3_aggregation", "c4_ndr", "scorecard", "cost", "teaching"):
        text = (html / "book" / "_executed" / f"{page}.html").read_text()
        assert "<img" in text or page == "scorecard", f"{page} shows no figure"
    # The verdicts are read from the values the notebooks computed and glued, not from the prose:
    # one bare word per claim and model on the scorecard, the same word and criterion on each page.
    card = glued(executed / "scorecard.ipynb")
    for claim, page in (("c1", "c1_cancellation"), ("c2", "c2_layers"), ("c3", "c3_aggregation"), ("c4", "c4_ndr")):
        values = glued(executed / f"{page}.ipynb")
        assert values[f"{claim}_verdict"] in VERDICTS, (page, values[f"{claim}_verdict"])
        assert values[f"{claim}_criterion"] == CRITERIA[claim]
        assert card[f"sc_{claim}_tiny"] == values[f"{claim}_verdict"]
        assert card[f"sc_{claim}_tiny_detection"] in VERDICTS
    timings = json.loads((copy / "book" / "_executed" / "timings.json").read_text())
    assert {t["profile"] for k, t in timings.items() if not k.startswith("_")} == {"smoke"}

    # A reader sees results, not plumbing: no page shows a parameters cell (its own or papermill's),
    # and every figure fills the text column as Chromium renders the page at 1280 px.
    for page in ("c1_cancellation", "c2_layers", "c3_aggregation", "c4_ndr", "scorecard", "cost"):
        path = html / "book" / "_executed" / f"{page}.html"
        text = path.read_text()
        assert "injected-parameters" not in text and "# Parameters" not in text, f"{page} shows papermill's cell"
        assert "grid_file = None" not in text, f"{page} shows its parameters cell"
        rendered = measure(path)
        figures = [f for f in rendered["figures"] if "_images/" in f["src"]]
        assert figures or page in ("scorecard", "cost"), f"{page}: no figure measured"  # cost: only with bench results
        for figure in figures:
            assert figure["width"] >= 0.95 * rendered["text"], (page, figure, rendered["text"])

    # The teaching chapter shows its code, and so its parameters cell: once, with this build's values.
    teaching = (html / "book" / "_executed" / "teaching.html").read_text()
    assert teaching.count("The parameters of this build") == 1 and "injected-parameters" not in teaching

    # The launch buttons' notebooks: no MyST role left in their prose, the glued values and figures
    # in its place, a set-up cell first; one runs with plain `jupyter execute` outside the book.
    launch = copy / "_build" / "launch" / "book" / "_executed"
    for page in ("c1_cancellation", "c2_layers", "c3_aggregation", "c4_ndr", "scorecard", "cost", "teaching"):
        nb = json.loads((launch / f"{page}.ipynb").read_text())
        assert "launch-setup" in nb["cells"][0]["metadata"]["tags"]
        prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert "{glue" not in prose and "{cite" not in prose and "{download}" not in prose, page
    assert (launch / "c2_layers.ipynb").read_text().count("attachment:") >= 1  # the glued figure
    ran = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter")), "execute", str(launch / "c4_ndr.ipynb"),
         "--output", "c4_ndr.launched"],
        env={**env, "LAYERINF_ROOT": str(copy), "LAYERINF_DATA_DIR": str(ROOT / "data")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]

    # A partial build (here: the cost page was never executed) renders, and drops links to the
    # pages it leaves out instead of failing on them.
    (executed / "cost.ipynb").unlink()
    partial = subprocess.run(
        [sys.executable, "-m", "layerinf.book", "--profile", "smoke", "--no-execute", "--root", str(copy)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert partial.returncode == 0, partial.stdout[-4000:] + partial.stderr[-4000:]
    assert "PARTIAL BOOK" in partial.stdout and "book/_executed/cost" in partial.stdout
    assert 'href="_executed/cost.html"' not in (html / "book" / "related.html").read_text()
