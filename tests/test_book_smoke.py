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
from layerinf.verdicts import CRITERIA, VERDICTS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_smoke_book_builds(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "notebooks", copy / "notebooks")
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
