"""The student path as a student meets it: the package built as a wheel, installed into fresh virtual
environments by the committed install cell of the student notebooks (the cell's own source, with the wheel in
place of the git URL), then the primer's first cells run there.

Offline machines carry one torch build, the tested one, so "another torch" is a stand-in: a distribution whose
metadata alone names another version. pip decides from metadata, so its resolution report says whether the
cell would have replaced that torch. The tested torch is not installed again (gigabytes): the fresh venv sees
the project's torch and what torch itself requires through a ``.pth`` file, as a preinstalled torch; the book's
package and every other dependency are installed into the fresh venv by the cell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import needs_mnist

from helpers import lock, student

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PRIMER = "00_primer"
DIST = student.install_spec(ROOT)["distribution"]
# Another torch: above the book's lower bound, below the tested 2.14.1 (and below this machine's pip cap).
STAND_IN_TORCH = "2.13.0"
# A torchvision for it at a version no index carries, so that the resolution is decided by this test alone.
STAND_IN_VISION = "0.28.5"
TESTED_TORCH = lock.read_pins(ROOT / lock.LOCK_FILE)["torch"]
TIMEOUT_S = 600


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{cmd[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _env(**extra: str) -> dict[str, str]:
    """This process's environment (the machine's pip settings included), without anything that would let the
    fresh venv see the project's packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "HELPERS_PROGRESS": "0", "HELPERS_DEVICE": "cpu", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book's package as a wheel, built from a copy of the working tree (no build/ left in the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "helpers", src / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(src)]
    _run(cmd, _env(), tmp)
    (built,) = tmp.glob("*.whl")
    with zipfile.ZipFile(built) as z:
        assert "helpers/install.py" in z.namelist() and "helpers/core/attacks.py" in z.namelist()
    return built


def _install_cell(wheel: Path) -> str:
    """The committed install cell of the primer's student notebook, installing ``wheel`` instead of the git URL."""
    nb = nbformat.read(ROOT / student.student_relpath(PRIMER), as_version=4)
    cell = nb.cells[0]
    assert "install" in cell.metadata.get("tags", [])
    git = repr(student.install_spec(ROOT)["requirement"])
    assert cell.source.count(git) == 1, "the install cell names the repository once"
    return cell.source.replace(git, repr(f"{DIST} @ {wheel.as_uri()}"))


def _venv(path: Path) -> tuple[Path, Path]:
    """A fresh virtual environment with pip: its python and its site-packages."""
    _run([sys.executable, "-m", "venv", str(path)], _env(), path.parent)
    python = path / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], _env(), path)
    return python, Path(site.stdout.strip())


