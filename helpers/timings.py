"""Measured wall times: ``book/timings.json``, which the pipeline updates after each chapter run and the
"Run it yourself" page shows as a table (one row per chapter and profile, one column per measured device).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from helpers.core.device import cpu_model
from helpers.core.io import project_root


def timings_path(root: Path) -> Path:
    """The committed record of measured wall times: ``book/timings.json``."""
    return root / "book" / "timings.json"


def checkpoints_written_since(name: str, since: float) -> int:
    """How many checkpoints of chapter ``name`` were written (trained) since the epoch time ``since``."""
    from helpers.core.data import cache_dir

    folder = cache_dir() / "checkpoints"
    if not folder.is_dir():
        return 0
    return sum(1 for f in folder.glob(f"{name}*") if f.is_file() and f.stat().st_mtime >= since)


def record_timing(root: Path, name: str, *, started: str, trained: int | None = None) -> dict[str, Any] | None:
    """Add the wall time of the run of ``name`` that just finished to ``book/timings.json``.

    Read from ``results/<name>.json`` when that file was written by this run (its ``started`` stamp is not
    older than ``started``); pages without a results file (the scorecard) record nothing. One entry is kept per
    chapter, profile, device type, device name and ``models`` (the latest): ``"cached"`` when the run trained
    nothing (``trained == 0``: every checkpoint came from HELPERS_CACHE, so the time leaves training out),
    else ``"trained"``. The update holds a lock and replaces the file atomically, so concurrent pipeline runs
    never lose each other's entries.
    """
    import fcntl  # POSIX only: imported here so that the tables above also load on Windows

    from helpers.core.io import results_dir, write_json

    res_file = results_dir() / f"{name}.json"
    if not res_file.exists():
        return None
    res = json.loads(res_file.read_text(encoding="utf-8"))
    if res.get("chapter") != name or str(res.get("started", "")) < started:
        return None
    meta = res.get("metadata", {})
    device_type = str(res.get("device", "cpu")).split(":")[0]
    entry = {
        "chapter": name,
        "title": res.get("title", name),
        "profile": res["profile"],
        "device_type": device_type,
        "device_name": meta.get("device_name", "") if device_type != "cpu" else cpu_model(),
        "threads": meta.get("torch_threads"),
        "models": "cached" if trained == 0 else "trained",
        "wall_time_s": round(float(res["wall_time_s"]), 1),
        "date": str(res.get("started", ""))[:10],
        "git_revision": meta.get("git_revision"),
    }
    path = timings_path(root)
    lock = root / "_build" / "timings.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": []}
        key = ("chapter", "profile", "device_type", "device_name", "models")
        runs = [r for r in data.get("runs", []) if any(r.get(k, "trained") != entry[k] for k in key)] + [entry]
        runs.sort(key=lambda r: tuple(str(r.get(k, "")) for k in key))
        write_json(path, {"about": TIMINGS_ABOUT, "runs": runs})
    return entry


TIMINGS_ABOUT = (
    "Measured wall times of chapter runs, written by `python -m helpers.pipeline run` from results/<chapter>.json "
    "(one entry per chapter, profile, device type, device name and models trained or cached: the latest). "
    "Do not edit by hand."
)


def load_timings(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The measured wall times in ``book/timings.json`` (written by the pipeline after each chapter run)."""
    f = Path(path) if path else project_root() / "book" / "timings.json"
    if not f.exists():
        return []
    with open(f, encoding="utf-8") as fh:
        return list(json.load(fh).get("runs", []))


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def timings_table(runs: list[dict[str, Any]], chapters: list[str] | None = None) -> Any:
    """One row per chapter and profile, one column per measured device (CPU model and threads, or GPU name).

    A run that trained nothing (its checkpoints came from the cache) is marked "with cached models".

    ``chapters`` (e.g. the book's, in order) adds rows for chapters and profiles nobody has timed yet, so the
    table shows what is missing; cells without a measurement read "not measured".
    """
    import pandas as pd

    profiles = ("small", "medium", "full")
    names = list(chapters or []) + sorted({r["chapter"] for r in runs} - set(chapters or []))
    cells: dict[tuple[str, str], dict[str, str]] = {(c, p): {} for c in names for p in profiles}
    devices: list[str] = []
    for r in runs:
        if r["device_type"] == "cpu":
            device = f"CPU: {r['device_name']}" + (f", {r['threads']} threads" if r.get("threads") else "")
        else:
            device = f"GPU: {r['device_name']}"
        if device not in devices:
            devices.append(device)
        cached = " with cached models" if r.get("models") == "cached" else ""
        text = f"{_duration(float(r['wall_time_s']))}{cached} ({r['date']})"
        cell = cells.setdefault((r["chapter"], r["profile"]), {})
        cell[device] = f"{cell[device]}; {text}" if device in cell else text
    devices.sort(key=lambda d: (not d.startswith("CPU"), d))
    rows = [
        {"chapter": c, "profile": p, **{d: cells[c, p].get(d, "not measured") for d in devices}}
        for c in names
        for p in profiles
        if (c, p) in cells
    ]
    return pd.DataFrame(rows, columns=["chapter", "profile", *devices])
