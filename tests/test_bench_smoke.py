"""`bench/run.py --quick` runs every benchmark end to end and honours the output contract."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = (
    "grad_speedup_vs_loop_minilm",
    "grad_speedup_vs_loop_smollm2",
    "grad_vs_train_pass_minilm",
    "score_matmul_efficiency",
    "aggregate_seconds",
    "peak_rss_mb_default_run",
    "retrain_batched_speedup_minilm",
    "peer_speedup",  # last: checked only where Captum is installed
)


@pytest.mark.slow
def test_quick_bench_writes_the_contract(tmp_path):
    out = tmp_path / "results.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LAYERINF_ARTIFACTS": str(tmp_path / "artifacts")}
    # The peer (Captum) is installed by `make bench` only (requirements-bench.txt).
    have_peer = importlib.util.find_spec("captum") is not None
    only = [] if have_peer else ["--only", "gradients", "scores", "aggregation", "retrain", "scaling"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out), *only],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    for key in CONTRACT if have_peer else CONTRACT[:-1]:
        assert isinstance(results.get(key), float), key
        assert math.isfinite(results[key]) and results[key] > 0, (key, results[key])
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["cpu_model"] and machine["torch"]
    # Every contender agrees with ours: gradients to float32 rounding, Captum's scores to 1e-5.
    assert results["grad_max_abs_diff_loop_tiny"] < 1e-5
    assert results["grad_max_abs_diff_vmap_tiny"] < 1e-5
    if have_peer:
        assert results["peer_max_rel_diff"] < 1e-5
    markdown = out.with_suffix(".md").read_text()
    assert markdown.startswith("### ") and "\n## " not in markdown and "\n# " not in markdown
    assert "| target |" in markdown and "failed" not in markdown
    assert (tmp_path / "scaling.png").stat().st_size > 1000
    # The cost page's view of the same results: tidy frames, the sentence and both figures.
    from layerinf import plotting
    from layerinf.tools import benchreport

    costs = benchreport.gradient_cost_frame(results["sections"]["gradients"]["raw"])
    assert set(costs["contender"]) == set(benchreport.GRADIENT_CONTENDERS) and costs["all_contenders"].all()
    ours = costs.set_index("contender").loc["batched"]
    assert np.isclose(ours["ms_per_example"], 1000 * ours["seconds"] / ours["n"])
    ratio = results["grad_speedup_vs_loop_tiny"]
    assert f"{ratio:.2f}× faster than the batch-size-1 loop" in benchreport.gradient_cost_summary(costs)
    frame = benchreport.scaling_frame(results["sections"]["scaling"]["raw"])
    assert list(frame["n_train"]) == [32, 64]
    assert np.isclose(frame["bytes_per_example"].iloc[-1], results["gradient_bytes_per_example"])
    plotting.gradient_costs(costs)
    plotting.scaling(frame)
    packs = benchreport.retrain_frame(results["sections"]["retrain"])
    assert sorted(packs["K"]) == [1, 2, 4]  # the sequential path and both quick pack sizes
    top = packs.sort_values("K").iloc[-1]
    assert np.isclose(top["speedup"], results["retrain_batched_speedup_minilm"])
    assert f"{top['speedup']:.2f}× as fast" in benchreport.retrain_summary(
        packs, results["sections"]["retrain"]["keys"]
    )
    plotting.retrain_packs(packs)


def test_peak_rss_of_a_child_is_its_own(tmp_path):
    """A benchmark subprocess reports its own peak memory, not its parent's.

    Regression: `getrusage(RUSAGE_SELF).ru_maxrss` in a child started by a 7 GB parent read 7 GB for
    every scaling run. The parent here holds 1 GiB (touched) while the child starts.
    """
    ballast = bytearray(2**30)
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import benchlib; print(benchlib.peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    child_mb = float(out.strip())
    assert 5 < child_mb < 512, child_mb
    del ballast
