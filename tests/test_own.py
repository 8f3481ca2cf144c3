"""Own data, own model state and the examples themselves: a task from a CSV / JSONL file or a saved
dataset (checked up front, one line per problem), a run without injected noise, an adapter scored
without fine-tuning, `explain` and the documented score files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from layerinf import cli
from layerinf.config import ConfigError, RunConfig, preset
from layerinf.records import record_key
from layerinf.userdata import Columns, make_user_splits, read_pool


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def reviews(n: int = 60) -> list[dict]:
    return [{"review": f"review number {i}", "sentiment": ("good", "bad")[i % 2]} for i in range(n)]


def test_own_csv_is_read_with_its_columns_and_sampled_like_a_prepared_task(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", reviews())
    cfg = RunConfig(task=str(path), text_column="review", label_column="sentiment", n_train=30, n_query=10, n_eval=20)
    cfg = cfg.replace(noise_rate=0.1)
    splits = make_user_splits(cfg)
    assert splits.label_names == ("bad", "good")
    assert (len(splits.train), len(splits.query), len(splits.eval)) == (30, 10, 20)
    ids = [*splits.train.ids, *splits.query.ids, *splits.eval.ids]
    assert len(set(ids)) == 60 and ids[0].startswith("r-")
    assert splits.noisy_mask.sum() == 3
    np.testing.assert_array_equal(splits.noisy_mask, splits.train.labels != splits.clean_train_labels)
    again = make_user_splits(cfg)
    assert again.fingerprint() == splits.fingerprint()
    rows = reviews()
    rows[0]["review"] = "changed"
    write_csv(path, rows)
    assert make_user_splits(cfg).fingerprint() != splits.fingerprint()  # the content is in the keys


def test_jsonl_pairs_integer_labels_and_separate_query_and_eval_files(tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"x{i}", "a": f"first {i}", "b": f"second {i}", "y": i % 3 * 5}) for i in range(30)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / "q.jsonl").write_text("\n".join(lines[:9]), encoding="utf-8")
    (tmp_path / "e.jsonl").write_text("\n".join(lines[9:21]), encoding="utf-8")
    pool = read_pool(str(tmp_path / "train.jsonl"), Columns(text="a", pair="b", label="y"))
    assert pool.label_names == ("0", "5", "10")  # numeric order, not text order
    assert pool.text_pairs[3] == "second 3" and pool.ids[3] == "x3"
    cfg = RunConfig(
        task=str(tmp_path / "train.jsonl"),
        text_column="a",
        pair_column="b",
        label_column="y",
        query_file=str(tmp_path / "q.jsonl"),
        eval_file=str(tmp_path / "e.jsonl"),
        n_train=24,
        n_query=100,
        n_eval=100,
        noise_rate=0.0,
    )
    splits = make_user_splits(cfg)
    assert (len(splits.train), len(splits.query), len(splits.eval)) == (24, 9, 12)  # capped to the files
    assert not splits.noisy_mask.any()


def test_a_save_to_disk_directory_is_own_data(tmp_path: Path) -> None:
    import datasets

    rows = reviews(20)
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "saved"))
    pool = read_pool(str(tmp_path / "saved"), Columns(text="review", label="sentiment"))
    assert len(pool) == 20 and pool.label_names == ("bad", "good")


@pytest.mark.parametrize(
    ("content", "columns", "names"),
    [
        (b"review,sentiment\nfine,good\n", Columns(text="text", label="sentiment"), "no column 'text' (--text-column)"),
        (b"review,sentiment\nfine,good\nok,good\n", Columns(text="review", label="sentiment"), "only one class"),
        (b"review,sentiment\nfine,good\n ,bad\n", Columns(text="review", label="sentiment"), "row 2: empty text"),
        (b"review,sentiment\nfine,good\nok,\n", Columns(text="review", label="sentiment"), "row 2: empty label"),
        (b"review,sentiment\nfin\xe9,good\nok,bad\n", Columns(text="review", label="sentiment"), "not UTF-8"),
        (b"review,sentiment\n", Columns(text="review", label="sentiment"), "has no examples"),
    ],
)
def test_bad_own_data_is_one_line_naming_the_problem(
    tmp_path: Path, content: bytes, columns: Columns, names: str
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        read_pool(str(path), columns)
    assert names in str(err.value) and "\n" not in str(err.value)


def test_bad_own_fields_fail_in_the_config(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", reviews())
    for fields, names in [
        ({"task": str(tmp_path / "missing.csv")}, "no such file"),
        ({"task": "rt", "text_column": "review"}, "text_column='review' needs own data"),
        ({"task": str(path), "query_file": str(path)}, "give both files or neither"),
        ({"task": "rt", "query_file": str(path), "eval_file": str(path)}, "needs own data"),
        ({"adapter": str(tmp_path / "nowhere")}, "adapter="),
    ]:
        with pytest.raises(ConfigError, match=None) as err:
            RunConfig(**fields)
        assert names in str(err.value), err.value


def test_registered_tasks_keep_their_record_keys() -> None:
    cfg = preset("smoke")
    assert "adapter" not in cfg.to_dict() and "text_column" not in cfg.to_dict()
    assert record_key(cfg, (), ()) == record_key(RunConfig.from_dict(cfg.to_dict()), (), ())


def test_module_scores_round_trip_through_safetensors(tmp_path: Path) -> None:
    from safetensors import safe_open

    from layerinf.scores import ModuleInfo, ModuleScores

    infos = (ModuleInfo("layer0.query.lora_A", 0, "query_A", 8), ModuleInfo("cl.classifier.weight", None, "cl", 4))
    rng = np.random.default_rng(0)
    ms = ModuleScores(
        rng.normal(size=(2, 5, 3)), infos, 1, "tracin", np.array([f"t{i}" for i in range(5)]), np.array(["a", "b", "c"])
    )
    ms.save_safetensors(tmp_path / "s.safetensors")
    back = ModuleScores.load_safetensors(tmp_path / "s.safetensors")
    np.testing.assert_array_equal(back.values, ms.values)
    assert back.modules == infos and list(back.train_ids) == list(ms.train_ids) and back.method == "tracin"
    with safe_open(str(tmp_path / "s.safetensors"), framework="numpy") as fh:  # readable without layerinf
        assert set(fh.keys()) == {"layer0.query.lora_A", "cl.classifier.weight"}
        assert json.loads(fh.metadata()["query_ids"]) == ["a", "b", "c"]


def test_explain_and_run_refuse_what_cannot_be_done(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from layerinf import runner

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LAYERINF_ARTIFACTS", str(tmp_path))
    path = write_csv(tmp_path / "r.csv", reviews())
    cfg = preset("smoke", task=str(path), text_column="review", label_column="sentiment", noise_rate=0.0)
    with pytest.raises(ConfigError, match="oracle"):
        runner.run(cfg, baselines=("oracle",))
    with pytest.raises(ConfigError, match="retraining"):
        runner.run(cfg.replace(adapter=str(path)), baselines=("random",))
    assert cli.main(["explain", "0123456789abcdef"]) == 2
    assert "no run record(s) match" in capsys.readouterr().err


def words(rng, pool: list[str]) -> str:
    return " ".join(rng.sample(pool, 3)) + " film"


POSITIVE = ["wonderful", "great", "loved", "delight", "brilliant", "superb"]
NEGATIVE = ["awful", "terrible", "hated", "boring", "dreadful", "dull"]


def sentiment_files(tmp_path: Path, n_train: int, flipped: list[int]) -> tuple[Path, Path, Path]:
    """Train, query and evaluation CSVs of an easy sentiment task; the training labels at `flipped`
    are wrong, by hand (real label noise, not injected)."""
    import random

    rng = random.Random(1)

    def rows(n: int, start: int) -> list[dict]:
        out = []
        for i in range(n):
            label = ("pos", "neg")[i % 2]
            out.append(
                {
                    "id": f"ex{start + i:03d}",
                    "text": words(rng, POSITIVE if label == "pos" else NEGATIVE),
                    "label": label,
                }
            )
        return out

    train = rows(n_train, 0)
    for i in flipped:
        train[i]["label"] = "neg" if train[i]["label"] == "pos" else "pos"
    return (
        write_csv(tmp_path / "train.csv", train),
        write_csv(tmp_path / "query.csv", rows(16, 500)),
        write_csv(tmp_path / "eval.csv", rows(16, 600)),
    )


@pytest.mark.slow
def test_from_a_csv_with_wrong_labels_to_explain_finding_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LAYERINF_ARTIFACTS", str(tmp_path / "artifacts"))
    flipped = [3, 17, 28, 41]
    train, query, evaluation = sentiment_files(tmp_path, 48, flipped)
    argv = ["run", "--model", "minilm", "--profile", "smoke", "--task", str(train), "--query-file", str(query)]
    argv += ["--eval-file", str(evaluation), "--noise-rate", "0", "--n-train", "48", "--methods", "tracin", "-q"]
    argv += ["--set", "max_length=16", "--set", "lr=3e-3", "--set", "epochs=3"]
    status, out, err = invoke(capsys, *argv)
    assert status == 0, err
    assert "no injected noise" in out and "two groups both flag (Jaccard)" in out
    record = out.split("layerinf explain ")[-1].split()[0]
    status, out, err = invoke(
        capsys,
        "explain",
        record,
        "--groups",
        "all,cl",
        "-k",
        "4",
        "--output",
        str(tmp_path / "x"),
        "--format",
        "parquet",
    )
    assert status == 0, err
    wrong = {f"ex{i:03d}" for i in flipped}
    top = pd.read_parquet(tmp_path / "x" / "top.parquet")
    for group in ("all", "cl"):
        harmful = top[(top["group"] == group) & (top["aggregation"] == "mean") & (top["direction"] == "harmful")]
        assert set(harmful["id"]) == wrong, harmful
        selfinf = top[(top["group"] == group) & (top["aggregation"] == "self_influence")]
        assert set(selfinf["id"]) == wrong
    assert all(i in out for i in wrong)
    scores = pd.read_parquet(tmp_path / "x" / "scores.parquet")
    assert len(scores) == 48 and "tracin/all/mean" in scores.columns and not scores["noisy"].any()
    assert (tmp_path / "x" / "module_scores_tracin.safetensors").is_file()


def invoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_saved_adapter_is_scored_without_fine_tuning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from layerinf import runner
    from layerinf.adapters import HEAD_FILE, save_adapter
    from layerinf.models import load_model, load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LAYERINF_ARTIFACTS", str(tmp_path / "artifacts"))
    train, query, evaluation = sentiment_files(tmp_path, 24, [])
    cfg = preset("smoke", task=str(train), query_file=str(query), eval_file=str(evaluation), n_train=24)
    cfg = cfg.replace(noise_rate=0.0, methods=("tracin",), device="cpu")
    model = load_model(cfg, 2, load_tokenizer(cfg), torch.device("cpu"))
    torch.manual_seed(5)
    with torch.no_grad():  # as if fine-tuned: every trainable tensor moved
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    expected = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    save_adapter(model, tmp_path / "adapter")
    result = runner.run(cfg.replace(adapter=str(tmp_path / "adapter")), baselines=(), progress=False)
    store = tmp_path / "artifacts"
    assert not (store / "finetune").exists()  # nothing was fine-tuned
    assert result.finetune["epoch"].tolist() == [0] and result.compute["finetune"] == 0.0
    assert len(result.agreement) and not len(result.detection)
    # the gradients were taken at the adapter's state: scoring it again through a fresh pipeline
    # reads the same cache entry, and another adapter gets another one
    pipe = runner.Pipeline(cfg.replace(adapter=str(tmp_path / "adapter")), progress=False)
    state = pipe.finetune()[1]
    for name, value in expected.items():
        torch.testing.assert_close(state[name], value)
    state_file = tmp_path / "state.safetensors"  # a trainable-state checkpoint works the same
    save_file({n: v.contiguous() for n, v in expected.items()}, str(state_file))
    from_file = runner.Pipeline(cfg.replace(adapter=str(state_file)), progress=False).finetune()[1]
    for name, value in expected.items():
        torch.testing.assert_close(from_file[name], value)
    head = load_file(str(tmp_path / "adapter" / HEAD_FILE))
    head = {k: v + 1.0 for k, v in head.items()}
    save_file(head, str(tmp_path / "adapter" / HEAD_FILE))
    other = runner.Pipeline(cfg.replace(adapter=str(tmp_path / "adapter")), progress=False)
    assert other.key("gradients") != pipe.key("gradients")
    (tmp_path / "adapter" / HEAD_FILE).unlink()
    with pytest.raises(ConfigError, match="no classification-head weights"):
        runner.run(cfg.replace(adapter=str(tmp_path / "adapter")), baselines=(), progress=False)
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 4}))
    with pytest.raises(ConfigError, match="lora_r"):
        runner.run(cfg.replace(adapter=str(tmp_path / "adapter")), baselines=(), progress=False)


def test_agreement_and_side_by_side_on_a_hand_worked_case() -> None:
    import pandas as pd

    from layerinf.examples import agreement_table, side_by_side
    from layerinf.scores import ModuleInfo, ModuleScores

    infos = (ModuleInfo("we", None, "we", 1), ModuleInfo("layer0.query.lora_A", 0, "query_A", 1))
    values = np.zeros((2, 4, 1))
    values[0, :, 0] = [0.0, 1.0, 2.0, 3.0]  # WE flags examples 0 and 1
    values[1, :, 0] = [3.0, 0.0, 1.0, 2.0]  # layer 0 flags 1 and 2
    ms = ModuleScores(values, infos, 1, "tracin", np.array(["a", "b", "c", "d"]), np.array(["q"]))
    table = agreement_table(ms, ["we", "layer0"], ["mean"], np.ones(1, dtype=bool), 1, 0.5)
    row = table.iloc[0]
    assert (row.group_a, row.group_b, row.n_flagged, row.overlap) == ("we", "layer0", 2, 1)
    assert row.jaccard == pytest.approx(1 / 3)
    top = pd.DataFrame(
        [
            {"method": "tracin", "group": g, "aggregation": "mean", "direction": "harmful", "rank": r}
            | {"text": f"{g} text {r}", "label_name": "pos", "noisy": r == 1}
            for g in ("we", "block2")
            for r in (2, 1)
        ]
    )
    pair = side_by_side(top, ["block2", "we"], labels={"we": "WE"})
    assert list(pair.columns) == ["block2 text", "block2 label", "block2 noisy", "WE text", "WE label", "WE noisy"]
    assert pair.loc[1, "WE text"] == "we text 1" and bool(pair.loc[1, "block2 noisy"])


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["run", "--task", "no/such/file.csv"], "task='no/such/file.csv': no such file"),
        (["run", "--task", "rt", "--label-column", "y"], "label_column='y' needs own data"),
        (["run", "--adapter", "no/such/adapter"], "adapter='no/such/adapter'"),
        (["explain", "abc", "--format", "xml"], "--format"),
        (["explain", "abc", "-k", "0"], "no run record(s) match"),
    ],
)
def test_bad_own_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], names: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LAYERINF_ARTIFACTS", str(tmp_path))
    status, out, err = invoke(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and names in err, err
