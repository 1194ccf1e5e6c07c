"""The student notebooks' install step, kept as real, tested code.

The first cell of every student notebook is the source of :func:`ensure_installed` followed by one call to it
(``helpers.student.install_cell_source`` copies it verbatim). The function must therefore stand alone: the
standard library only, imports inside, no other name of this module used. Tests execute the committed cell
itself, in fresh virtual environments, so what students run is what is tested.
"""

from __future__ import annotations


def ensure_installed(requirement: str, distribution: str, minimum: dict[str, str]) -> None:
    """Install ``requirement`` with pip unless ``distribution`` is installed already, keeping the torch and
    torchvision this Python has.

    A machine's torch is chosen for its hardware (Colab's CUDA build, a conda pytorch): pip must not replace
    it with another build of many gigabytes. So every package of ``minimum`` that is installed is pinned to
    its present version in a constraints file; pip's resolver can then pick only releases of everything else
    that work with it. A package older than its ``minimum`` (the book's lower bound) stops here, with what to
    do, rather than in a conflict report of pip's.
    """
    import importlib
    import importlib.metadata
    import importlib.util
    import os
    import re
    import subprocess
    import sys
    import tempfile

    try:
        importlib.metadata.version(distribution)
        return  # installed: inside the book's repository, or this cell ran before
    except importlib.metadata.PackageNotFoundError:
        pass

    def release(version: str) -> tuple[int, ...]:
        found = re.match(r"\d+(?:\.\d+)*", version)  # "2.5.1+cu121" -> (2, 5, 1); "2.6.0a0" -> (2, 6, 0)
        numbers = [int(n) for n in found.group(0).split(".")] if found else [0]
        return tuple(numbers + [0] * (3 - len(numbers)))

    keep = []
    for name, lowest in minimum.items():
        try:
            present = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if importlib.util.find_spec(name) is not None:  # importable, but pip would not see it and add one
                raise RuntimeError(
                    f"{name} is importable but has no package metadata, so pip would install a second copy. "
                    f"Install the book with `pip install --no-deps {requirement}` and its other dependencies "
                    "by hand."
                ) from None
            continue  # absent: pip installs a release that fits the rest
        if release(present) < release(lowest):
            raise RuntimeError(
                f"The book needs {name} >= {lowest}; this Python has {name} {present}. Upgrade it (the build "
                f"that matches your machine, e.g. `pip install -U '{name}>={lowest}'`), restart, and run this "
                "cell again."
            )
        keep.append(f"{name}=={present}\n")
    with tempfile.TemporaryDirectory() as tmp:
        pins = os.path.join(tmp, "keep-present.txt")
        with open(pins, "w", encoding="utf-8") as f:
            f.writelines(keep)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", pins, requirement], check=True)
    importlib.invalidate_caches()
