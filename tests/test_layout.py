"""The package's layout: the science never imports the tooling, and the configuration stays light.

Tooling (`layerinf.tools`: data preparation, benchmark reports; `layerinf.book`: the book builder)
may import the science; the science modules (everything else in the package but the command line)
import nothing from the tooling, not even lazily inside a function. Checked on the source, so a
module that is never imported by a test is checked too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "layerinf"
TOOLING = ("layerinf.tools", "layerinf.book")
#: Allowed to import the tooling: the command line starts the book build and the data tool.
FRONT_ENDS = ("cli.py",)


def science_modules() -> list[Path]:
    tooling_dirs = {PACKAGE / name.split(".")[1] for name in TOOLING}
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if not any(d in p.parents for d in tooling_dirs) and p.relative_to(PACKAGE).as_posix() not in FRONT_ENDS
    )


def imports_of(source: str, package: str) -> set[str]:
    """Every module `source` (a module of `package`) imports anywhere, top level or inside functions,
    with relative imports resolved and ``from x import y`` counted as both ``x`` and ``x.y``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from layerinf import tools`
    return found


def imported_modules(path: Path) -> set[str]:
    package = ".".join(("layerinf", *path.relative_to(PACKAGE).parent.parts))
    return imports_of(path.read_text(encoding="utf-8"), package)


def is_tooling(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TOOLING)


def test_the_science_modules_exist() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in science_modules()}
    assert {"data.py", "pools.py", "models.py", "modules.py", "paths.py", "tasks/__init__.py"} <= names
    assert not any(n.startswith(("tools/", "book/")) for n in names)


@pytest.mark.parametrize("path", science_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_science_imports_no_tooling(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if is_tooling(m))
    assert not bad, f"{path.relative_to(PACKAGE)} imports tooling: {bad}"


def test_the_import_check_sees_lazy_relative_and_from_package_imports() -> None:
    source = "def f():\n    from ..tools import prepare\n    from layerinf import book\n    import layerinf.book.cli\n"
    found = {m for m in imports_of(source, "layerinf.tasks") if is_tooling(m)}
    assert found == {"layerinf.tools", "layerinf.tools.prepare", "layerinf.book", "layerinf.book.cli"}
    assert not any(is_tooling(m) for m in imports_of("from layerinf import toolsy, bookkeeping", "layerinf"))


def test_config_and_the_task_registry_import_no_numpy_or_torch() -> None:
    code = (
        "import sys, layerinf.config, layerinf.paths, layerinf.tasks\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', 'torch'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
