"""The command line of the book build, ``python -m layerinf.book``: check every option and parameter
first (exit 2), then vendor, execute, render and check (a failure exits 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layerinf import paths
from layerinf.book.base import BookBuildError, book_root
from layerinf.book.execute import execute_notebook, record_timing, warn_mixed_profiles
from layerinf.book.html import build_html, check_offline
from layerinf.book.launch import write_all
from layerinf.book.memory import ChildMemoryPeak
from layerinf.book.notebooks import (
    apply_overrides,
    check_grid_params,
    check_model_name,
    load_params,
    parameter_names,
    parse_overrides,
    select_notebooks,
)
from layerinf.book.screenshots import screenshot, screenshot_targets
from layerinf.book.vendor import vendor_mathjax
from layerinf.config import PROFILES, allowed


def execute_all(
    names: Sequence[str], profile: str, root: Path | None = None, overrides: dict[str, Any] | None = None
) -> None:
    """Execute `names` in order with a progress line each; stop at the first failure."""
    root = book_root(root)
    if not names:
        print("== execute: no notebooks to run")
    clock = root / "_build" / "book-start"  # written by `make book` before set-up
    if clock.is_file():
        setup = time.time() - float(clock.read_text().split()[0])
        clock.unlink()  # a later direct run of this module must not reuse an old clock
        record_timing("_setup", setup, profile, root)
        print(f"== set-up took {setup:.0f} s", flush=True)
    for k, name in enumerate(names, 1):
        print(f"== execute [{k}/{len(names)}] {name} (profile {profile}) ...", flush=True)
        with ChildMemoryPeak() as memory:
            seconds = execute_notebook(name, profile, root, overrides)
        record_timing(name, seconds, profile, root, memory.peak_mb)
        print(f"   {name}: done in {seconds:.1f} s, kernel peak {memory.peak_mb:,.0f} MB", flush=True)


#: Progress bars (tqdm's, the Hugging Face libraries' "Loading weights") are noise on a rendered
#: page and in a launched notebook: the build switches them off for its kernels.
QUIET_ENV: dict[str, str] = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def main(argv: Sequence[str] | None = None) -> int:
    """Build the book (see `_main`). The pages, and the checks before them, read the book grid of
    the checkout being built (``--root``), through ``LAYERINF_ROOT`` for the duration of the build;
    `QUIET_ENV` is set for the same time."""
    names = (paths.ROOT_ENV, paths.DATA_ENV, paths.ARTIFACTS_ENV, *QUIET_ENV)
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(QUIET_ENV)  # the kernels inherit it: no progress bar reaches a page
    # The data and the artifact store stay where they are when --root points at another checkout.
    os.environ.setdefault(paths.DATA_ENV, str(paths.data_dir().resolve()))
    os.environ.setdefault(paths.ARTIFACTS_ENV, str(paths.artifacts_dir().resolve()))
    try:
        return _main(argv)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _main(argv: Sequence[str] | None = None) -> int:
    """Build the book; 0 on success, 2 for a bad option or parameter, 1 for a failed stage."""
    parser = argparse.ArgumentParser(prog="python -m layerinf.book", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)} (default: default)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="execute only these notebooks")
    parser.add_argument("--no-execute", action="store_true", help="render the already executed notebooks")
    parser.add_argument(
        "--model",
        nargs="+",
        metavar="M",
        help="run the claim notebooks with these models "
        "(named model, Hugging Face id or local directory) instead of the profile's",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a page parameter, or a change of the book grid's experiments (YAML value; llm.NAME for the LLM "
        "experiment), e.g. --set seeds=[0,1] --set n_train=400; repeatable",
    )
    parser.add_argument(
        "--screenshots",
        nargs="*",
        metavar="PAGE",
        help="render pages (docnames such as book/intro; default: every page) to _build/screenshots/",
    )
    # A copy of the repository (e.g. to try the build with throwaway notebooks) can be built in place.
    parser.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        # Every value is checked before anything is vendored or executed.
        root = book_root(args.root).resolve()
        os.environ[paths.ROOT_ENV] = str(root)
        allowed("profile", args.profile, PROFILES)
        names = select_notebooks(args.only, root)
        overrides = parse_overrides(args.model, args.set)
        declared = {p for n in names for p in parameter_names(root / "notebooks" / f"{n}.py")}
        unknown = sorted(set(overrides) - declared)
        if unknown and "overrides" not in declared:  # else they change the book grid: checked below
            raise BookBuildError(f"--set {unknown}: no notebook has such a parameter; known: {sorted(declared)}")
        for model in overrides.get("models", ()):
            check_model_name(model)
        if not args.no_execute:
            for name in names:
                check_grid_params(name, apply_overrides(name, load_params(name, args.profile, root), overrides, root))
    except (BookBuildError, ValueError) as err:
        print(f"book: error: {err}", file=sys.stderr)
        return 2  # a bad option or parameter, like the layerinf command's usage errors
    try:
        vendor_mathjax(root)
        if not args.no_execute:
            execute_all(names, args.profile, root, overrides)
        warn_mixed_profiles(root)
        html_dir = build_html(root)
        check_offline(html_dir)
        print(f"== offline check: no outside resources in {html_dir}")
        launch = write_all(root)
        print(f"== launch-button notebooks: {len(launch)} in {root / '_build' / 'launch'}")
        if args.screenshots is not None:
            screenshot(screenshot_targets(html_dir, args.screenshots, root), root / "_build" / "screenshots")
    except (BookBuildError, ValueError) as err:
        print(f"book: error: {err}", file=sys.stderr)
        return 1
    print(f"== book: {html_dir / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
