"""The teaching edition: exercises in the chapter sources, student notebooks, and launch links.

Conventions in ``notebooks/NN_name.py`` (see DEVELOPERS.md, "Exercises and the student edition"):

- An exercise is a markdown cell holding a sphinx-exercise ``{exercise}`` directive with a ``:label:``.
- Every cell that belongs to a solution is tagged ``solution``: the markdown cells with the ``{solution}``
  directive (prose answers, ``:class: dropdown``) or the gated ``{solution-start}`` / ``{solution-end}``
  pair, and the code cells between such a pair. The book shows them in a collapsed dropdown; the student
  edition drops them.
- A code exercise gives a stub (a plain code cell the student fills in) before its solution, and a
  ``self-check`` cell after it that calls :mod:`helpers.exercises`; the self-check raises ``AssertionError``
  with a hint while the answer is wrong and passes with the solution (the book executes it).

:func:`student_notebook` builds the student edition of a chapter: a first cell that installs the package when
it is not installed (Colab, Binder, a downloaded copy; a no-op inside the repository) and keeps the torch the
machine has (:mod:`helpers.install`), the chapter's cells
without the solutions, and MyST markup rewritten into plain Markdown that Jupyter and Colab render. The files
are committed under ``student/`` (Colab opens notebooks from the repository) and a test regenerates them to
check that they never drift from the sources.

This module is also a Sphinx extension (``helpers.student`` in ``_config.yml``): the theme's Colab and Binder
buttons point at the page's own source, ``book/chapters/NN_name.ipynb``, which is a build product outside the
repository; the extension points them at the chapter's student notebook, and removes them from pages that
have none, so that every launch link opens a file that exists in the repository.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"  # the student edition's exercise cells (plain Markdown, no directive left)
SELF_CHECK_TAG = "self-check"
STUDENT_DIR = "student"
TEACHING_CELL_TAG = "teaching-edition"

_EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise(?:-start)?\}(?P<title>[^\n]*)\n", re.MULTILINE)
_LABEL = re.compile(r"^:label:\s*(\S+)", re.MULTILINE)
_SOLUTION = re.compile(r"^(?:`{3,}|:{3,})\{solution(?:-start)?\}\s*(\S+)", re.MULTILINE)
_SOLUTION_ANY = re.compile(r"\{solution(?:-start|-end)?\}")
_ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<text>[^`]*)`")
_BLOCK = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}(?P<arg>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


# ---------------------------------------------------------------------------------------------------------
# Reading exercises
# ---------------------------------------------------------------------------------------------------------


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercises(nb: Any) -> list[dict[str, Any]]:
    """The exercises of a notebook, in order: ``label``, ``title``, ``cell`` (index) and ``coding``.

    An exercise is *coding* when a ``self-check`` cell follows it before the next exercise.
    """
    found: list[dict[str, Any]] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or SOLUTION_TAG in _tags(cell):
            continue
        for m in _EXERCISE.finditer(cell.source):
            label = _LABEL.search(cell.source, m.end())
            found.append({"label": label.group(1) if label else None, "title": m.group("title").strip(), "cell": i})
    for k, ex in enumerate(found):
        end = found[k + 1]["cell"] if k + 1 < len(found) else len(nb.cells)
        ex["coding"] = any(SELF_CHECK_TAG in _tags(c) for c in nb.cells[ex["cell"] + 1 : end])
    return found


def solutions(nb: Any) -> dict[str, int]:
    """``{label: cell index}`` of the ``{solution}`` / ``{solution-start}`` directives of a notebook."""
    out: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for m in _SOLUTION.finditer(cell.source):
                out.setdefault(m.group(1), i)
    return out


def first_exercise_cell(nb: Any) -> int | None:
    """Index of the first cell that opens an exercise (or the ``Exercises`` heading right before it).

    Works on a chapter source (the ``{exercise}`` directive) and on a student notebook, whose exercise cells
    are plain Markdown tagged ``exercise``.
    """
    ex = exercises(nb)
    tagged = [i for i, c in enumerate(nb.cells) if EXERCISE_TAG in _tags(c)]
    starts = ([ex[0]["cell"]] if ex else []) + tagged[:1]
    if not starts:
        return None
    i = min(starts)
    prev = nb.cells[i - 1] if i > 0 else None
    if prev is not None and prev.cell_type == "markdown" and prev.source.lstrip().startswith("## Exercises"):
        return i - 1
    return i


def read_source(source: Path) -> Any:
    """A jupytext py:percent source as an nbformat notebook."""
    import jupytext

    return jupytext.read(source)


def has_exercises(root: Path, name: str) -> bool:
    """Whether ``notebooks/<name>.py`` has at least one exercise (a quick text scan, no parsing)."""
    source = root / "notebooks" / f"{name}.py"
    return source.exists() and "{exercise}" in source.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------
# Repository and launch links (the URL lives in _config.yml, nowhere else)
# ---------------------------------------------------------------------------------------------------------


def repository(root: Path) -> dict[str, str]:
    """``url`` and ``branch`` of the book's repository, from ``_config.yml``'s ``repository`` section."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    if not repo.get("url"):
        raise ValueError("_config.yml must set repository.url (the book's public git repository)")
    return {"url": str(repo["url"]).rstrip("/"), "branch": str(repo.get("branch", "main"))}


