"""Execute the book's notebooks: jupytext (py:percent -> ipynb with a kernelspec), then papermill.

    python -m helpers.pipeline list
    python -m helpers.pipeline run 00_primer --profile small [-p eps 0.2] [--timeout 900]
    python -m helpers.pipeline run --all --profile small
    python -m helpers.pipeline script 04_regnet --profile full   # no Jupyter: a plain Python run


Each notebook ``notebooks/<name>.py`` is executed with ``profile=<profile>`` and the parameters of
``params/<profile>/<name>.yaml`` (if present), then any ``-p`` overrides, into ``book/chapters/<name>.ipynb``,
the file ``_toc.yml`` points at. The kernel's working directory is the project root. The parameter cells are
tagged ``hide-cell`` so the rendered page shows them collapsed. The executed notebook is moved into place only
on success; a failed run is kept at ``_build/failed/<name>.ipynb`` and the command exits non-zero. Each notebook
has a wall-clock limit (``--timeout`` seconds, default 1800).

After a chapter's successful run the pipeline records its measured wall time (from the ``results/<name>.json``
the run wrote) in ``book/timings.json``, one entry per chapter, profile and device, which the "Run it yourself"
page shows. Chapters with exercises get a "Teaching edition" note under their banner (the student notebook,
Colab, Binder); ``student`` writes the student notebooks ``student/<name>.ipynb`` (see ``helpers.student``)::

    python -m helpers.pipeline student            # every chapter of _toc.yml that has exercises
    python -m helpers.pipeline student --check    # exit 1 if a committed student notebook is out of date

``script`` runs a chapter as a plain Python program instead (for a GPU server without Jupyter): the same
parameters are assigned right after the ``parameters`` cell, figures are saved under ``results/figures`` and
the claims land in ``results/<name>.json``; nothing is written to the book. Any notebook under ``notebooks/``
can be run this way, also one not yet in ``_toc.yml``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from helpers.core.io import project_root
from helpers.core.params import PROFILES, check_choice
from helpers.timings import checkpoints_written_since, record_timing

KERNEL_NAME = "adv-robust"
HIDDEN_TAGS = ("parameters", "injected-parameters")


def notebook_names(root: Path) -> list[str]:
    """The notebooks in ``_toc.yml`` order whose pages live under ``book/chapters/``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("book/chapters/"):
                names.append(Path(f).name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return names


def kernel_name() -> str:
    """``HELPERS_KERNEL``, else the project's registered kernel, else ``python3``."""
    env = os.environ.get("HELPERS_KERNEL")
    if env:
        return env
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def to_ipynb(source: Path, dest: Path, kernel: str) -> None:
    """Convert a py:percent notebook to ipynb with a kernelspec (what papermill needs to pick a kernel)."""
    import jupytext

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": kernel,
        "display_name": "Python 3 (adv-robust)",
        "language": "python",
    }
    nb.metadata.setdefault("language_info", {"name": "python"})
    jupytext.write(nb, dest, fmt="ipynb")


