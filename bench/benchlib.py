"""Shared helpers of the benchmarks: timing, machine description, model set-up, markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from layerinf.tools import benchreport


def machine() -> dict:
    import torch

    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gb = float("nan")
    return {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": benchreport.cpu_model(),
        "memory_gb": round(mem_gb, 1),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _commit(),
    }


def _commit() -> str:
    """The repository's commit (short hash; ``-dirty`` with uncommitted changes), or "unknown"."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def peak_rss_mb() -> float:
    """Peak resident memory (MiB) of this process since it started (or since its last exec).

    Reads ``VmHWM`` from ``/proc/self/status``: the kernel resets that high-water mark at exec, so
    a benchmark subprocess reports its own peak. ``getrusage(RUSAGE_SELF).ru_maxrss`` does not: on
    Linux it carries the parent's resident size at fork across the exec, so a child started by a
    parent that once held 7 GB reports at least 7 GB. Elsewhere (no /proc) it is the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource
    import sys

    scale = 2**20 if sys.platform == "darwin" else 2**10  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


@dataclass
class Timings:
    """Wall-clock seconds of several contenders, collected round-robin (one repetition of each in turn)."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.seconds.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return float(statistics.median(self.seconds[name]))

    def spread(self, name: str) -> str:
        """``min–max`` of the repetitions (empty for a single run)."""
        vals = self.seconds[name]
        return "" if len(vals) < 2 else f"{min(vals):.3g}–{max(vals):.3g}"


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fmt(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; floats are formatted with `fmt`."""
    cells = [[fmt(c) if isinstance(c, float) else str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def rt_examples(n: int, cfg, seed: int = 0):
    """(tokenizer, Encoded) of `n` Rotten Tomatoes training snippets, tokenised as `cfg` says."""
    from layerinf.data import make_splits
    from layerinf.encoding import encode
    from layerinf.models import load_tokenizer

    splits = make_splits("rt", n, 2, 2, seed, 0.0)
    tokenizer = load_tokenizer(cfg)
    return tokenizer, encode(tokenizer, splits.train, cfg.max_length)


def nudge_lora(model, seed: int = 0, std: float = 0.02) -> None:
    """Move LoRA B away from its zero initialisation (as a fine-tune does), so that every gradient,
    including those of LoRA A, is non-trivial when numbers are compared."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
