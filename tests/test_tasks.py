"""The task registry (`layerinf.tasks`): every registered task is complete, consistent with the
recorded sources.json, and what the configuration accepts. A new task module is checked here too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from layerinf import config, paths, tasks
from layerinf.config import ConfigError
from layerinf.tasks import HubSource, TaskSpec

SOURCES = json.loads(paths.sources_json().read_text(encoding="utf-8"))["sources"]


def test_every_task_module_is_discovered_and_registers() -> None:
    files = {p.stem for p in Path(tasks.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert files and all(f"layerinf.tasks.{name}" in sys.modules for name in files)
    assert len(tasks.names()) == len(set(tasks.names())) == len(tasks.specs())


def test_listing_order_and_the_configuration_read_the_registry() -> None:
    assert tasks.names("prepared")[:3] == ("rt", "spam", "bbc") == config.OFFLINE_TASKS[:3]
    assert config.GLUE_TASKS == ("qnli", "mrpc", "sst2", "qqp", "cola", "mnli", "rte", "stsb")
    assert tasks.names() == tasks.names("prepared") + tasks.names("hub")
    for name in tasks.names():
        config.check_task(name)
        assert config.RunConfig(task=name).task == name
    with pytest.raises(ConfigError, match=r"task='imdb' is not allowed; choose one of: rt, spam, bbc, glue/qnli"):
        config.check_task("imdb")
    with pytest.raises(ConfigError, match="task=3"):
        tasks.get(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind='web'"):
        tasks.names("web")


@pytest.mark.parametrize("name", tasks.names("prepared"))
def test_prepared_task_matches_its_recorded_source(name: str) -> None:
    spec = tasks.get(name)
    assert spec.kind == "prepared" and spec.parse is not None and spec.hub is None and spec.train_size is None
    recorded = SOURCES[name]
    assert {k: recorded[k] for k in spec.archive} == dict(spec.archive), "task module vs sources.json"
    for key in ("archive_sha256", "raw_sha256", "prepared_sha256"):
        assert len(recorded[key]) == 64, key
    assert tuple(recorded["rows_per_label"]) == spec.label_names
    assert all(text.strip() for text in (spec.title, spec.licence, spec.url, spec.cite))


@pytest.mark.parametrize("name", tasks.names("hub"))
def test_hub_task_is_complete(name: str) -> None:
    spec = tasks.get(name)
    assert spec.kind == "hub" and spec.hub is not None and spec.parse is None
    assert isinstance(spec.train_size, int) and spec.train_size > 0
    assert spec.hub.text and spec.hub.validation and spec.hub.train == "train"
    raw = np.array([0.0, 1.0, 1.0, 0.0, -1.0])  # what every GLUE task but STS-B stores
    keep, labels = spec.hub.labels(raw)
    labels = np.asarray(labels)
    assert labels.dtype == np.int64 and not keep[-1]
    assert set(labels[keep].tolist()) <= set(range(len(spec.label_names)))


def test_glue_label_rules() -> None:
    raw = np.array([0.0, 1.0, 2.0, 2.9, 3.0, -1.0])
    keep, labels = tasks.get("glue/stsb").hub.labels(raw)
    assert keep.tolist() == [True] * 5 + [False] and labels[:5].tolist() == [0, 0, 0, 0, 1]
    keep, labels = tasks.get("glue/mnli").hub.labels(raw)
    assert keep.tolist() == [True, True, False, False, False, False] and labels[:2].tolist() == [0, 1]
    assert tasks.get("glue/mnli").hub.validation == "validation_matched"


def test_a_task_spec_is_checked_and_registered_once() -> None:
    base = dict(name="x", label_names=("a", "b"), title="t", licence="l", url="u", cite="c", order=0)
    with pytest.raises(ValueError, match="exactly one of parse"):
        TaskSpec(**base)
    hub = HubSource("org/data", "x", "text", None, "validation", lambda raw: (raw >= 0, raw.astype("int64")))
    with pytest.raises(ValueError, match="exactly one of parse"):
        TaskSpec(**base, hub=hub, parse=lambda archive, source: ("", []))
    with pytest.raises(ValueError, match="archive must name"):
        TaskSpec(**base, parse=lambda archive, source: ("", []))
    with pytest.raises(ValueError, match="distinct"):
        TaskSpec(**{**base, "label_names": ("a", "a")}, hub=hub)
    with pytest.raises(ValueError, match="registered twice"):
        tasks.register(TaskSpec(**{**base, "name": "rt"}, hub=hub))
    assert tasks.register(tasks.get("rt")) is tasks.get("rt")  # re-registering the same spec is a no-op
