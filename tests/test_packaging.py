"""The pins are written once (requirements*.txt) and mirrored by environment.yml."""

from __future__ import annotations

from pathlib import Path

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
