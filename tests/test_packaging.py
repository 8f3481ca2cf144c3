"""Packaging: the pins are written once (requirements*.txt) and mirrored by environment.yml, and the package
runs as a non-editable install outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_environment_yml_mirrors_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    expected = pins(ROOT / "requirements.txt") | pins(ROOT / "requirements-extra.txt")
    assert set(pip) - {"-e ."} == expected


def test_every_requirement_is_pinned_exactly():
    for name in ("requirements.txt", "requirements-extra.txt", "requirements-ray.txt"):
        for pin in pins(ROOT / name):
            assert "==" in pin, f"{name}: {pin!r} is not pinned with =="


def test_torch_is_pinned_with_the_rest():
    assert "torch==2.13.0" in pins(ROOT / "requirements.txt")


@pytest.mark.slow
def test_a_non_editable_install_runs_outside_the_checkout(tmp_path: Path) -> None:
    """`pip install .` (a copy, not the editable checkout) runs a smoke run from another directory, with
    the data and artifact locations given by environment variables, and ships the recorded sources.json.
    The book commands need a checkout and say so in one line."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(site), str(source)], check=True, capture_output=True, text=True, timeout=120)
    assert (site / "layerinf" / "tasks" / "sources.json").is_file()
    assert not (site / "layerinf" / "bookbuild.py").exists()

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LAYERINF_ROOT", "LAYERINF_GLUE_DIR", "PYTHONPATH")}
    env |= {"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "LAYERINF_DATA_DIR": str(ROOT / "data")}
    env["LAYERINF_ARTIFACTS"] = str(tmp_path / "artifacts")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    where = run("-c", "import layerinf, layerinf.paths as p; print(layerinf.__file__); print(p.checkout_root())")
    assert where.returncode == 0, where.stderr
    file, checkout = where.stdout.split()
    assert Path(file).resolve().is_relative_to(site.resolve()) and checkout == "None", where.stdout
    smoke = run("-m", "layerinf", "run", "--model", "tiny", "--task", "rt", "--seed", "0", "--profile", "smoke",
                "--n-train", "32", "--set", "n_query=8", "--set", "n_eval=16", "--set", "epochs=1",
                "--methods", "tracin", "--quiet")  # fmt: skip
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-4000:]
    assert "NDR@30" in smoke.stdout and any((tmp_path / "artifacts").iterdir())
    assert not (work / "artifacts").exists() and not (work / "data").exists()
    for args in (("-m", "layerinf", "book", "--profile", "smoke"), ("-m", "layerinf.book", "--profile", "smoke")):
        book = run(*args)
        assert book.returncode == 2 and book.stderr.count("\n") == 1, book.stderr
        assert "checkout" in book.stderr and "LAYERINF_ROOT" in book.stderr


def test_binder_takes_the_cpu_torch_and_the_same_pins() -> None:
    lines = [ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-r ../requirements.txt" in lines  # the pins live in one place
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "--no-deps -r requirements-extra.txt" in post and "layerinf.tools.prepare prepare" in post
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