def tidy(path: Path) -> None:
    """Collapse the parameter cells (papermill's injected one too) in the rendered book."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if any(t in tags for t in HIDDEN_TAGS) and "hide-cell" not in tags:
            tags.append("hide-cell")
    nbformat.write(nb, path)


def parameters_for(root: Path, name: str, profile: str, overrides: list[tuple[str, str]]) -> dict[str, Any]:
    params: dict[str, Any] = {"profile": profile}
    f = root / "params" / profile / f"{name}.yaml"
    if f.exists():
        params.update(yaml.safe_load(f.read_text(encoding="utf-8")) or {})
    for key, raw in overrides:
        params[key] = yaml.safe_load(raw)  # "-1" -> -1, "foo" -> "foo", "[0.1, 0.2]" -> list
    return params


def execute(
    name: str,
    profile: str,
    *,
    overrides: list[tuple[str, str]] | None = None,
    timeout: float = 1800,
    root: Path | None = None,
    out: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Path:
    """Execute one notebook; return the executed notebook's path (raises on failure or timeout).

    By default the run is the book's: the page goes to ``book/chapters/<name>.ipynb``, a failed run to
    ``_build/failed/<name>.ipynb``, and the wall time to ``book/timings.json``. A run for somewhere else (a sweep
    point, see ``helpers.sweep``) passes ``out``: the executed notebook goes there, a failed one next to it as
    ``<stem>.failed.ipynb``, and the book is left alone. ``env`` adds variables for the papermill process (e.g.
    ``HELPERS_RESULTS``, thread limits); ``log`` appends papermill's output to that file instead of stdout.
    """
    root = root or project_root(Path(__file__).parent)
    check_choice("profile", profile, PROFILES)
    source = root / "notebooks" / f"{name}.py"
    if not source.exists():
        raise FileNotFoundError(f"no notebook source {source}")
    for_book = out is None
    out = out or root / "book" / "chapters" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    params = parameters_for(root, name, profile, overrides or [])
    with tempfile.TemporaryDirectory(prefix=f"nb-{name}-") as tmp:
        src_nb, exe_nb, params_file = (
            Path(tmp) / f"{name}.ipynb",
            Path(tmp) / "out.ipynb",
            Path(tmp) / "p.yaml",
        )
        kernel = kernel_name()
        to_ipynb(source, src_nb, kernel)
        params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
        cmd = [
            sys.executable,
            "-m",
            "papermill",
            str(src_nb),
            str(exe_nb),
            "-f",
            str(params_file),
            "-k",
            kernel,
            "--cwd",
            str(root),
            "--no-progress-bar",
            "--log-output",
        ]
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        sink = open(log, "a", encoding="utf-8") if log else None  # closed in the finally below
        print(f"[pipeline] {name} profile={profile} params={params}", file=sink, flush=True)
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        epoch0 = time.time()
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=full_env,
                start_new_session=True,
                stdout=sink,
                stderr=subprocess.STDOUT if sink else None,
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # papermill and its kernel
                proc.wait()
                rc = None
            except BaseException:
                # Ctrl-C, or a cancelled sweep task: papermill runs in its own session, so nothing else stops it.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        finally:
            if sink:
                sink.close()
        seconds = time.perf_counter() - t0
        if rc != 0:
            failed = root / "_build" / "failed" / f"{name}.ipynb" if for_book else out.with_suffix(".failed.ipynb")
            if exe_nb.exists():
                failed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(exe_nb, failed)
            why = f"timed out after {timeout:.0f} s" if rc is None else f"failed (exit {rc})"
            raise RuntimeError(f"{name} {why} after {seconds:.0f} s; the partial notebook is at {failed}")
        tidy(exe_nb)
        add_teaching_cell(exe_nb, root, name)
        _copy_replace(exe_nb, out)  # the temp dir may be on another file system than the book
        print(f"[pipeline] {name} done in {seconds:.0f} s -> {out.relative_to(root) if for_book else out}", flush=True)
    if for_book:
        record_timing(root, name, started=started, trained=checkpoints_written_since(name, epoch0))
    return out


def add_teaching_cell(path: Path, root: Path, name: str) -> None:
    """Put the "Teaching edition" note (student notebook download, Colab, Binder) under a chapter's banner.

    Only chapters with exercises get it; it goes right after the first markdown cell (title and banner).
    """
    import nbformat

    from helpers import student

    nb = nbformat.read(path, as_version=4)
    n_ex = len(student.exercises(nb))
    if not n_ex:
        return
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    if first is None:
        return
    cell = nbformat.v4.new_markdown_cell(
        student.teaching_cell_source(root, name, n_ex), metadata={"tags": [student.TEACHING_CELL_TAG]}
    )
    nb.cells.insert(first + 1, cell)
    nbformat.write(nb, path)


def script_source(source: Path, params: dict[str, Any]) -> str:
    """The notebook's py:percent source with ``params`` assigned right after its ``parameters`` cell."""
    lines = source.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# %%") and '"parameters"' in line), None)
    if start is None:
        raise ValueError(f"{source.name} has no cell tagged parameters")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    # One line, in place of the blank line that closes the cell when there is one, so that tracebacks keep
    # the source file's line numbers.
    injected = "; ".join(f"{key} = {value!r}" for key, value in params.items()) or "pass"
    if end > start + 1 and not lines[end - 1].strip():
        return "\n".join(lines[: end - 1] + [injected] + lines[end:]) + "\n"
    return "\n".join(lines[:end] + [injected] + lines[end:]) + "\n"


