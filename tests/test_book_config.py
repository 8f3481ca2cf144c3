"""Fast checks of the book's configuration: TOC pages exist, params files match notebooks, the build
is render-only and offline, citations resolve. Notebooks nobody has written yet are not checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from layerinf import book
from layerinf.book import execute, html, memory, notebooks, toc, vendor
from layerinf.config import PROFILES

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
EXECUTED = "book/_executed/"
PRESENT = notebooks.available_notebooks(ROOT)


def test_toc_pages_exist_as_markdown_or_notebook_source() -> None:
    assert TOC["format"] == "jb-book"
    for docname in toc.toc_files(TOC):
        if docname.startswith(EXECUTED):
            name = docname.removeprefix(EXECUTED)
            assert name in notebooks.NOTEBOOK_ORDER, f"{docname}: not a notebook the build executes"
            if name in PRESENT:
                assert (ROOT / "notebooks" / f"{name}.py").is_file()
        else:
            assert (ROOT / f"{docname}.md").is_file(), f"_toc.yml names {docname}, but {docname}.md is missing"


def test_every_book_notebook_is_in_the_toc() -> None:
    names = {d.removeprefix(EXECUTED) for d in toc.toc_files(TOC) if d.startswith(EXECUTED)}
    assert names == set(notebooks.NOTEBOOK_ORDER)
    assert notebooks.NOTEBOOK_ORDER[-1] == "scorecard"


@pytest.mark.parametrize("profile", PROFILES)
def test_params_files_match_parameters_cells(profile: str) -> None:
    """A page's own parameters come from its params file; the runs of every claim page come from the
    one book grid file, so a page whose parameters are only the profile and the grid has no file."""
    for name in PRESENT:
        path = notebooks.params_path(name, profile, ROOT)
        declared = set(notebooks.parameter_names(ROOT / "notebooks" / f"{name}.py"))
        assert "profile" in declared, f"notebooks/{name}.py: the parameters cell must declare profile (injected)"
        own = declared - {"profile"} - set(notebooks.GRID_PARAMS)
        if own:
            assert path.is_file(), f"notebook {name} has no parameter file {path.relative_to(ROOT)}"
            params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            assert set(params) - {"profile"} == own, f"{path.relative_to(ROOT)} vs parameters cell"
        else:
            assert not path.is_file(), f"{path.relative_to(ROOT)}: the page's runs come from grids/book/{profile}.yaml"
        # load_params applies the same check and injects the profile
        assert notebooks.load_params(name, profile, ROOT)["profile"] == profile


def test_every_claim_page_reads_the_book_grid() -> None:
    for name in ("c1_cancellation", "c2_layers", "c3_aggregation", "c4_ndr", "cost", "scorecard"):
        declared = set(notebooks.parameter_names(ROOT / "notebooks" / f"{name}.py"))
        assert set(notebooks.GRID_PARAMS) <= declared, name
        assert (
            "experiment.book(profile, grid_file, models, overrides)" in (ROOT / "notebooks" / f"{name}.py").read_text()
        )


def test_no_stray_params_files() -> None:
    for path in (ROOT / "notebooks" / "params").glob("*.yaml"):
        name, profile = path.name.removesuffix(".yaml").rsplit(".", 1)
        assert profile in PROFILES, f"{path.name}: unknown profile {profile!r}"
        assert name in notebooks.NOTEBOOK_ORDER, f"{path.name}: no notebook {name!r} in the book"


def test_config_renders_only_and_loads_nothing_from_outside() -> None:
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["only_build_toc_files"] is True
    sphinx = CONFIG["sphinx"]["config"]
    mathjax = sphinx["mathjax_path"]
    assert "://" not in mathjax and not mathjax.startswith("/"), "mathjax_path must be a local relative path"
    assert "book/_vendor" in sphinx["html_static_path"]
    assert sphinx["nb_ipywidgets_js"] == {}
    assert not (ROOT / "_static").exists(), "Jupyter Book 1 adds a <script> for every .js in a top-level _static/"
    assert CONFIG["launch_buttons"].get("thebe") is False
    assert not CONFIG["html"]["analytics"].get("google_analytics_id")
    assert not CONFIG["html"]["analytics"].get("plausible_analytics_domain")
    assert CONFIG["bibtex_bibfiles"] == ["book/references.bib"]
    for pattern in ("notebooks", ".venv", "data", "_build", "bench", "artifacts"):
        assert pattern in CONFIG["exclude_patterns"]


def test_vendored_mathjax_path_matches_config() -> None:
    rel = Path(CONFIG["sphinx"]["config"]["mathjax_path"])
    assert vendor._MATHJAX_KEEP.match("package/es5/" + rel.relative_to("mathjax").as_posix())


def test_cited_keys_exist_in_bibliography() -> None:
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", bib, flags=re.MULTILINE))
    assert len(keys) == len(re.findall(r"^@\w+\{", bib, flags=re.MULTILINE)), "duplicate or malformed bib keys"
    cite = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
    sources = list((ROOT / "book").glob("*.md")) + list((ROOT / "notebooks").glob("*.py"))
    for path in sources:
        for group in cite.findall(path.read_text(encoding="utf-8")):
            for key in (k.strip() for k in group.split(",")):
                assert key in keys, f"{path.relative_to(ROOT)} cites {key!r}, which is not in references.bib"


def test_check_offline_flags_fetches_not_links(tmp_path: Path) -> None:
    (tmp_path / "ok.html").write_text(
        '<a href="https://example.org">x</a><link rel="canonical" href="https://example.org/x">'
        '<script src="_static/a.js"></script><img src="x.png">',
        encoding="utf-8",
    )
    html.check_offline(tmp_path)
    (tmp_path / "bad.html").write_text(
        '<script src="https://cdn.example/x.js"></script><link rel="stylesheet" href="//fonts.example/f.css">'
        '<img srcset="a.png 1x, https://img.example/b.png 2x"><iframe src="http://e.example"></iframe>'
        '<style>@font-face { src: url("https://fonts.example/x.woff2") }</style>',
        encoding="utf-8",
    )
    with pytest.raises(book.BookBuildError) as err:
        html.check_offline(tmp_path)
    for url in ("cdn.example", "//fonts.example/f.css", "img.example", "e.example", "x.woff2"):
        assert url in str(err.value)


def test_parameter_names_and_missing_only(tmp_path: Path) -> None:
    nb = tmp_path / "notebooks" / "teaching.py"
    nb.parent.mkdir()
    nb.write_text(
        '# %% [markdown]\n# # Title\n\n# %% tags=["parameters"]\nseed = 0\nn: int = 4\nprofile = "smoke"\n'
        "\n# %%\nprint(seed)\n",
        encoding="utf-8",
    )
    assert notebooks.parameter_names(nb) == ["seed", "n", "profile"]
    assert notebooks.select_notebooks(None, tmp_path) == ["teaching"]
    with pytest.raises(book.BookBuildError, match=r"c2_layers\.py does not exist"):
        notebooks.select_notebooks(["c2_layers"], tmp_path)
    with pytest.raises(book.BookBuildError, match="not a book notebook"):
        notebooks.select_notebooks(["nope"], tmp_path)


def test_prune_toc_drops_missing_pages(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    for page in ("intro", "background", "rerun", "related"):
        (tmp_path / "book" / f"{page}.md").write_text(f"# {page}\n", encoding="utf-8")
    pruned, missing = toc.prune_toc(TOC, tmp_path)
    assert set(missing) == {EXECUTED + n for n in notebooks.NOTEBOOK_ORDER}
    assert [p["caption"] for p in pruned["parts"]] == ["Background", "Use it"]


def test_record_timing_keeps_other_entries(tmp_path: Path) -> None:
    (tmp_path / "book" / "_executed").mkdir(parents=True)
    execute.record_timing("teaching", 1.23456, "smoke", tmp_path)
    execute.record_timing("c1_cancellation", 2.0, "default", tmp_path, kernel_peak_mb=1234.56)
    timings = yaml.safe_load((tmp_path / "book" / "_executed" / "timings.json").read_text(encoding="utf-8"))
    assert set(timings) == {"teaching", "c1_cancellation"}
    assert timings["teaching"]["seconds"] == 1.235 and timings["teaching"]["profile"] == "smoke"
    assert timings["c1_cancellation"]["cores"] >= 1 and "timestamp" in timings["c1_cancellation"]
    assert (
        timings["c1_cancellation"]["kernel_peak_rss_mb"] == 1234.6 and timings["teaching"]["kernel_peak_rss_mb"] is None
    )


def test_kernel_memory_peak_is_per_notebook() -> None:
    """Each notebook gets its own kernel's peak, not the running maximum over the build (regression:
    every notebook after the SmolLM2 one reported 3,764 MB)."""
    import subprocess
    import sys

    big = "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(1.0)"
    with memory.ChildMemoryPeak(interval=0.05) as first:
        subprocess.run([sys.executable, "-c", big], check=True)
    with memory.ChildMemoryPeak(interval=0.05) as second:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(1.0)"], check=True)
    assert first.peak_mb > 250, first.peak_mb
    assert 1 < second.peak_mb < 100, second.peak_mb


def test_model_and_set_overrides_reach_only_declared_parameters(tmp_path):
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    over = notebooks.parse_overrides([str(model_dir)], ["seeds=[0, 1]", "n_train=400"])
    assert over == {"models": [str(model_dir.resolve())], "seeds": [0, 1], "n_train": 400}
    params = notebooks.load_params("c1_cancellation", "smoke")
    merged = notebooks.apply_overrides("c1_cancellation", params, over)
    # models is a parameter of the page; seeds and n_train change its book grid's experiments
    assert merged["models"] == [str(model_dir.resolve())]
    assert merged["overrides"] == {"seeds": [0, 1], "n_train": 400}
    # the teaching chapter has no `models` parameter: the override is not injected there
    assert "models" not in notebooks.apply_overrides("teaching", notebooks.load_params("teaching", "smoke"), over)
    with pytest.raises(book.BookBuildError, match="name=value"):
        notebooks.parse_overrides(None, ["seeds"])