def _metadata(name: str, version: str, requires: list[str]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n"


def _stand_in_installed(site: Path, name: str, version: str, requires: list[str]) -> None:
    """An installed distribution that is metadata only: what pip reads to decide."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(_metadata(name, version, requires))
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def _stand_in_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A wheel that is metadata only, for pip to find in ``folder`` (a find-links location)."""
    folder.mkdir(exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {
        f"{info}/METADATA": _metadata(name, version, requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": "",
    }
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for arcname, text in files.items():
            z.writestr(arcname, text)
    return path


def _resolution(report: Path) -> dict[str, str]:
    """``{name: version}`` of what a pip run installed (or would install), from its ``--report``."""
    doc = json.loads(report.read_text())
    return {lock.canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in doc["install"]}


def _version_in(python: Path, name: str, cwd: Path) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return _run([str(python), "-c", code], _env(), cwd).stdout.strip()


def test_install_cell_keeps_another_torch(wheel: Path, tmp_path: Path) -> None:
    python, site = _venv(tmp_path / "venv")
    _stand_in_installed(site, "torch", STAND_IN_TORCH, [])
    links = tmp_path / "links"
    _stand_in_wheel(links, "torchvision", STAND_IN_VISION, [f"torch=={STAND_IN_TORCH}"])
    env = _env(PIP_FIND_LINKS=f"{os.environ.get('PIP_FIND_LINKS', '')} {links}".strip())
    cell = tmp_path / "install_cell.py"
    cell.write_text(_install_cell(wheel))

    # Control: torchvision is missing and the newest one needs a newer torch, so plain pip replaces this torch.
    control = tmp_path / "control.json"
    _run([str(python), "-m", "pip", "install", "-q", "--dry-run", "--report", str(control), str(wheel)], env, tmp_path)
    assert _resolution(control).get("torch") not in (None, STAND_IN_TORCH), "the scenario must tempt pip"

    # The install cell (pip's dry run and report switched on through pip's own environment variables): pip must
    # pick the torchvision that fits the present torch and leave torch alone.
    report = tmp_path / "cell.json"
    _run([str(python), str(cell)], {**env, "PIP_DRY_RUN": "1", "PIP_REPORT": str(report)}, tmp_path)
    got = _resolution(report)
    assert got[DIST] == "0.1.0" and got["torchvision"] == STAND_IN_VISION
    assert "torch" not in got, f"the install cell would replace torch {STAND_IN_TORCH} with {got.get('torch')}"

    # Colab's case: torch and torchvision both present. Nothing of theirs moves, the rest is installed.
    _stand_in_installed(site, "torchvision", STAND_IN_VISION, [f"torch=={STAND_IN_TORCH}"])
    report = tmp_path / "cell-both.json"
    _run([str(python), str(cell)], {**env, "PIP_DRY_RUN": "1", "PIP_REPORT": str(report)}, tmp_path)
    got = _resolution(report)
    assert DIST in got and "numpy" in got and not {"torch", "torchvision"} & set(got), sorted(got)
    assert _version_in(python, "torch", tmp_path) == STAND_IN_TORCH
    shutil.rmtree(tmp_path / "venv")  # passed: hundreds of MB that pytest would otherwise keep and sweep later


def _present(folder: Path, roots: list[str], own: set[str]) -> list[str]:
    """``folder`` made to hold, as symlinks, the installed ``roots`` and everything they require but the
    fresh venv's ``own`` distributions (its pip and setuptools, which come first on its path): a torch that is
    already there. Returns the distributions' names."""
    folder.mkdir()
    dists = {k: d for k, d in lock.installed_closure(roots).items() if k not in own}
    for dist in dists.values():
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in sorted(tops - {"..", "__pycache__"}):
            src = Path(str(dist.locate_file(top)))
            if src.exists() and not top.endswith(".pth") and not (folder / top).exists():
                (folder / top).symlink_to(src)
    return sorted(dists)


@needs_mnist
def test_install_cell_with_the_tested_torch_then_the_primer_runs(wheel: Path, tmp_path: Path) -> None:
    python, site = _venv(tmp_path / "venv")
    # Outside the venv's prefix: pip never removes what lies outside its environment.
    own = {lock.canonical(p.name.split("-")[0]) for p in site.glob("*.dist-info")}
    present = _present(tmp_path / "present", ["torch", "torchvision"], own)
    (site / "present-torch.pth").write_text(str(tmp_path / "present") + "\n")
    assert _version_in(python, "torch", tmp_path) == TESTED_TORCH
    probe = "import importlib.util; print(importlib.util.find_spec('helpers'))"
    assert _run([str(python), "-c", probe], _env(), tmp_path).stdout.strip() == "None", "the venv must be fresh"

    cell = tmp_path / "install_cell.py"
    cell.write_text(_install_cell(wheel))
    report = tmp_path / "cell.json"
    _run([str(python), str(cell)], _env(PIP_REPORT=str(report)), tmp_path)
    got = _resolution(report)
    assert DIST in got and "papermill" in got and "numpy" not in got  # numpy came with the present torchvision
    assert not set(present) & set(got), f"the install cell reinstalled {sorted(set(present) & set(got))}"
    where = "import helpers, helpers.core.attacks, torch; print(helpers.__file__, torch.__version__)"
    out = _run([str(python), "-c", where], _env(), tmp_path).stdout.split()
    assert out[0].startswith(str(site)) and out[1].split("+")[0] == TESTED_TORCH

    # The primer's first cells, the committed student notebook's, up to and including the model's training,
    # at the small profile, in a kernel of the fresh venv (papermill from the venv; the cell installed it).
    nb = nbformat.read(ROOT / student.student_relpath(PRIMER), as_version=4)
    trains = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "training.fit(" in c.source)
    assert trains < student.first_exercise_cell(nb)
    nb.cells = nb.cells[: trains + 1] + [nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")]
    src, out_nb = tmp_path / "primer.ipynb", tmp_path / "primer.out.ipynb"
    nbformat.write(nb, src)
    params = ROOT / "params" / "small" / f"{PRIMER}.yaml"
    cmd = [str(python), "-m", "papermill", str(src), str(out_nb), "-f", str(params), "-p", "profile", "small"]
    cmd += ["-k", "python3", "--cwd", str(tmp_path), "--no-progress-bar"]
    _run(cmd, _env(HELPERS_RESULTS=str(tmp_path / "results")), tmp_path)
    executed = nbformat.read(out_nb, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert code[-1].outputs[0]["text"].strip() == str(tmp_path / "venv"), "the kernel is the fresh venv's"
    history = next(c for c in code if "training.fit(" in c.source)
    assert "val_acc" in str(history.outputs), "the training cell shows its per-epoch history"
    shutil.rmtree(tmp_path / "venv")  # passed: hundreds of MB that pytest would otherwise keep and sweep later
