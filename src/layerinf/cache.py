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

Torch-free (the checksum helper is shared with the data module).
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

from layerinf.config import ConfigError
from layerinf.pools import sha256_file


class CacheMismatch(RuntimeError):
    """A cached artifact was made with another configuration than the one asked for."""


class _Unreadable(Exception):
    """An entry's config.json cannot be read (truncated or garbled): the entry is corrupted."""


def artifacts_root() -> Path:
    """Where caches and artifacts live: ``$LAYERINF_ARTIFACTS``, else the checkout's ``artifacts/``
    (an installed package: ``./artifacts``); see `layerinf.paths`."""
    from layerinf import paths

    return paths.artifacts_dir()


def key_hash(stage: str, version: int, config: dict[str, Any]) -> str:
    text = json.dumps({"stage": stage, "version": version, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, sort_keys=True, default=str))


class Store:
    """Artifacts under `root` (default: `artifacts_root()`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else artifacts_root()
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(
                f"the artifact store {self.root} is a file, not a directory; point LAYERINF_ARTIFACTS (or "
                "--artifacts) at a directory"
            )

    def path(self, stage: str, config: dict[str, Any], version: int) -> Path:
        return self.root / stage / key_hash(stage, version, config)

    def _check_config(self, entry: Path, config: dict[str, Any]) -> None:
        """Raise `CacheMismatch` if the entry's config.json differs from `config`; `_Unreadable` if it
        cannot be read (a truncated or garbled file: the entry is then treated as corrupted)."""
        try:
            stored = json.loads((entry / "config.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _Unreadable(str(err)) from err
        if not isinstance(stored, dict):
            raise _Unreadable(f"{entry / 'config.json'} does not hold a JSON object")
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
        try:
            self._check_config(entry, config)
            intact = self.verify(entry)
        except _Unreadable:
            intact = False
        if not intact:
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return entry

    @staticmethod
    def verify(entry: Path) -> bool:
        """True if every file listed in the entry's manifest (config.json included) exists with its
        recorded sha256, and every file of the entry is listed (nothing unverified can be read)."""
        try:
            files = json.loads((entry / "manifest.json").read_text())["files"]
            present = {p.name for p in entry.iterdir() if p.is_file()} - {"manifest.json"}
            return (
                isinstance(files, dict)
                and "config.json" in files
                and present == set(files)
                and all(sha256_file(entry / name) == digest for name, digest in files.items())
            )
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            return False

    def cached(self, stage: str, config: dict[str, Any], version: int, compute: Callable[[Path], None]) -> Path:
        """Load the entry, or run `compute(tmpdir)` (which writes the files) and publish it atomically."""
        entry = self.path(stage, config, version)
        # A published entry never changes, so it is read without the lock: a fully cached run
        # replays from a read-only store.
        found = self.load(stage, config, version)
        if found is not None:
            return found
        entry.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(entry) + ".lock"):
            found = self.load(stage, config, version)
            if found is not None:
                return found
            # Temporary directories of this entry left by a killed process (we hold the entry's lock,
            # so no live process is writing one).
            for stale in entry.parent.glob(f"{entry.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = entry.with_name(f"{entry.name}.tmp-{uuid.uuid4().hex[:8]}")
            tmp.mkdir()
            try:
                start = time.perf_counter()
                compute(tmp)
                seconds = time.perf_counter() - start
                # config.json is listed in the manifest like every other file: an edited
                # configuration is a corrupted entry, not a different one.
                (tmp / "config.json").write_text(json.dumps(_canonical(config), indent=1, sort_keys=True))
                files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
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
            try:
                self._check_config(entry, config)
                return entry
            except _Unreadable:  # garbled config.json: what the directory holds is unknown, start over
                shutil.rmtree(entry, ignore_errors=True)
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
