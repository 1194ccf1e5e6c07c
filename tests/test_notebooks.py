"""Every chapter executed at the ci profile through the real pipeline, its claims asserted; then the book.

These run in file order: the chapters first, the scorecard and the ``jupyter-book build -W`` last.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from helpers import pipeline

pytestmark = pytest.mark.notebooks
ROOT = Path(__file__).resolve().parents[1]
NAMES = pipeline.notebook_names(ROOT)
CHAPTERS = [n for n in NAMES if n[:2].isdigit()]
CI_BUDGET_S = 300  # DEVELOPERS.md: at most 5 minutes per chapter at the ci profile on 2 cores


def test_toc_and_sources_agree():
    assert CHAPTERS and CHAPTERS[0] == "00_primer" and NAMES[-1] == "scorecard"
    for name in NAMES:
        assert (ROOT / "notebooks" / f"{name}.py").exists(), name
        for profile in ("ci", "quick", "full"):
            assert (ROOT / "params" / profile / f"{name}.yaml").exists(), (name, profile)


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_at_ci_profile_holds_its_claims(name):
    out = pipeline.execute(name, "ci", timeout=2 * CI_BUDGET_S, root=ROOT)
    res = json.loads((ROOT / "results" / f"{name}.json").read_text())
    assert res["chapter"] == name and res["profile"] == "ci" and res["device"] == "cpu"
    assert res["seeds"] and res["metadata"]["packages"]["torch"] and res["metadata"]["python"]
    assert 0 < res["wall_time_s"] <= CI_BUDGET_S
    assert len(res["claims"]) >= 3
    for c in res["claims"]:
        assert set(c) == {"key", "claim", "paper", "ours", "holds"} and c["paper"] and c["ours"]
    failing = [f"{c['claim']}: {c['ours']}" for c in res["claims"] if not c["holds"]]
    assert not failing, failing
    nb = nbformat.read(out, as_version=4)
    tagged = [c for c in nb.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert len(tagged) == 2 and all("hide-cell" in c.metadata["tags"] for c in tagged)
    banner = next(c for c in nb.cells if c.cell_type == "markdown").source
    assert all(f"{{glue:text}}`{k}`" in banner for k in ("run_profile", "run_device", "run_seed", "run_wall_time"))


@pytest.mark.parametrize("param,value", [("eps", -1), ("attack", "foo"), ("n_train", 0.5)])
def test_bad_parameter_fails_before_any_compute(tmp_path, param, value):
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    pipeline.to_ipynb(ROOT / "notebooks" / "00_primer.py", src, pipeline.kernel_name())
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(
            src,
            out,
            parameters={"profile": "ci", param: value},
            kernel_name=pipeline.kernel_name(),
            cwd=str(ROOT),
            progress_bar=False,
        )
    assert err.value.ename == "ValueError"
    assert err.value.evalue.startswith(f"{param} must be")
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = next(i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.outputs))
    assert "injected-parameters" in code[failed - 1].metadata.get("tags", [])  # the cell right after them
    assert all(c.execution_count is None for c in code[failed + 1 :])


def test_scorecard_and_book_build_with_warnings_as_errors():
    pipeline.execute("scorecard", "ci", timeout=CI_BUDGET_S, root=ROOT)
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "--keep-going"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = ROOT / "_build" / "html"
    assert (html / "index.html").exists()
    for name in NAMES:
        page = (html / "book" / "chapters" / f"{name}.html").read_text(encoding="utf-8")
        assert "glue:" not in page  # every glued number resolved
    card = (html / "book" / "chapters" / "scorecard.html").read_text(encoding="utf-8")
    assert "PGD is at least as strong as FGSM" in card