def pages_url(root: Path) -> str:
    """Where GitHub Pages serves the book that ``make publish`` pushes: ``https://<owner>.github.io/<name>/``."""
    parsed = urlparse(repository(root)["url"])
    parts = parsed.path.strip("/").removesuffix(".git").split("/")
    if parsed.netloc != "github.com" or len(parts) != 2:
        raise ValueError(f"repository.url must be https://github.com/<owner>/<name> (got {repository(root)['url']})")
    owner, name = parts
    return f"https://{owner.lower()}.github.io/{name}/"


def student_relpath(name: str) -> str:
    """The student notebook of chapter ``name``, relative to the repository root."""
    return f"{STUDENT_DIR}/{name}.ipynb"


def launch_links(root: Path, name: str) -> dict[str, str]:
    """Colab and Binder URLs that open the student notebook of ``name`` (GitHub repositories)."""
    repo = repository(root)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    buttons = config.get("launch_buttons") or {}
    org_repo = urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    path = student_relpath(name)
    colab = buttons.get("colab_url", "https://colab.research.google.com").rstrip("/")
    binder = buttons.get("binderhub_url", "https://mybinder.org").rstrip("/")
    ui = "lab/tree" if buttons.get("notebook_interface", "classic") == "jupyterlab" else "tree"
    return {
        "colab": f"{colab}/github/{org_repo}/blob/{repo['branch']}/{path}",
        "binder": f"{binder}/v2/gh/{org_repo}/{repo['branch']}?urlpath={ui}/{path}",
    }


# ---------------------------------------------------------------------------------------------------------
# The student edition
# ---------------------------------------------------------------------------------------------------------


def install_spec(root: Path) -> dict[str, Any]:
    """What the install cell installs: ``requirement`` (the distribution from the repository's git URL),
    ``distribution`` (its name in pyproject.toml) and ``minimum`` (pyproject's lower bounds of the packages
    the cell keeps when present, torch and torchvision)."""
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimum = {}
    for dep in project["dependencies"]:
        m = re.match(r"^(torch|torchvision)\s*>=\s*([\w.]+)\s*$", dep)
        if m:
            minimum[m.group(1)] = m.group(2)
    if set(minimum) != {"torch", "torchvision"}:
        raise ValueError("pyproject.toml: dependencies must bound torch and torchvision from below (`torch>=X`)")
    name = project["name"]
    return {"requirement": f"{name} @ git+{repository(root)['url']}", "distribution": name, "minimum": minimum}


def install_cell_source(requirement: str, distribution: str, minimum: dict[str, str]) -> str:
    """The first cell of a student notebook: :func:`helpers.install.ensure_installed`, verbatim, and its call.

    Outside the repository (Colab, Binder, a downloaded copy) it installs the book's package and keeps the
    torch and torchvision already there; inside the repository it does nothing.
    """
    import inspect

    from helpers import install

    return (
        "# Outside the book's repository (Colab, Binder, a downloaded copy) the `helpers` package is missing:\n"
        "# this cell installs it from the repository (a few minutes) and keeps the torch and torchvision you\n"
        "# already have. Inside the repository, or once installed, it does nothing.\n"
        + inspect.getsource(install.ensure_installed)
        + f"\n\nensure_installed({requirement!r}, {distribution!r}, {minimum!r})\n"
    )


def _plain_role(m: re.Match[str]) -> str:
    role, text = m.group("role"), m.group("text")
    if role.startswith("glue"):
        return f"`{text}`"  # the glued variable: the student's own run defines it
    if role.startswith("cite"):
        return "(" + ", ".join(k.strip() for k in text.split(",")) + ")"
    target = re.match(r"^(?P<label>.*?)\s*<[^<>]*>$", text, re.DOTALL)
    return target.group("label") if target else text


def _plain_block(m: re.Match[str], counter: list[int]) -> str:
    name, arg, body = m.group("name"), m.group("arg").strip(), m.group("body")
    body = "\n".join(line for line in body.splitlines() if not re.match(r"^:[\w-]+:", line)).strip("\n")
    if name in ("exercise", "exercise-start"):
        counter[0] += 1
        return f"**Exercise {counter[0]}: {arg}**\n\n{body}" if arg else f"**Exercise {counter[0]}**\n\n{body}"
    if name == "bibliography":
        return "*The references are listed at the end of this chapter's page in the book.*"
    if name in ("admonition", "note", "tip", "important", "warning"):
        title = arg or name.capitalize()
        return f"> **{title}.** " + body.replace("\n", "\n> ")
    return body


