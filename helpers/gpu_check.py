"""GPU readiness: every chapter at one profile on one CUDA device, timed, with its verdicts (``make gpu-check``).

    python -m helpers.gpu_check [--profile medium] [--budget 600] [--device cuda:0]

Runs each chapter of ``_toc.yml`` in order through the pipeline (:func:`helpers.pipeline.execute`, so the
executed pages and ``book/timings.json`` are the book's) with ``HELPERS_DEVICE`` set, then writes
``book/gpu_check.json``: the device, torch and CUDA versions, the revision, and per chapter its wall time and
the verdict of every claim, beside the total. The run fails (exit 1) when a chapter fails or the total exceeds
``--budget`` seconds (10 minutes: the profile is sized so that all chapters fit on one GPU). Without CUDA it
refuses before running anything (exit 2) and says what to do.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from helpers.core.io import project_root, results_dir, write_json
from helpers.core.params import PROFILES, check_choice

DEFAULT_PROFILE = "medium"
DEFAULT_BUDGET_S = 600.0


def require_cuda(device: str) -> str:
    """``device`` if it names a CUDA device that is present; otherwise a ValueError that says what to do."""
    import torch

    if not device.startswith("cuda"):
        raise ValueError(f"device must be cuda or cuda:N for the GPU check (got {device!r})")
    if not torch.cuda.is_available():
        raise ValueError(
            "make gpu-check needs a CUDA GPU, and torch.cuda.is_available() is False on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). Run it on a machine with an "
            "NVIDIA GPU and a CUDA build of torch; on a CPU use `make test` (small) or `make book`."
        )
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"device must be one of cuda:0..cuda:{torch.cuda.device_count() - 1} (got {device!r})")
    return device


def chapter_record(name: str, wall_s: float) -> dict[str, Any]:
    """Wall time and claim verdicts of a chapter's run, from the ``results/<name>.json`` it wrote."""
    path = results_dir() / f"{name}.json"
    res = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    claims = {c["key"]: c["verdict"] for c in res.get("claims", []) if c.get("kind", "claim") == "claim"}
    counts: dict[str, int] = {}
    for verdict in claims.values():
        counts[verdict] = counts.get(verdict, 0) + 1
    return {"chapter": name, "wall_time_s": round(wall_s, 1), "verdicts": claims, "counts": counts}


def run(profile: str, budget_s: float, device: str, root: Path | None = None) -> dict[str, Any]:
    """Execute every chapter on ``device`` at ``profile``; return (and write) the record."""
    import torch

    from helpers.core.device import run_metadata
    from helpers.pipeline import execute, notebook_names

    root = root or project_root(Path(__file__).parent)
    check_choice("profile", profile, PROFILES)
    require_cuda(device)
    chapters = [n for n in notebook_names(root) if n[:2].isdigit()]
    record: dict[str, Any] = {
        "profile": profile,
        "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device)),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": _dt.date.today().isoformat(),
        "git_revision": run_metadata("cpu").get("git_revision"),
        "budget_s": budget_s,
        "chapters": [],
    }
    t_all = time.perf_counter()
    failed = None
    for name in chapters:
        t0 = time.perf_counter()
        try:
            execute(name, profile, root=root, env={"HELPERS_DEVICE": device})
        except Exception as err:  # noqa: BLE001 -- recorded, and the check fails below
            failed = f"{name}: {err}"
            record["chapters"].append({"chapter": name, "failed": str(err)[:500]})
            break
        record["chapters"].append(chapter_record(name, time.perf_counter() - t0))
    record["total_s"] = round(time.perf_counter() - t_all, 1)
    record["within_budget"] = record["total_s"] <= budget_s and failed is None
    write_json(root / "book" / "gpu_check.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=os.environ.get("PROFILE", DEFAULT_PROFILE), choices=PROFILES)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for all chapters")
    parser.add_argument("--device", default=os.environ.get("HELPERS_DEVICE", "cuda"))
    args = parser.parse_args(argv)
    try:
        require_cuda(args.device)
    except ValueError as err:
        print(f"gpu-check: {err}", file=sys.stderr)
        return 2
    record = run(args.profile, args.budget, args.device)
    for ch in record["chapters"]:
        print(f"{ch['chapter']:<22} {ch.get('wall_time_s', 'failed')!s:>8} s  {ch.get('counts', ch.get('failed'))}")
    print(f"total {record['total_s']} s of {args.budget:g} s on {record['device_name']}: book/gpu_check.json")
    return 0 if record["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
