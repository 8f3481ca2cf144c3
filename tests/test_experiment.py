"""Experiments: experiment (grid) files expand into validated jobs, the cost model, and the local and Ray executors
giving identical results tables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import save_file

from layerinf import costs, execution, experiment, setups
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
    grid = experiment.load(GRIDS / "paper.yaml")
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
    assert hours == pytest.approx(costs.estimate(experiment.load(GRIDS / "paper.yaml"))["gpu"], rel=1e-3)
    assert 1_000 < hours < 100_000
    assert "throughputs are assumptions" in out


def test_smoke_grid_parses() -> None:
    grid = experiment.load(GRIDS / "smoke.yaml")
    assert grid.profile == "smoke" and len(grid.jobs) == 2 and {j.cfg.model for j in grid.jobs} == {"tiny"}


def test_cost_model_is_the_documented_formula() -> None:
    job = experiment.parse({**TINY_GRID, "baselines": ["random", "none"]}).jobs[0]
    rate, ref = costs.CPU_THROUGHPUT["tiny"]
    # one setup and the random baseline retrain; "none" is the fine-tuning itself
    want = 64 * 1 * (1 + 2) / rate * job.cfg.max_length / ref + costs.JOB_OVERHEAD["cpu"]
    assert costs.job_cost(job).seconds == pytest.approx(want)
    hub = experiment.parse(
        {"profile": "paper", "models": ["Qwen/Qwen2.5-1.5B"], "tasks": ["glue/rte"], "seeds": [0]}
    ).jobs[0]
    cost = costs.job_cost(hub)
    # RTE has 2,490 training examples (< n_train = 4,500); no retraining in this grid
    want = 2490 * 10 / costs.GPU_THROUGHPUT["Qwen/Qwen2.5-1.5B"] + costs.JOB_OVERHEAD["gpu"]
    assert cost.device == "gpu" and cost.seconds == pytest.approx(want)


def test_parameter_count_from_names_and_local_directories(tmp_path: Path) -> None:
    assert costs.parameter_count("Qwen/Qwen2.5-1.5B") == pytest.approx(1.5e9)
    assert costs.parameter_count("HuggingFaceTB/SmolLM2-135M-Instruct") == pytest.approx(1.35e8)
    assert costs.parameter_count("FacebookAI/roberta-large") == pytest.approx(3.55e8)
    assert costs.parameter_count("someone/mystery") is None
    save_file({"a": np.zeros((10, 20), np.float32), "b": np.zeros(5, np.float32)}, str(tmp_path / "model.safetensors"))
    assert costs.parameter_count(str(tmp_path)) == 205
    # an unknown size falls into the 1B class, and says so
    job = experiment.parse({"profile": "paper", "models": ["someone/mystery"], "tasks": ["glue/sst2"], "seeds": [0]})
    assert "assumed" in costs.job_cost(job.jobs[0]).basis


def test_cross_product_setups_give_we_only_methods_the_we_group() -> None:
    specs = setups.expand_setups(
        {"methods": ["tracin", "tracin_we"], "groups": ["all", "block1"], "aggregations": ["mean"]},
        "grid",
        ["tracin", "tracin_we"],
    )
    assert specs == ("tracin/all/mean", "tracin/block1/mean", "tracin_we/we/mean")


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
        experiment.parse({**TINY_GRID, **change})


def test_ray_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install -r requirements-ray\.txt"):
        execution.import_ray()


def test_ray_executor_needs_a_shared_artifact_path() -> None:
    grid = experiment.parse(TINY_GRID)
    with pytest.raises(ConfigError, match="--artifacts"):
        execution.run_experiment(grid, executor="ray", store=None)
    with pytest.raises(ConfigError, match="--address"):
        execution.run_experiment(grid, executor="local", address="auto")


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
    from layerinf.records import tidy

    return tidy(Store(artifacts))


@pytest.mark.slow
def test_local_and_ray_executors_give_identical_tables(tmp_path: Path) -> None:
    """A sweep on the local executor and on a local Ray cluster (a task per run's scores, per
    retraining pack, per record) gives identical tables; a re-run on Ray recomputes only a pack
    whose result is missing (a killed worker's) and reuses every finished one."""
    if not os.environ.get("CI"):
        pytest.importorskip("ray", reason="optional extra: pip install -r requirements-ray.txt")
    grid_file = tmp_path / "tiny.yaml"
    grid = {
        **TINY_GRID,
        "setups": ["tracin/all/vote", "tracin/cl/mean", "tracin/block1/mean"],
        "baselines": ["random"],
        "config": {**TINY_GRID["config"], "retrain_pack": 2},  # 4 retrainings of one size: 2 packs per run
    }
    grid_file.write_text(yaml.safe_dump(grid))
    out_local = _sweep(grid_file, tmp_path / "local")
    out_ray = _sweep(grid_file, tmp_path / "ray", "--executor", "ray")
    assert "2 jobs with the local executor" in out_local and "2 jobs with the ray executor" in out_ray
    assert not (tmp_path / "unused").exists()  # --artifacts reached every worker
    local, ray = _tables(tmp_path / "local"), _tables(tmp_path / "ray")
    assert len(local["detection"]) == 2 * 2 * 4 * 2  # seeds × methods × groups × aggregations
    assert len(local["retraining"]) == 2 * 4  # seeds × (3 setups + 1 baseline)
    for name in ("detection", "retraining"):
        pd.testing.assert_frame_equal(local[name], ray[name], check_exact=True)
    packs = sorted((tmp_path / "ray" / "retrain_pack").glob("*/manifest.json"))
    assert len(packs) == 2 * 2  # seeds × packs, each trained by its own task

    # the printed summaries agree too (they are computed from the same tables)
    def summary(out: str) -> list[str]:  # without the first line (timing) and the last (artifacts path)
        return out.splitlines()[1:-1]

    assert summary(out_local) == summary(out_ray)
    # the recorded configuration is the grid's
    recorded = sorted((tmp_path / "ray" / "runs").glob("*/config.json"))
    assert {json.loads(p.read_text())["seed"] for p in recorded} == {0, 1}
    assert all(json.loads(p.read_text())["n_train"] == 64 for p in recorded)

    # A pack lost with its worker (its entry gone) is trained again; the others and the runs are reused.
    lost = packs[0].parent
    shutil.rmtree(lost)
    kept = {p: p.stat().st_mtime_ns for p in packs[1:]}
    _sweep(grid_file, tmp_path / "ray", "--executor", "ray")
    assert (lost / "manifest.json").exists()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    pd.testing.assert_frame_equal(_tables(tmp_path / "ray")["retraining"], ray["retraining"], check_exact=True)


# --------------------------------------------------------------------------------------------------
# One experiment layer: the book's grid, the Python API and `layerinf run` build the same jobs.

BOOK_GRIDS = GRIDS / "book"


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_profile_has_one_book_grid_every_page_reads(profile: str) -> None:
    book = experiment.book(profile, BOOK_GRIDS / f"{profile}.yaml")
    assert set(book) == {"main", "llm"}
    main, llm = book["main"], book["llm"]
    assert main.profile == llm.profile == profile
    assert main.jobs[0].baselines == ("random", "oracle", "none", "none_reseed") and main.setups
    assert llm.setups == () and llm.jobs[0].baselines == ()  # the LLM is detection only
    # epochs, sampling and noise rate are shared by the two experiments
    first = (main.first.epochs, main.first.sampling, main.first.noise_rate)
    assert first == (llm.first.epochs, llm.first.sampling, llm.first.noise_rate)


def test_the_default_book_grid_is_the_grid_its_pages_ran_before() -> None:
    """The run configurations of the default book (what every cache key is built from) are exactly
    those the notebooks' parameters described before the experiment layer replaced them."""
    main = experiment.book("default", BOOK_GRIDS / "default.yaml")["main"]
    from layerinf.config import preset

    METHODS5 = ("tracin", "cosine", "datainf", "tracin_we", "tracin_we_top10")

    setups = main.setups
    want = [
        preset("default", model="minilm", task=t, seed=s, n_train=250, n_query=80, n_eval=500, epochs=2,
               sampling="balanced", noise_rate=0.2, methods=METHODS5)
        for t in ("bbc", "spam")
        for s in (0, 1, 2, 3)
    ]  # fmt: skip
    assert [j.cfg for j in main.jobs] == want
    assert len(setups) == 17 and setups[0] == "tracin/we/mean"


def test_book_overrides_reach_the_right_experiment_and_are_validated() -> None:
    path = BOOK_GRIDS / "default.yaml"
    book = experiment.book("default", path, models=["tiny"], overrides={"seeds": [1, 2], "llm.n_train": 100})
    assert book["main"].models == ("tiny",) and book["main"].seeds == (1, 2)
    assert book["llm"].first.n_train == 100 and book["llm"].seeds == (0, 1, 2)
    with pytest.raises(ConfigError, match="seed=-4"):
        experiment.book("default", path, overrides={"seeds": [-4]})
    with pytest.raises(ConfigError, match="block9"):
        experiment.book("default", path, overrides={"setups": ["tracin/block9/mean"]})
    with pytest.raises(ConfigError, match="'n_trian' is neither"):
        experiment.book("default", path, overrides={"n_trian": 5})
    with pytest.raises(ConfigError, match="prefix must be one of main, llm"):
        experiment.book("default", path, overrides={"gpu.n_train": 5})
    with pytest.raises(ConfigError, match="profile 'default', not 'smoke'"):
        experiment.book("smoke", path)


def test_define_and_from_config_build_what_a_spec_builds() -> None:
    from layerinf.config import preset

    spec = experiment.parse(TINY_GRID)
    defined = experiment.define(
        "smoke",
        ["tiny"],
        ["rt"],
        [0, 1],
        setups=["tracin/all/vote"],
        baselines=(),
        groups=["we", "block1", "cl", "all"],
        aggregations=["mean", "vote"],
        methods=["tracin", "datainf"],
        n_train=64,
        n_query=12,
        n_eval=24,
        epochs=1,
    )
    assert defined.jobs == spec.jobs
    cfg = preset("smoke", n_train=64, n_query=12, n_eval=24, epochs=1, methods=("tracin", "datainf"), seed=1)
    one = experiment.from_config(cfg, "smoke", ["tracin/all/vote"], ["random"])
    assert [j.cfg for j in one.jobs] == [cfg] and one.jobs[0].baselines == ("random",)
    params = spec.parameters()
    assert params.scope == "tiny on rt, seeds 0, 1" and params.n_train == 64 and params.setups == ["tracin/all/vote"]


def test_the_public_api_is_small_and_lazy() -> None:
    code = (
        "import sys, layerinf; assert 'torch' not in sys.modules and 'numpy' not in sys.modules;"
        "import json; print(json.dumps(sorted(layerinf.__all__)));"
        "assert layerinf.run_experiment.__module__ == 'layerinf.execution'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = json.loads(done.stdout)
    assert "run_experiment" in names and "define_experiment" in names and len(names) < 20