def to_plain_markdown(text: str, counter: list[int] | None = None) -> str:
    """MyST markup as plain Markdown for Jupyter and Colab: exercise boxes become bold headings, roles become
    their text (a glued number becomes the name of the variable that holds it), the run banner goes."""
    counter = counter if counter is not None else [0]
    text = re.sub(r"^\*\*Run:\*\*.*?(?:\n\s*\n|\Z)", "", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"^\([\w-]+\)=\s*\n", "", text, flags=re.MULTILINE)  # MyST targets
    previous = None
    while previous != text:  # nested blocks: innermost first, until nothing changes
        previous = text
        text = _BLOCK.sub(lambda m: _plain_block(m, counter), text)
    text = re.sub(r"\[([^\]]+)\]\((?!https?:|#)[^)]*\)", r"\1", text)  # links into the book: text only
    return _ROLE.sub(_plain_role, text)


def student_notebook(source: Path, root: Path) -> Any:
    """The student edition of ``source`` (a notebooks/*.py file): an nbformat notebook, deterministic."""
    import nbformat

    nb = read_source(source)
    cells = [
        nbformat.v4.new_code_cell(install_cell_source(**install_spec(root)), metadata={"tags": ["install"]}),
        nbformat.v4.new_markdown_cell(
            f"*Student edition of `notebooks/{source.name}`, generated by `python -m helpers.pipeline student`: "
            "the solutions are removed, the self-checks kept. The book's page of this chapter shows the "
            "solutions. Run the cells from the top; the parameter cell holds the medium (laptop CPU) profile.*"
        ),
    ]
    counter = [0]
    for cell in nb.cells:
        tags = _tags(cell)
        if SOLUTION_TAG in tags:
            continue
        if cell.cell_type == "markdown" and _SOLUTION_ANY.search(cell.source):
            raise ValueError(f"{source.name}: a markdown cell holds a solution directive but is not tagged solution")
        new = copy.deepcopy(cell)
        new.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "markdown":
            if _EXERCISE.search(cell.source):
                new.metadata = {"tags": [*tags, EXERCISE_TAG]}
            new.source = to_plain_markdown(cell.source, counter)
            if not new.source.strip():
                continue
        else:
            new.outputs, new.execution_count = [], None
        cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    for i, cell in enumerate(out.cells):  # stable ids: regenerating gives the same bytes
        cell.id = hashlib.sha1(f"{source.stem}-{i}".encode()).hexdigest()[:12]
    return out


def render(nb: Any) -> str:
    """The notebook as the exact text written to disk."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def write_student(name: str, root: Path) -> Path:
    """Write ``student/<name>.ipynb`` from ``notebooks/<name>.py`` (atomically); return its path."""
    from helpers.core.io import atomic_path

    dest = root / student_relpath(name)
    text = render(student_notebook(root / "notebooks" / f"{name}.py", root))
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dest


def stale_students(names: list[str], root: Path) -> list[str]:
    """The chapters among ``names`` whose committed student notebook differs from a fresh generation."""
    stale = []
    for name in names:
        dest = root / student_relpath(name)
        fresh = render(student_notebook(root / "notebooks" / f"{name}.py", root))
        if not dest.exists() or dest.read_text(encoding="utf-8") != fresh:
            stale.append(name)
    return stale


def truncated_at_first_exercise(nb: Any) -> Any:
    """A copy of a (student) notebook with the cells from the first exercise on removed."""
    out = copy.deepcopy(nb)
    cut = first_exercise_cell(out)
    if cut is not None:
        out.cells = out.cells[:cut]
    return out


def teaching_cell_source(root: Path, name: str, n_exercises: int) -> str:
    """The note the pipeline puts under a chapter's banner: the exercises, the student notebook, Colab, Binder."""
    links = launch_links(root, name)
    return (
        ":::{admonition} Teaching edition\n"
        ":class: tip\n"
        f"This chapter ends with {n_exercises} exercises; the solutions are hidden behind a toggle. "
        f"{{download}}`Download the student notebook <../../{student_relpath(name)}>` (solutions removed, "
        f"self-checks kept), or run it in [Colab]({links['colab']}) or on [Binder]({links['binder']}).\n"
        ":::"
    )


# ---------------------------------------------------------------------------------------------------------
# Sphinx extension: launch buttons that open the student notebook
# ---------------------------------------------------------------------------------------------------------


def _fix_buttons(buttons: list[Any], old: str, new: str | None) -> list[Any]:
    """Buttons with ``old`` in their URL re-pointed at ``new``, or dropped when ``new`` is None."""
    out = []
    for b in buttons:
        if isinstance(b, dict) and isinstance(b.get("buttons"), list):
            inner = _fix_buttons(b["buttons"], old, new)
            if inner or not b["buttons"]:
                out.append({**b, "buttons": inner})
            continue
        url = b.get("url", "") if isinstance(b, dict) else ""
        if old in url:
            if new is None:
                continue
            b = {**b, "url": url.replace(old, new)}
        out.append(b)
    return out


def _launch_to_student(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    buttons = context.get("header_buttons")
    if not buttons:
        return
    root = Path(app.srcdir)
    name = Path(pagename).name
    old = f"{pagename}.ipynb"
    new = student_relpath(name) if (root / student_relpath(name)).exists() else None
    context["header_buttons"] = _fix_buttons(buttons, old, new)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: after the theme builds its launch buttons (priority 501), re-point them."""
    app.connect("html-page-context", _launch_to_student, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
