"""Content-addressed artifact store: one directory per (stage, configuration, stage version).

- The key is a hash of exactly the configuration fields a stage reads plus its version, so a stage
  is recomputed when (and only when) something it depends on changed.
- `config.json` is stored beside every artifact; loading compares it with the requested
  configuration and refuses loudly on a mismatch (`CacheMismatch`).
- Finished entries are written into a temporary directory and renamed into place (atomic), with a
  `manifest.json` of sha256 checksums; a corrupted or truncated entry is detected, deleted and
  recomputed, never used. A file lock stops two processes computing the same entry at once.
- Resumable stages (per-example gradients) use a work directory that keeps finished chunks.
- No pickle: JSON, .npz (allow_pickle=False) and safetensors only.

NumPy-free and torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock


class CacheMismatch(RuntimeError):
    """A cached artifact was made with another configuration than the one asked for."""


def artifacts_root() -> Path:
    """Where caches and artifacts live: ``$LAYERINF_ARTIFACTS`` or ``<repo>/artifacts``."""
    env = os.environ.get("LAYERINF_ARTIFACTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "artifacts"


def key_hash(stage: str, version: int, config: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "version": version, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, sort_keys=True, default=str))


class Store:
    """Artifacts under `root` (default: `artifacts_root()`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else artifacts_root()

    def path(self, stage: str, config: dict[str, Any], version: int) -> Path:
        return self.root / stage / key_hash(stage, version, config)

    def _check_config(self, entry: Path, config: dict[str, Any]) -> None:
        stored = json.loads((entry / "config.json").read_text())
        if stored != _canonical(config):
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != _canonical(config).get(k))
            raise CacheMismatch(
                f"{entry} was computed with another configuration (fields differing: {diff}); "
                "delete that directory or use another LAYERINF_ARTIFACTS"
            )

    def load(self, stage: str, config: dict[str, Any], version: int) -> Path | None:
        """The finished entry's directory, or None if absent or corrupted (then it is removed)."""
        entry = self.path(stage, config, version)
        manifest = entry / "manifest.json"
        if not manifest.exists():
            return None
        self._check_config(entry, config)
        try:
            files = json.loads(manifest.read_text())["files"]
            intact = all((entry / name).exists() and _sha256(entry / name) == digest for name, digest in files.items())
        except (json.JSONDecodeError, KeyError, OSError):
            intact = False
        if not intact:
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return entry

    def cached(self, stage: str, config: dict[str, Any], version: int, compute: Callable[[Path], None]) -> Path:
        """Load the entry, or run `compute(tmpdir)` (which writes the files) and publish it atomically."""
        entry = self.path(stage, config, version)
        entry.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(entry) + ".lock"):
            found = self.load(stage, config, version)
            if found is not None:
                return found
            tmp = entry.with_name(f"{entry.name}.tmp-{uuid.uuid4().hex[:8]}")
            tmp.mkdir()
            try:
                start = time.perf_counter()
                compute(tmp)
                seconds = time.perf_counter() - start
                files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
                (tmp / "config.json").write_text(json.dumps(_canonical(config), indent=1, sort_keys=True))
                (tmp / "manifest.json").write_text(
                    json.dumps({"stage": stage, "version": version, "files": files, "seconds": seconds})
                )
                if entry.exists():  # a corrupted leftover
                    shutil.rmtree(entry)
                os.replace(tmp, entry)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return entry

    @staticmethod
    def seconds(entry: Path) -> float:
        """Wall time the entry took to compute (recorded when it was made; NaN if unknown)."""
        try:
            return float(json.loads((entry / "manifest.json").read_text()).get("seconds", float("nan")))
        except (OSError, json.JSONDecodeError):
            return float("nan")

    def workdir(self, stage: str, config: dict[str, Any], version: int) -> Path:
        """A directory for a resumable stage: created with its config.json, or checked against it."""
        entry = self.path(stage, config, version)
        if (entry / "config.json").exists():
            self._check_config(entry, config)
            return entry
        entry.mkdir(parents=True, exist_ok=True)
        tmp = entry / f"config.json.tmp-{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(_canonical(config), indent=1, sort_keys=True))
        os.replace(tmp, entry / "config.json")
        return entry


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=float))
    os.replace(tmp, path)
