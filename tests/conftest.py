"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hub off, a private artifact store, and no data or GLUE directory from the developer's shell."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LAYERINF_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv("LAYERINF_DATA_DIR", raising=False)
    monkeypatch.delenv("LAYERINF_GLUE_DIR", raising=False)
