"""The teaching edition without executing chapters: exercise markup, student notebooks, self-checks, launch
links, the timings record, and the one repository URL."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
import yaml

from helpers import exercises, pipeline, student, timings
from helpers.core import attacks
from helpers.papers import curriculum
from helpers.papers.cure import geometry
from helpers.papers.cure import losses as cure_losses
from helpers.papers.photoz import metrics
from helpers.papers.regnet import latent
from helpers.papers.regnet import losses as regnet_losses

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [n for n in pipeline.notebook_names(ROOT) if n[:2].isdigit()]
# Chapters still being written by others: they may have no exercises yet. The lead empties this set; a chapter
# outside it without 3-5 exercises fails, and a chapter inside it that has its exercises fails too (remove it).
PENDING_EXERCISES: set[str] = set()


def _source(name: str):
    return jupytext.read(ROOT / "notebooks" / f"{name}.py")


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_ends_with_exercises_each_with_a_solution(name):
    nb = _source(name)
    found = student.exercises(nb)
    if name in PENDING_EXERCISES:
        if not found:
            pytest.skip(f"{name}: exercises pending (PENDING_EXERCISES)")
        pytest.fail(f"{name} has exercises now: remove it from PENDING_EXERCISES in {Path(__file__).name}")
    assert 3 <= len(found) <= 5, f"{name}: {len(found)} exercises, the book wants 3 to 5"
    labels = [e["label"] for e in found]
    assert all(labels) and len(set(labels)) == len(labels), f"{name}: every exercise needs a unique :label:"
    sols = student.solutions(nb)
    for e in found:
        assert e["label"] in sols, f"{name}: exercise {e['label']} has no solution"
        assert sols[e["label"]] > e["cell"], f"{name}: the solution of {e['label']} comes before it"
    assert any(e["coding"] for e in found), f"{name}: at least one exercise must be a coding task with a self-check"
    # Exercises close the chapter: after the claims (run.finish), before nothing but the references.
    finish = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "run.finish()" in c.source)
    assert found[0]["cell"] > finish, f"{name}: the exercises must come after run.finish()"
    for c in nb.cells:
        tags = c.metadata.get("tags", [])
        if c.cell_type == "markdown" and re.search(r"\{solution(-start|-end)?\}", c.source):
            assert student.SOLUTION_TAG in tags, f"{name}: a solution directive cell is not tagged solution"
            if "{solution}" in c.source or "{solution-start}" in c.source:
                assert ":class: dropdown" in c.source, f"{name}: solutions are hidden behind a toggle (dropdown)"
        assert not (student.SELF_CHECK_TAG in tags and student.SOLUTION_TAG in tags)
    # Gated solutions close: every solution-start has its solution-end.
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert text.count("{solution-start}") == text.count("{solution-end}")
    assert "{bibliography}" in text and "docname in docnames" in text, f"{name}: end with the chapter's references"


@pytest.mark.parametrize("name", CHAPTERS)
def test_student_notebook_is_committed_up_to_date_and_has_no_solutions(name):
    if name in PENDING_EXERCISES and not student.has_exercises(ROOT, name):
        pytest.skip(f"{name}: exercises pending (PENDING_EXERCISES)")
    path = ROOT / student.student_relpath(name)
    assert path.exists(), f"{path} is missing: run `make student`"
    assert not student.stale_students([name], ROOT), f"{path} is out of date: run `make student`"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "code" and "pip" in first.source and student.repository(ROOT)["url"] in first.source
    assert not any(student.SOLUTION_TAG in c.metadata.get("tags", []) for c in nb.cells)
    assert not any(re.search(r"\{solution", c.source) for c in nb.cells)
    solution_code = [
        c.source.strip()
        for c in _source(name).cells
        if c.cell_type == "code" and student.SOLUTION_TAG in c.metadata.get("tags", [])
    ]
    kept = {c.source.strip() for c in nb.cells}
    assert not any(s in kept for s in solution_code)
    n_checks = sum(student.SELF_CHECK_TAG in c.metadata.get("tags", []) for c in nb.cells)
    assert n_checks >= 1, "self-checks are kept"
    n_ex = len(student.exercises(_source(name)))
    assert sum(c.source.startswith("**Exercise ") for c in nb.cells) == n_ex
    assert sum(student.EXERCISE_TAG in c.metadata.get("tags", []) for c in nb.cells) == n_ex
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "papermill needs the parameters tag"
    assert nb.metadata["kernelspec"]["name"] == "python3"  # what Colab and Binder have


def test_install_cell_is_a_no_op_inside_the_repository(monkeypatch):
    spec = student.install_spec(ROOT)
    assert spec["requirement"] == f"{spec['distribution']} @ git+{student.repository(ROOT)['url']}"
    assert spec["distribution"] != "helpers"  # the import name; the distribution needs a name of its own
    calls = []

    def pip(cmd: list[str], **kwargs) -> None:  # records the command and the pins it was given
        calls.append((cmd, Path(cmd[cmd.index("-c") + 1]).read_text()))

    monkeypatch.setattr("subprocess.run", pip)
    exec(compile(student.install_cell_source(**spec), "<install>", "exec"), {"__name__": "__main__"})
    assert calls == []  # the book's package is installed here (make setup), so nothing is installed
    # The same cell, for a distribution that is not installed, calls pip once, with the present torch pinned at
    # the version pip sees (its metadata's) and nothing pinned for a package that is absent.
    code = student.install_cell_source("nothing-here @ file:///x", "nothing-here", {"torch": "2.4", "absent": "1"})
    exec(compile(code, "<install>", "exec"), {})
    assert len(calls) == 1 and calls[0][0][-1] == "nothing-here @ file:///x"
    assert calls[0][1] == f"torch=={importlib.metadata.version('torch')}\n"


def test_install_cell_refuses_a_torch_older_than_the_lower_bound():
    code = student.install_cell_source("nothing-here @ file:///x", "nothing-here", {"torch": "999.0"})
    with pytest.raises(RuntimeError, match=r"needs torch >= 999\.0; this Python has torch 2\."):
        exec(compile(code, "<install>", "exec"), {})


def test_markdown_is_rewritten_for_jupyter_and_colab():
    text = (
        "# Title\n\n**Run:** profile {glue:text}`run_profile` ·\nmore\n\nBody {glue:text}`acc` and "
        "{cite:t}`madry2018towards`, a {term}`step <step size>`, [notation](../notation.md).\n\n"
        "```{exercise} Do it\n:label: ex-x\n\nText.\n```\n"
    )
    out = student.to_plain_markdown(text)
    assert "**Run:**" not in out and "{" not in out
    assert "`acc`" in out and "(madry2018towards)" in out and "a step," in out and "notation." in out
    assert "**Exercise 1: Do it**\n\nText." in out


def test_truncation_stops_at_the_exercises_heading():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_markdown_cell("## Exercises\n\nIntro."),
            nbformat.v4.new_markdown_cell("```{exercise} A\n:label: ex-a\n\nDo.\n```"),
            nbformat.v4.new_code_cell("y = 2"),
        ]
    )
    assert [c.source for c in student.truncated_at_first_exercise(nb).cells] == ["x = 1"]
    # The student edition: exercises are plain Markdown tagged exercise.
    nb.cells[2] = nbformat.v4.new_markdown_cell("**Exercise 1: A**\n\nDo.", metadata={"tags": ["exercise"]})
    assert [c.source for c in student.truncated_at_first_exercise(nb).cells] == ["x = 1"]
    nb.cells[1].source = "Some text."
    assert [c.source for c in student.truncated_at_first_exercise(nb).cells] == ["x = 1", "Some text."]


def test_self_checks_pass_the_reference_and_fail_wrong_answers(trained_cnn, mnist_small):
    x, y = mnist_small[0][:16], mnist_small[1][:16]
    # Right answers pass.
    exercises.check_l2_projection(lambda d, e: attacks.project(d, e, "l2"))
    exercises.check_fgsm(lambda m, x_, y_, e: attacks.fgsm(m, x_, y_, e), trained_cnn, x, y, 0.1)
    exercises.check_kurtosis(lambda z, y_, c: regnet_losses.kurtosis(z, y_, num_classes=c))
    exercises.check_margin_loss(latent.margin_loss)
    exercises.check_cure_term(lambda m, x_, y_, h: cure_losses.cure_regularizer(m, x_, y_, h), trained_cnn, x, y, 0.5)
    exercises.check_segment_labels(lambda m, a, b, n: geometry.segment_labels(m, a, b, n), trained_cnn, x[0], x[1])

    # Wrong answers and stubs fail with an AssertionError that says what to do.
    def stub(*args):
        raise NotImplementedError("complete it")

    with pytest.raises(AssertionError, match="not implemented yet"):
        exercises.check_l2_projection(stub)
    with pytest.raises(AssertionError, match="per sample|one sample"):
        exercises.check_l2_projection(lambda d, e: d * torch.clamp(e / d.norm(), max=1.0))  # batch norm
    with pytest.raises(AssertionError, match="helpers.core.attacks.fgsm"):
        exercises.check_fgsm(lambda m, x_, y_, e: (x_ + e).clamp(0, 1), trained_cnn, x, y, 0.1)
    with pytest.raises(AssertionError, match="biased moments"):
        exercises.check_kurtosis(lambda z, y_, c: regnet_losses.kurtosis(z, y_, num_classes=c) - 3)  # excess kurtosis
    with pytest.raises(AssertionError, match="wrong classes"):
        exercises.check_margin_loss(lambda z, y_: z.max(1).values.sum() - z.gather(1, y_[:, None]).sum())
    with pytest.raises(AssertionError, match="eval mode"):
        exercises.check_cure_term(
            lambda m, x_, y_, h: cure_losses.cure_regularizer(m, x_, y_, 2 * h), trained_cnn, x, y, 0.5
        )
    with pytest.raises(AssertionError, match="both ends"):
        exercises.check_segment_labels(
            lambda m, a, b, n: geometry.segment_labels(m, b, a, n),
            trained_cnn,
            x[0],
            x[1],  # reversed
        )


def test_self_checks_of_chapters_1_to_3_pass_the_reference_and_fail_wrong_answers():
    def stub(*args):
        raise NotImplementedError("complete it")

    # Chapter 1: the redshift as the PDF mean, and the photo-z metrics.
    exercises.check_zphot(metrics.zphot_from_logits)
    exercises.check_photoz_metrics(metrics.photoz_metrics)
    with pytest.raises(AssertionError, match="not implemented yet"):
        exercises.check_zphot(stub)
    with pytest.raises(AssertionError, match="bin centres"):
        exercises.check_zphot(lambda lg: lg.softmax(1) @ (torch.arange(180, dtype=lg.dtype) / 180))  # edges
    with pytest.raises(AssertionError, match="bin centres"):
        exercises.check_zphot(lambda lg: (lg.argmax(1) + 0.5) / 180)  # the mode, not the mean

    def lower_median(zp, zs):
        dz = (zp - zs) / (1 + zs)
        return {
            "bias": dz.mean(),
            "sigma_mad": 1.4826 * (dz - dz.median()).abs().median(),
            "eta": (dz.abs() > 0.05).double().mean(),
        }

    with pytest.raises(AssertionError, match="usual median"):
        exercises.check_photoz_metrics(lower_median)
    with pytest.raises(AssertionError, match="1 \\+ zspec"):
        exercises.check_photoz_metrics(lambda zp, zs: metrics.photoz_metrics(zp, 0 * zs))

    # Chapter 2: the antithetic NES gradient and the curriculum schedule.
    def nes(m, x, y, sigma, n, g):
        return attacks.nes_gradient(m, x, y, sigma=sigma, n_samples=n, generator=g)

    exercises.check_nes_gradient(nes)
    with pytest.raises(AssertionError, match="2 n sigma"):
        exercises.check_nes_gradient(lambda m, x, y, s, n, g: 2 * nes(m, x, y, s, n, g))
    with pytest.raises(AssertionError, match="true gradient"):
        exercises.check_nes_gradient(lambda m, x, y, s, n, g: -nes(m, x, y, s, n, g))

    def one_sided(m, x, y, sigma, n, g):  # P(y|x + sigma u) - P(y|x): n + 1 queries per image, not antithetic
        u = torch.randn((len(x), n, *x.shape[1:]), generator=g, dtype=x.dtype)
        p = m((x[:, None] + sigma * u).flatten(0, 1)).softmax(1).gather(1, y.repeat_interleave(n)[:, None])
        p0 = m(x).softmax(1).gather(1, y[:, None])
        return ((p.view(len(x), n, 1) - p0[:, None]) * u).mean(1) / sigma

    with pytest.raises(AssertionError, match="antithetic"):
        exercises.check_nes_gradient(one_sided)
    exercises.check_curriculum_schedule(lambda t, s: curriculum.schedule(t, iter_scale=s))
    with pytest.raises(AssertionError, match="never below 1"):
        exercises.check_curriculum_schedule(lambda t, s: (0.01 + 0.09 * t, int(s * (10 + 30 * t))))
    with pytest.raises(AssertionError, match="linearly"):
        exercises.check_curriculum_schedule(lambda t, s: (0.1 * t, curriculum.schedule(t, iter_scale=s)[1]))

    # Chapter 3: the uniform l2 random start and MAT-Max's per-sample choice.
    exercises.check_l2_random_start(lambda shape, eps, g: attacks.random_in_ball(shape, eps, "l2", generator=g))

    def radius_uniform(shape, eps, g):  # radius eps * U: too many draws near the centre
        u = torch.randn(shape, generator=g)
        u = u / u.flatten(1).norm(dim=1).view(-1, *([1] * (len(shape) - 1)))
        return u * eps * torch.rand(shape[0], generator=g).view(-1, *([1] * (len(shape) - 1)))

    with pytest.raises(AssertionError, match="U\\^\\(1/d\\)"):
        exercises.check_l2_random_start(radius_uniform)
    with pytest.raises(AssertionError, match="leave the ball"):
        exercises.check_l2_random_start(lambda shape, eps, g: (2 * torch.rand(shape, generator=g) - 1) * eps)

    def mat_max(m, a, b, y):
        ce = torch.nn.functional.cross_entropy
        keep_a = ce(m(a), y, reduction="none") >= ce(m(b), y, reduction="none")
        return torch.where(keep_a.view(-1, *([1] * (a.dim() - 1))), a, b)

    exercises.check_mat_max(mat_max)
    with pytest.raises(AssertionError, match="per sample"):
        exercises.check_mat_max(
            lambda m, a, b, y: (
                a if torch.nn.functional.cross_entropy(m(a), y) >= torch.nn.functional.cross_entropy(m(b), y) else b
            )
        )
    with pytest.raises(AssertionError, match="not implemented yet"):
        exercises.check_mat_max(stub)


def test_launch_links_and_citation_read_the_one_repository_url():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    assert student.repository(ROOT)["url"] == url
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    assert {"sphinx_exercise", "helpers.student"} <= set(config["sphinx"]["extra_extensions"])
    org_repo = url.split("github.com/")[1]
    links = student.launch_links(ROOT, "00_primer")
    assert links["colab"].endswith(f"/github/{org_repo}/blob/main/student/00_primer.ipynb")
    assert f"/v2/gh/{org_repo}/main?urlpath=" in links["binder"] and links["binder"].endswith("student/00_primer.ipynb")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["repository-code"] == url and cff["title"] == config["title"]
    assert url in (ROOT / "book" / "cite.md").read_text()


def test_launch_buttons_are_repointed_or_dropped():
    page = "book/chapters/00_primer"
    buttons = [
        {"type": "group", "buttons": [{"url": f"https://mybinder.org/v2/gh/o/r/main?urlpath=tree/{page}.ipynb"}]},
        {"type": "link", "url": "https://example.org/other"},
    ]
    moved = student._fix_buttons(buttons, f"{page}.ipynb", "student/00_primer.ipynb")
    assert moved[0]["buttons"][0]["url"].endswith("tree/student/00_primer.ipynb") and moved[1] == buttons[1]
    dropped = student._fix_buttons(buttons, f"{page}.ipynb", None)
    assert dropped == [buttons[1]]


def test_record_timing_keeps_one_entry_per_chapter_profile_and_device(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path / "results"))
    (tmp_path / "results").mkdir()

    def write(profile: str, wall: float, started: str, device: str = "cpu") -> None:
        res = {
            "chapter": "00_primer",
            "title": "Primer",
            "profile": profile,
            "device": device,
            "started": started,
            "wall_time_s": wall,
            "metadata": {"device_name": "GPU X" if device != "cpu" else "x86_64", "torch_threads": 2},
        }
        (tmp_path / "results" / "00_primer.json").write_text(json.dumps(res))

    write("small", 30.0, "2026-01-01T00:00:10+00:00")
    assert timings.record_timing(tmp_path, "00_primer", started="2026-01-01T00:00:00+00:00")["wall_time_s"] == 30.0
    assert timings.record_timing(tmp_path, "00_primer", started="2026-01-02T00:00:00+00:00") is None  # stale file
    write("small", 31.0, "2026-01-03T00:00:10+00:00")
    timings.record_timing(tmp_path, "00_primer", started="2026-01-03T00:00:00+00:00")
    write("full", 9.0, "2026-01-04T00:00:10+00:00", device="cuda:0")
    timings.record_timing(tmp_path, "00_primer", started="2026-01-04T00:00:00+00:00")
    runs = json.loads((tmp_path / "book" / "timings.json").read_text())["runs"]
    assert [(r["profile"], r["device_type"], r["wall_time_s"]) for r in runs] == [
        ("full", "cuda", 9.0),
        ("small", "cpu", 31.0),
    ]  # sorted by chapter, profile, device
    from helpers.timings import timings_table

    table = timings_table(runs, ["00_primer", "04_regnet"]).set_index(["chapter", "profile"])
    assert table.loc[("00_primer", "full"), "GPU: GPU X"].startswith("9 s")
    cpu = next(c for c in table.columns if c.startswith("CPU: ") and c.endswith(", 2 threads"))  # this machine
    assert table.loc[("00_primer", "full"), cpu] == "not measured"
    assert table.loc[("00_primer", "small"), cpu].startswith("31 s")
    assert (table.loc["04_regnet"] == "not measured").all().all() and len(table) == 6


def test_committed_timings_match_their_schema():
    path = timings.timings_path(ROOT)
    if not path.exists():
        pytest.skip("no chapter has been timed yet")
    runs = json.loads(path.read_text())["runs"]
    for r in runs:
        assert {"chapter", "profile", "device_type", "device_name", "wall_time_s", "date"} <= set(r)
        assert r["profile"] in ("medium", "small", "full") and r["wall_time_s"] > 0


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_sources_hold_no_control_characters(path):
    """A Python string that lost its raw prefix turns MyST's ``\\alpha`` or ``\\varepsilon`` into a bell or a
    vertical tab (it happened in the primer); the rendered page then shows garbage instead of the symbol."""
    text = path.read_text(encoding="utf-8")
    bad = [(text.count("\n", 0, m.start()) + 1, repr(m.group())) for m in re.finditer(r"[\x00-\x08\x0b-\x1f]", text)]
    assert not bad, f"{path.name}: control characters (line, char): {bad[:5]}"
