"""``make publish``: the built book goes to the gh-pages branch of the configured remote, here a local bare
repository; without a built book it refuses. The target runs in a scratch repository (ghp-import commits into
the repository it runs in), with this checkout's Makefile and tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import student

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def _make_publish(repo: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    cmd = ["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(repo), "publish", f"BIN={Path(sys.executable).parent}"]
    return subprocess.run([*cmd, *variables], env=GIT_ENV, capture_output=True, text=True, timeout=120)


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A repository with one commit whose ``origin`` is an empty bare repository: (checkout, remote)."""
    remote, repo = tmp_path / "remote.git", tmp_path / "book"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    _git("init", "-q", "-b", "main", str(repo), cwd=tmp_path)
    (repo / "README.md").write_text("a book\n")
    _git("add", "README.md", cwd=repo)
    _git("commit", "-q", "-m", "start", cwd=repo)
    _git("remote", "add", "origin", str(remote), cwd=repo)
    return repo, remote


def _build(html: Path, marker: str) -> None:
    (html / "_static").mkdir(parents=True, exist_ok=True)
    (html / "index.html").write_text(f"<html><body>{marker}</body></html>\n")
    (html / "_static" / "book.css").write_text("body { margin: 0 }\n")


def test_publish_puts_the_built_book_on_gh_pages(checkout: tuple[Path, Path]) -> None:
    repo, remote = checkout
    _build(repo / "_build" / "html", "first build")
    proc = _make_publish(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _git("show", "gh-pages:index.html", cwd=remote) == (repo / "_build" / "html" / "index.html").read_text()
    files = set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split())
    assert files == {"index.html", "_static/book.css", ".nojekyll"}  # .nojekyll: Pages serves _static/
    head = _git("rev-parse", "--short", "HEAD", cwd=repo).strip()
    assert head in _git("log", "-1", "--format=%s", "gh-pages", cwd=remote)  # which commit the pages show
    assert _git("rev-parse", "main", cwd=repo) != _git("rev-parse", "gh-pages", cwd=repo)

    # A rebuilt book replaces the pages; REMOTE= picks another remote (a path will do for git).
    _build(repo / "_build" / "html", "second build")
    other = repo.parent / "other.git"
    _git("init", "-q", "--bare", str(other), cwd=repo.parent)
    assert _make_publish(repo).returncode == 0
    assert "second build" in _git("show", "gh-pages:index.html", cwd=remote)
    assert _make_publish(repo, f"REMOTE={other}").returncode == 0
    assert "second build" in _git("show", "gh-pages:index.html", cwd=other)


def test_publish_refuses_without_a_built_book(checkout: tuple[Path, Path]) -> None:
    repo, remote = checkout
    (repo / "_build" / "html").mkdir(parents=True)  # a build folder, but no book in it
    proc = _make_publish(repo)
    assert proc.returncode != 0
    assert "no book" in proc.stderr and "make book" in proc.stderr
    assert _git("branch", "--list", "gh-pages", cwd=remote).strip() == ""


def test_readme_and_citation_say_where_the_book_lives_and_how_to_install_it() -> None:
    url = student.pages_url(ROOT)
    assert url == "https://adv-robust-book.github.io/adversarial-robustness-reproduced/"
    opening = "\n".join((ROOT / "README.md").read_text().splitlines()[:5])
    assert url in opening and "make test" in opening and "make publish" in opening
    install = student.install_spec(ROOT)["requirement"]
    assert f'pip install "{install}"' in (ROOT / "README.md").read_text()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["url"] == url and citation["repository-code"] == student.repository(ROOT)["url"]
    assert f'pip install "{install}"' in " ".join(citation["abstract"].split())
