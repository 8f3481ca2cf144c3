"""The ``layerinf`` command line: one-line errors with exit status 2, listings, and a real run whose
printed summary is what ``layerinf results`` reads back from the artifact store."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from layerinf import cli

LAYERINF = str(Path(sys.executable).with_name("layerinf"))


def invoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the console-script entry point in this process: (exit status, stdout, stderr)."""
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["run", "--noise-rate", "1.5"], "noise_rate=1.5"),
        (["run", "--task", "nope"], "task='nope'"),
        (["run", "--methods", "tracin,foo"], "methods='foo'"),
        (["run", "--n-train", "0"], "n_train=0"),
        (["run", "--seed", "x"], "--seed"),
        (["run", "--profile", "huge"], "--profile"),
        (["run", "--set", "lr=fast"], "lr"),
        (["run", "--set", "nope=1"], "'nope'"),
        (["run", "--set", "lr"], "field=value"),
        (["run", "--setups", "tracin/nowhere/vote"], "group='nowhere'"),
        (["run", "--methods", "tracin", "--setups", "datainf/all/vote"], "datainf/all/vote"),
        (["run", "--baselines", "magic"], "baselines='magic'"),
        (["run", "--model", "some-org/some-model", "--task", "rt"], "some-org/some-model"),
        (["sweep", "no/such/grid.yaml"], "no/such/grid.yaml"),
        (["results", "--format", "xml"], "--format"),
        (["results", "--format", "parquet"], "--output"),
        (["book", "--model", "  "], "model"),
        (["nope"], "nope"),
    ],
)
def test_bad_parameters_exit_2_with_one_line_naming_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], names: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LAYERINF_ARTIFACTS", str(tmp_path))
    status, out, err = invoke(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert names in err
    assert "Traceback" not in err


def test_console_script_reports_offline_hub_id_in_one_line(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "LAYERINF_ARTIFACTS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [LAYERINF, "run", "--model", "some-org/some-model", "--task", "rt"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "HF_HUB_OFFLINE=1" in done.stderr
    assert "some-org/some-model" in done.stderr


def test_set_reaches_every_field_with_its_type() -> None:
    cfg = cli.build_config(
        "smoke",
        {"model": None, "n_train": 80},
        ["lr=1e-3", "train_embeddings=yes", "methods=tracin, cosine", "device=cpu", "epochs=1"],
    )
    assert (cfg.lr, cfg.train_embeddings, cfg.methods, cfg.device, cfg.epochs) == (
        1e-3,
        True,
        ("tracin", "cosine"),
        "cpu",
        1,
    )
    assert cfg.n_train == 80 and cfg.model == "tiny"  # the profile fills what is not given
    with pytest.raises(cli.ConfigError, match="repeats"):
        cli.build_config("smoke", {"n_train": 80}, ["n_train=90"])


def test_list_fields(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = invoke(capsys, "run", "--list-fields")
    assert status == 0
    assert out.startswith("model ") and "noise_rate" in out and "datainf_lambda" in out


def test_models_lists_named_models_and_what_needs_a_hub(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status, out, _ = invoke(capsys, "models")
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "available" in lines["tiny"] and "available" in lines["minilm"]
    assert "smollm2" in lines
    assert "HF_HUB_OFFLINE" in lines["roberta-large"] or "cache" in lines["roberta-large"]
    assert "GPT-2" in out  # the architectures a local directory may hold


def test_tasks_lists_offline_and_glue_tasks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LAYERINF_GLUE_DIR", raising=False)
    status, out, _ = invoke(capsys, "tasks")
    assert status == 0
    assert {"rt", "spam", "bbc", "glue/sst2", "glue/stsb"} <= {line.split()[0] for line in out.splitlines()[1:]}
    assert "LAYERINF_GLUE_DIR" in next(line for line in out.splitlines() if "glue/rte" in line)
    (tmp_path / "sst2").mkdir()
    monkeypatch.setenv("LAYERINF_GLUE_DIR", str(tmp_path))
    _, out, _ = invoke(capsys, "tasks")
    assert "available (local copy)" in next(line for line in out.splitlines() if "glue/sst2" in line)
    assert "missing" in next(line for line in out.splitlines() if "glue/rte" in line)


def test_book_passes_its_options_to_bookbuild(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.setattr(cli, "_bookbuild_options", lambda: {"--profile", "--only", "--no-execute"})
    status, _, _ = invoke(capsys, "book", "--profile", "smoke", "--only", "c1_cancellation")
    assert status == 0
    assert calls[-1][1:] == ["-m", "layerinf.book", "--profile", "smoke", "--only", "c1_cancellation"]
    status, _, err = invoke(capsys, "book", "--model", "tiny")
    assert status == 2 and "--model" in err and len(calls) == 1
    monkeypatch.setattr(cli, "_bookbuild_options", lambda: {"--profile", "--model"})
    status, _, _ = invoke(capsys, "book", "--model", "tiny", "--model", "minilm")
    assert status == 0 and calls[-1][-3:] == ["--model", "tiny", "minilm"]


def test_results_of_an_empty_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = invoke(capsys, "results", "--artifacts", str(tmp_path))
    assert status == 0
    assert out.strip().split(",")[:3] == ["run", "model", "task"]


def parse_summary(text: str) -> tuple[dict[tuple[str, str, str], str], dict[str, str], str]:
    """From `layerinf run` output: {(method, group, aggregation): printed NDR@30}, {setup: printed
    acc_selected} and the results directory."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NDR@30"))
    hows = lines[start + 1].split()[1:]
    ndr: dict[tuple[str, str, str], str] = {}
    method = ""
    i = start + 3
    while not lines[i].startswith(("retraining", "results:")):
        cells = lines[i].split()
        if len(cells) == len(hows) + 2:
            method, cells = cells[0], cells[1:]
        ndr.update({(method, cells[0], how): value for how, value in zip(hows, cells[1:], strict=True)})
        i += 1
    acc: dict[str, str] = {}
    if lines[i].startswith("retraining"):
        header = lines[i + 1].split()
        i += 2
        while not lines[i].startswith("results:"):
            row = dict(zip(header, lines[i].split(), strict=True))
            acc[row["setup"]] = row["acc_selected"]
            i += 1
    return ndr, acc, lines[i].removeprefix("results: ")


@pytest.mark.slow
def test_run_prints_what_results_reads_back(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "LAYERINF_ARTIFACTS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    argv = [LAYERINF, "run", "--model", "tiny", "--task", "rt", "--n-train", "64", "--seed", "0", "--profile", "smoke"]
    argv += ["--setups", "tracin/all/vote", "--baselines", "random", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    ndr, acc, where = parse_summary(done.stdout)
    assert Path(where).parent == tmp_path / "runs" and (Path(where) / "detection.csv").exists()
    assert {m for m, _, _ in ndr} == {"tracin", "cosine", "datainf", "tracin_we", "tracin_we_top10"}

    def results(table: str) -> pd.DataFrame:
        out = subprocess.run(
            [LAYERINF, "results", "--table", table], capture_output=True, text=True, env=env, timeout=120, check=True
        ).stdout
        return pd.read_csv(io.StringIO(out), keep_default_na=False)

    det = results("detection")
    assert set(det["run"]) == {Path(where).name}
    assert (det["n_train"] == 64).all() and (det["noise_rate"] == 0.2).all()
    shown = det[det["aggregation"].isin(["mean", "rank", "vote"])]
    assert len(shown) == len(ndr)
    for row in shown.to_dict("records"):
        assert ndr[(row["method"], row["group"], row["aggregation"])] == f"{row['ndr@30']:.3f}"
    parquet = tmp_path / "out" / "detection.parquet"
    subprocess.run([LAYERINF, "results", "--format", "parquet", "--output", str(parquet)], env=env, check=True)
    back = pd.read_parquet(parquet)
    assert list(back.columns) == list(det.columns)
    assert back["ndr@30"].tolist() == det["ndr@30"].tolist()
    ret = results("retraining").set_index("setup")
    assert set(ret.index) == set(acc) == {"tracin/all/vote", "random"}
    for setup, printed in acc.items():
        assert printed == f"{ret.loc[setup, 'acc_selected']:.3f}"


def test_book_passes_set_and_screenshots_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    status, _, _ = invoke(capsys, "book", "--set", "seeds=[1,2]", "--set", "llm.n_train=100", "--screenshots", "all")
    assert status == 0
    assert calls[-1][3:] == [
        "--profile",
        "default",
        "--set",
        "seeds=[1,2]",
        "--set",
        "llm.n_train=100",
        "--screenshots",
    ]
    status, _, _ = invoke(capsys, "book", "--screenshots", "book/intro")
    assert calls[-1][-2:] == ["--screenshots", "book/intro"]