def run_script(
    name: str, profile: str, *, overrides: list[tuple[str, str]] | None = None, root: Path | None = None
) -> None:
    """Run ``notebooks/<name>.py`` as a plain Python program with the profile's parameters (no Jupyter)."""
    root = root or project_root(Path(__file__).parent)
    check_choice("profile", profile, PROFILES)
    source = root / "notebooks" / f"{name}.py"
    if not source.exists():
        raise FileNotFoundError(f"no notebook source {source}")
    params = parameters_for(root, name, profile, overrides or [])
    code = compile(script_source(source, params), str(source), "exec")
    os.environ.setdefault("MPLBACKEND", "Agg")  # no display: figures are only saved
    print(f"[pipeline] script {name} profile={profile} params={params}", flush=True)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    epoch0 = time.time()
    t0 = time.perf_counter()
    cwd = Path.cwd()
    os.chdir(root)
    try:
        exec(code, {"__name__": "__main__", "__file__": str(source)})
    finally:
        os.chdir(cwd)
    print(f"[pipeline] script {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    trained = checkpoints_written_since(name, epoch0)
    record_timing(
        root, name, started=started, trained=trained
    )  # GPU servers run chapters this way: keep their times too


def _copy_replace(src: Path, dest: Path) -> None:
    """Copy next to ``dest`` then rename: the executed notebook appears whole or not at all."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="print the notebooks in _toc.yml order")
    run = sub.add_parser("run", help="execute notebooks")
    run.add_argument("names", nargs="*", help="notebook names, e.g. 00_primer")
    run.add_argument("--all", action="store_true", help="every notebook in _toc.yml, in order")
    run.add_argument("--profile", default=os.environ.get("PROFILE", "small"), choices=PROFILES)
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("CHAPTER_TIMEOUT", 1800)),
        help="seconds per notebook",
    )
    stud = sub.add_parser("student", help="write the student notebooks student/<name>.ipynb")
    stud.add_argument("names", nargs="*", help="chapters (default: every chapter in _toc.yml with exercises)")
    stud.add_argument("--check", action="store_true", help="write nothing; exit 1 if any is out of date")
    script = sub.add_parser("script", help="run one notebook as a plain Python program (no Jupyter)")
    script.add_argument("name", help="notebook name, e.g. 04_regnet (any notebooks/<name>.py)")
    script.add_argument("--profile", default=os.environ.get("PROFILE", "small"), choices=PROFILES)
    script.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)
    root = project_root(Path(__file__).parent)
    names = notebook_names(root)
    # Any notebooks/<name>.py can run (a chapter is executed before it joins _toc.yml); --all is the toc's list.
    available = sorted(p.stem for p in (root / "notebooks").glob("*.py"))
    if args.cmd == "list":
        print("\n".join(names))
        return 0
    if args.cmd == "student":
        from helpers import student

        todo = args.names or [n for n in names if student.has_exercises(root, n)]
        for name in todo:
            check_choice("notebook", name, names)
        if args.check:
            stale = student.stale_students(todo, root)
            for name in stale:
                print(f"[pipeline] {student.student_relpath(name)} is out of date: run `make student`")
            return 1 if stale else 0
        for name in todo:
            print(f"[pipeline] wrote {student.write_student(name, root).relative_to(root)}", flush=True)
        return 0
    if args.cmd == "script":
        check_choice("notebook", args.name, available)
        run_script(args.name, args.profile, overrides=[tuple(p) for p in args.parameter], root=root)
        return 0
    todo = names if args.all else args.names
    if not todo:
        parser.error("name at least one notebook, or pass --all")
    for name in todo:
        check_choice("notebook", name, available)
        execute(name, args.profile, overrides=[tuple(p) for p in args.parameter], timeout=args.timeout, root=root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
