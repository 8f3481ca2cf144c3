"""Run records: the tidy tables of every finished run, stored under ``runs/<hash>/``.

`runner.run` writes one record per run (`record`); `collect_results` reads every current, intact
record back, and `read_config` gives a record's configuration. The CLI and the experiment layer go
through these functions, never through the store's directory layout.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from layerinf.cache import Store, write_json
from layerinf.config import RunConfig
from layerinf.setups import Setup

if TYPE_CHECKING:
    from layerinf.runner import RunResult


#: Bump a stage's version when its code changes what it computes: old cache entries are then unused.
#: Downstream keys carry the versions of the stages they read from (`Pipeline.key`), and a run's
#: record carries all of them (`record_key`), so a bump never lets an old result reach a new table.
#: retrain 2: dropout seeded per retraining (before, it continued the generator of the process, so a
#: retraining depended on which stages had run before it in that process, e.g. after a resume).
#: runs 3: Vote's k is a fraction of the training examples the run has, not of n_train (they differ
#: where a GLUE training split is smaller than n_train).
#: gradients 2: examples batched longest first within a chunk (less padding); values equal up to
#: float rounding, which can reorder near-ties of the scores.
#: finetune 2 / retrain 3 / runs 4: fine-tuning is seeded like a retraining (so "no removal" is the
#: fine-tuning itself), every epoch records balanced accuracy, runs record the class make-up of each
#: removed set and a per-run `info` table.
#: gradients 3 / runs 5: every key carries the content hash of the run's examples and the device
#: type; each gradient chunk records its identity (key, split, position) under its checksum; a record's
#: manifest covers its config.json.
#: gradients 4: a store keeps each module's per-example gradients in a memory-mapped
#: ``dense/<module>.npy`` (chunk files keep the small arrays and a checksum over both), read lazily.
#: retrain_pack 1 / runs 6: retrainings of equal size are trained in packs (`retraining`); a record
#: also holds its examples (examples.csv), where its per-module scores are (scores.json), the
#: self-influence of every training example and module (self_influence.csv) and, without injected
#: noise, the agreement of the layer groups (agreement.csv): what `explain` reads.
VERSIONS = {"finetune": 2, "gradients": 4, "influence": 1, "retrain": 3, "retrain_pack": 1, "runs": 6}


def stage_versions() -> dict[str, int]:
    """The versions of the stages a run's record is computed from (all but ``runs`` itself)."""
    return {k: v for k, v in VERSIONS.items() if k != "runs"}


def record_key(
    cfg: RunConfig, setups: Sequence[Setup], baselines: Sequence[str], identity: dict[str, str] | None = None
) -> dict:
    """The cache key of a run's recorded tables (``runs/<hash>/``): the configuration, the setups,
    the version of every stage (so tables computed by older code are never served as current) and the
    run's `Pipeline.identity` (content hash of its examples, device type)."""
    return {
        **cfg.to_dict(),
        "setups": [s.name for s in setups],
        "baselines": list(baselines),
        "stage_versions": stage_versions(),
        **(identity or {}),
    }


def record(
    store: Store, result: RunResult, setups: Sequence[Setup], baselines: Sequence[str], identity: dict[str, str]
) -> Path:
    """Write the run's tidy tables under ``runs/<hash>/`` (read by `collect_results` and the CLI),
    and what `explain` reads (`run_outputs`)."""
    from layerinf.examples import examples_table

    def write(out: Path) -> None:
        for name in TABLES:
            if len(getattr(result, name)):  # an empty table (e.g. no retraining) is not written
                getattr(result, name).to_csv(out / f"{name}.csv", index=False)
        write_json(out / "timings.json", {"wall": result.timings, "compute": result.compute})
        examples_table(result).to_csv(out / "examples.csv", index=False)
        result.self_influence.to_csv(out / "self_influence.csv", index=False)
        write_json(out / "scores.json", {m: _relative(Path(p), store.root) for m, p in result.scores_paths.items()})

    return store.cached("runs", record_key(result.cfg, setups, baselines, identity), VERSIONS["runs"], write)


TABLES = ("finetune", "detection", "cancellation", "retraining", "info", "agreement")


