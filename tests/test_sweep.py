"""Sweeps: grid files expand into validated jobs, the cost model, and the local and Ray executors
giving identical results tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import save_file

from layerinf import sweep
from layerinf.config import ConfigError

GRIDS = Path(__file__).resolve().parents[1] / "grids"
LAYERINF = str(Path(sys.executable).with_name("layerinf"))
TINY_GRID = {
    "name": "tiny",
    "profile": "smoke",
    "models": ["tiny"],
    "tasks": ["rt"],
    "seeds": [0, 1],
    "methods": ["tracin", "datainf"],
    "setups": ["tracin/all/vote"],
    "groups": ["we", "block1", "cl", "all"],
    "aggregations": ["mean", "vote"],
    "config": {"n_train": 64, "n_query": 12, "n_eval": 24, "epochs": 1},
}


def test_paper_grid_is_320_jobs_with_every_retraining_setup() -> None:
    grid = sweep.load_grid(GRIDS / "paper.yaml")
    assert len(grid.jobs) == 4 * 8 * 10 == 320
    job = grid.jobs[0]
    assert job.cfg.n_train == 4500 and job.cfg.epochs == 10 and job.cfg.max_length == 128
    # 3 methods × 7 groups × 4 aggregations, plus random, oracle and none_reseed (none is the fine-tuning)
    assert len(job.setups) == 84 and job.baselines == ("random", "oracle", "none", "none_reseed")
    assert job.retrainings == 87
    lrs = {j.cfg.model: j.cfg.lr for j in grid.jobs}
    assert lrs == {
        "roberta-large": 3e-4,
        "meta-llama/Llama-3.2-1B": 1e-4,
        "Qwen/Qwen2.5-1.5B": 3e-4,
        "mistralai/Mistral-7B-v0.3": 5e-5,
    }
    assert len({(j.cfg.model, j.cfg.task, j.cfg.seed) for j in grid.jobs}) == 320


def test_dry_run_prints_job_count_and_gpu_hours(capsys: pytest.CaptureFixture[str]) -> None:
    from layerinf import cli

    assert cli.main(["sweep", str(GRIDS / "paper.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "grid 'paper' (profile paper): 320 jobs"
    total = next(line for line in out.splitlines() if line.startswith("estimated GPU hours"))
    hours = float(total.split(":")[1].split()[0].replace(",", ""))
    assert hours == pytest.approx(sweep.estimate(sweep.load_grid(GRIDS / "paper.yaml"))["gpu"], rel=1e-3)
    assert 1_000 < hours < 100_000
    assert "throughputs are assumptions" in out


def test_smoke_grid_parses() -> None:
    grid = sweep.load_grid(GRIDS / "smoke.yaml")
    assert grid.profile == "smoke" and len(grid.jobs) == 2 and {j.cfg.model for j in grid.jobs} == {"tiny"}


def test_cost_model_is_the_documented_formula() -> None:
    job = sweep.parse_grid({**TINY_GRID, "baselines": ["random", "none"]}).jobs[0]
    rate, ref = sweep.CPU_THROUGHPUT["tiny"]
    # one setup and the random baseline retrain; "none" is the fine-tuning itself
    want = 64 * 1 * (1 + 2) / rate * job.cfg.max_length / ref + sweep.JOB_OVERHEAD["cpu"]
    assert sweep.job_cost(job).seconds == pytest.approx(want)
    hub = sweep.parse_grid(
        {"profile": "paper", "models": ["Qwen/Qwen2.5-1.5B"], "tasks": ["glue/rte"], "seeds": [0]}
    ).jobs[0]
    cost = sweep.job_cost(hub)
    # RTE has 2,490 training examples (< n_train = 4,500); no retraining in this grid
    want = 2490 * 10 / sweep.GPU_THROUGHPUT["Qwen/Qwen2.5-1.5B"] + sweep.JOB_OVERHEAD["gpu"]
    assert cost.device == "gpu" and cost.seconds == pytest.approx(want)


def test_parameter_count_from_names_and_local_directories(tmp_path: Path) -> None:
    assert sweep.parameter_count("Qwen/Qwen2.5-1.5B") == pytest.approx(1.5e9)
    assert sweep.parameter_count("HuggingFaceTB/SmolLM2-135M-Instruct") == pytest.approx(1.35e8)
    assert sweep.parameter_count("FacebookAI/roberta-large") == pytest.approx(3.55e8)
    assert sweep.parameter_count("someone/mystery") is None
    save_file({"a": np.zeros((10, 20), np.float32), "b": np.zeros(5, np.float32)}, str(tmp_path / "model.safetensors"))
    assert sweep.parameter_count(str(tmp_path)) == 205
    # an unknown size falls into the 1B class, and says so
    job = sweep.parse_grid({"profile": "paper", "models": ["someone/mystery"], "tasks": ["glue/sst2"], "seeds": [0]})
    assert "assumed" in sweep.job_cost(job.jobs[0]).basis


def test_cross_product_setups_give_we_only_methods_the_we_group() -> None:
    setups = sweep.expand_setups(
        {"methods": ["tracin", "tracin_we"], "groups": ["all", "block1"], "aggregations": ["mean"]},
        "grid",
        ["tracin", "tracin_we"],
    )
    assert setups == ("tracin/all/mean", "tracin/block1/mean", "tracin_we/we/mean")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_train": 10}, "config:"),
        ({"colour": "red"}, "colour"),
        ({"seeds": ["a"]}, "seeds"),
        ({"models": []}, "models"),
        ({"setups": ["tracin/nowhere/vote"]}, "nowhere"),
        ({"setups": ["cosine/all/vote"]}, "cosine/all/vote"),
        ({"setups": {"methods": ["tracin"], "groups": ["all"], "aggregations": ["mean"], "x": 1}}, "'x'"),
        ({"baselines": ["magic"]}, "magic"),
        ({"noise_rates": [1.2]}, "noise_rate"),
        ({"per_model": {"minilm": {"lr": 1.0}}}, "minilm"),
        ({"config": {"seed": 3}}, "config.seed"),
        ({"config": {"learning_rate": 3}}, "learning_rate"),
        ({"per_model": {"tiny": {"methods": ["tracin"]}}}, "methods"),
        ({"config": {"n_train": -1}}, "n_train"),
        ({"profile": "huge"}, "profile"),
        # a WE-only method on a group without the word embedding: refused by --dry-run too, not at run time
        ({"methods": ["tracin", "tracin_we"], "setups": ["tracin_we/block1/mean"]}, "we, all, type:we"),
    ],
)
def test_bad_grids_are_refused_before_anything_runs(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        sweep.parse_grid({**TINY_GRID, **change})


def test_ray_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install -r requirements-ray\.txt"):
        sweep.import_ray()


def test_ray_executor_needs_a_shared_artifact_path() -> None:
    grid = sweep.parse_grid(TINY_GRID)
    with pytest.raises(ConfigError, match="--artifacts"):
        sweep.execute(grid, "ray", artifacts=None)
    with pytest.raises(ConfigError, match="--address"):
        sweep.execute(grid, "local", address="auto")


def _sweep(grid_file: Path, artifacts: Path, *extra: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LAYERINF_ARTIFACTS": str(artifacts.parent / "unused")}
    done = subprocess.run(
        [LAYERINF, "sweep", str(grid_file), "--artifacts", str(artifacts), "--quiet", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _tables(artifacts: Path) -> dict[str, pd.DataFrame]:
    from layerinf.cache import Store
    from layerinf.runner import collect_results

    return sweep.tidy_results(collect_results(Store(artifacts)), artifacts)


@pytest.mark.slow
def test_local_and_ray_executors_give_identical_tables(tmp_path: Path) -> None:
    if not os.environ.get("CI"):
        pytest.importorskip("ray", reason="optional extra: pip install -r requirements-ray.txt")
    grid_file = tmp_path / "tiny.yaml"
    grid_file.write_text(yaml.safe_dump({**TINY_GRID, "baselines": ["random"]}))
    out_local = _sweep(grid_file, tmp_path / "local")
    out_ray = _sweep(grid_file, tmp_path / "ray", "--executor", "ray")
    assert "2 jobs with the local executor" in out_local and "2 jobs with the ray executor" in out_ray
    assert not (tmp_path / "unused").exists()  # --artifacts reached every worker
    local, ray = _tables(tmp_path / "local"), _tables(tmp_path / "ray")
    assert len(local["detection"]) == 2 * 2 * 4 * 2  # seeds × methods × groups × aggregations
    assert len(local["retraining"]) == 2 * 2  # seeds × (1 setup + 1 baseline)
    for name in ("detection", "retraining"):
        pd.testing.assert_frame_equal(local[name], ray[name], check_exact=True)

    # the printed summaries agree too (they are computed from the same tables)
    def summary(out: str) -> list[str]:  # without the first line (timing) and the last (artifacts path)
        return out.splitlines()[1:-1]

    assert summary(out_local) == summary(out_ray)
    # the recorded configuration is the grid's
    recorded = sorted((tmp_path / "ray" / "runs").glob("*/config.json"))
    assert {json.loads(p.read_text())["seed"] for p in recorded} == {0, 1}
    assert all(json.loads(p.read_text())["n_train"] == 64 for p in recorded)
