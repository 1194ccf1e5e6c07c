"""The shape of the code (issue 17): three tiers whose imports point one way, small modules, and chapter
notebooks that hold narrative, parameters, calls and claims rather than infrastructure.

- ``helpers/core`` (the generic core) imports nothing outside ``helpers.core``;
- ``helpers/papers`` (one module or package per document) imports only the core and its own document;
- ``helpers/*.py`` and ``helpers/sweep`` (the book's machinery) may import anything.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"
MAX_MODULE_LINES = 400
MAX_NOTEBOOK_CODE_LINES = 450
MAX_CELL_LINES = 30
CHAPTERS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def imported_helpers_modules(path: Path) -> set[str]:
    """Every ``helpers...`` module ``path`` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "helpers")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "helpers":
            names.update(f"{node.module}.{a.name}" if node.module == "helpers" else node.module for a in node.names)
    return names


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", modules(HELPERS / "core"), ids=lambda p: str(p.relative_to(HELPERS)))
def test_the_core_imports_only_the_core(path):
    outside = {m for m in imported_helpers_modules(path) if not m.startswith("helpers.core")}
    assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}: the core must not depend on them"


@pytest.mark.parametrize("path", modules(HELPERS / "papers"), ids=lambda p: str(p.relative_to(HELPERS)))
def test_a_document_module_imports_only_the_core_and_its_own_document(path):
    document = "helpers.papers." + path.relative_to(HELPERS / "papers").parts[0].removesuffix(".py")
    outside = {m for m in imported_helpers_modules(path) if not m.startswith(("helpers.core", document))}
    assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}: only the core and {document}"


def test_the_import_check_sees_lazy_and_aliased_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from helpers import results as R\n    import helpers.papers.matrand\n")
    assert imported_helpers_modules(probe) == {"helpers.results", "helpers.papers.matrand"}


@pytest.mark.parametrize("path", modules(HELPERS), ids=lambda p: str(p.relative_to(HELPERS)))
def test_no_module_is_over_400_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {n} lines: split it by concern"


def code_cells(path: Path) -> list[tuple[str, list[str]]]:
    """(header, non-blank lines) of each code cell of a py:percent notebook."""
    cells = re.split(r"^# %%", path.read_text(encoding="utf-8"), flags=re.M)[1:]
    out = []
    for cell in cells:
        header, _, body = cell.partition("\n")
        if "[markdown]" not in header:
            out.append((header, [line for line in body.splitlines() if line.strip()]))
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_notebook_is_narrative_and_calls(path):
    cells = code_cells(path)
    total = sum(len(lines) for _, lines in cells)
    assert total < MAX_NOTEBOOK_CODE_LINES, f"{path.stem}: {total} code lines (at most {MAX_NOTEBOOK_CODE_LINES - 1})"
    for header, lines in cells:
        if "parameters" in header:  # one constant per line, each with its unit: papermill injects after it
            continue
        assert len(lines) <= MAX_CELL_LINES, f"{path.stem}: a code cell of {len(lines)} lines starts {lines[0]!r}"
    source = path.read_text(encoding="utf-8")
    # Infrastructure lives in the package: no train-or-load function, no memo keyed by object identity.
    assert not re.search(r"^def train\w*\(", source, flags=re.M), f"{path.stem} defines a training function"
    assert not re.search(r"\bid\(", source), f"{path.stem} keys something by id(): use run.scored"
    assert "experiment.start(" in source, f"{path.stem} does not start from the chapter scaffold"


def test_the_notebook_counter_counts_code_cells_only(tmp_path):
    nb = tmp_path / "99_x.py"
    nb.write_text('# %% [markdown]\n# text\n\n# %% tags=["parameters"]\na = 1\n\n# %%\nb = 2\n\nc = 3\n')
    assert [len(lines) for _, lines in code_cells(nb)] == [1, 2]