def _relative(path: Path, root: Path) -> str:
    """`path` relative to the store `root` (so a moved store still finds its scores), else absolute."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def find_record(store: Store, run: str | Path) -> Path:
    """The directory of run record `run`: its name (16 hex digits, or a unique prefix) or its path."""
    from layerinf.config import ConfigError

    path = Path(run).expanduser()
    if path.is_dir() and (path / "manifest.json").is_file():
        return path
    root = store.root / "runs"
    hits = sorted(p for p in root.glob(f"{path.name}*") if p.is_dir() and _RECORD_NAME.fullmatch(p.name))
    if len(hits) != 1:
        found = "no" if not hits else f"{len(hits)}"
        raise ConfigError(
            f"run={str(run)!r}: {found} run record(s) match in {root}; give the name or directory that "
            "`layerinf run` printed (`results: ...`)"
        )
    return hits[0]


def run_outputs(run: Any, store: Store | None = None) -> dict[str, Any]:
    """What `layerinf.examples.explain` reads of a finished run (a `RunResult`, or a record's name or
    directory): ``config`` (dict), ``examples`` (`examples.examples_table`), ``scores`` ({method:
    path of its per-module scores}) and ``self_influence`` ([n_train × modules])."""
    from layerinf.config import ConfigError
    from layerinf.examples import examples_table

    if hasattr(run, "splits"):
        return {
            "config": run.cfg.to_dict(),
            "examples": examples_table(run),
            "scores": dict(run.scores_paths),
            "self_influence": run.self_influence,
        }
    store = store or Store()
    entry = find_record(store, run)
    missing = [f for f in ("examples.csv", "scores.json", "self_influence.csv") if not (entry / f).is_file()]
    if missing or not Store.verify(entry):
        why = f"has no {', '.join(missing)} (written by an older layerinf)" if missing else "fails its checksums"
        raise ConfigError(f"run record {entry} {why}; run that configuration again to write it")
    scores = {m: store.root / p for m, p in json.loads((entry / "scores.json").read_text()).items()}
    gone = [str(p) for p in scores.values() if not p.is_file()]
    if gone:
        raise ConfigError(f"run record {entry}: its scores {gone[0]} are gone from the store; run it again")
    examples = pd.read_csv(entry / "examples.csv", keep_default_na=False, dtype={"id": str, "text": str})
    return {
        "config": json.loads((entry / "config.json").read_text()),
        "examples": examples,
        "scores": scores,
        "self_influence": pd.read_csv(entry / "self_influence.csv"),
    }


#: The directory name of a finished store entry: the 16 hex digits of its key hash.
_RECORD_NAME = re.compile(r"[0-9a-f]{16}")


def _stage_versions(entry: Path) -> dict | str | None:
    """The stage versions recorded in a run record's config.json; "unreadable" if it cannot be read
    (the checksum check then reports the record as corrupted)."""
    try:
        return json.loads((entry / "config.json").read_text()).get("stage_versions")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return "unreadable"


def collect_results(store: Store | None = None) -> dict[str, pd.DataFrame]:
    """Every recorded run's tables, concatenated: {"detection": ..., "retraining": ..., ...}; each row
    carries the run's hash in column ``run``.

    Records of an older ``VERSIONS["runs"]``, or whose tables came from other versions of the stages
    (``stage_versions`` in their config.json), are stale (made by code that computed something else)
    and left out; a record whose files do not match its checksums is left out with a warning."""
    current = stage_versions()
    store = store or Store()
    tables: dict[str, list[pd.DataFrame]] = {}
    root = store.root / "runs"
    # Only finished records: a record is renamed into place whole, so ``<hash>.tmp-*`` directories
    # (being written, or left by a killed process) and ``.lock`` files are never read.
    records = (
        sorted(p for p in root.iterdir() if p.is_dir() and _RECORD_NAME.fullmatch(p.name)) if root.is_dir() else []
    )
    for entry in records:
        manifest = entry / "manifest.json"
        if not manifest.is_file():
            warnings.warn(
                f"run record {entry} has no manifest.json (deleted or damaged) and was skipped; "
                "re-run that configuration to write it again",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        try:
            version = json.loads(manifest.read_text()).get("version")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            version = None  # unreadable: reported as corrupted below
        if version is None or not Store.verify(entry):
            warnings.warn(
                f"run record {entry} is corrupted (checksum mismatch) and was skipped; "
                "re-run that configuration to write it again",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        if version != VERSIONS["runs"] or _stage_versions(entry) != current:
            continue  # stale: made by code that computed something else
        for name in TABLES:
            if (entry / f"{name}.csv").exists():
                frame = pd.read_csv(entry / f"{name}.csv")
                tables.setdefault(name, []).append(frame.assign(run=entry.name))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}


def read_config(store: Store, name: str) -> dict[str, Any]:
    """The recorded configuration (``config.json``) of run record `name` ({} if it has none)."""
    path = store.root / "runs" / name / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def tidy(store: Store, names: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The tables of ``layerinf results`` (`results.tidy_results`) of every record in `store`, or of
    the records `names` only."""
    from layerinf.results import tidy_results

    tables = collect_results(store)
    if names is not None:
        keep = set(names)
        tables = {k: f[f["run"].isin(keep)].reset_index(drop=True) for k, f in tables.items()}
    runs = sorted({r for f in tables.values() for r in f["run"].unique()})
    return tidy_results(tables, {run: read_config(store, run) for run in runs})
