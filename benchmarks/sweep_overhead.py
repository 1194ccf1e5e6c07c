"""What scheduling a sweep on Ray costs: 4 primer points at the small profile with 2 workers, against their own
run times.

The ratio printed is the sweep's wall time (from the call to ``run_sweep``: Ray's start, the submission, the waits,
the records, Ray's shutdown) over (the sum of the points' own run times / workers), where a point's own run time
is measured inside its Ray task around the pipeline run (conversion, papermill and its kernel, tidying the
executed notebook). 1.0 would be a perfect split with no cost at all; the bound is 1.15::

    .venv/bin/python benchmarks/sweep_overhead.py [--profile small] [--workers 2] [--eps 0.1,0.2] [--seeds 0-1]

The sweep runs in a fresh temporary folder, so nothing is skipped. Other programs using the cores slow the points
and Ray's start unevenly: measure on an otherwise idle machine. Exit status 1 when the ratio is above the bound.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from helpers.core.io import project_root
from helpers.sweep.engine import run_sweep
from helpers.sweep.grid import parse_seeds, parse_values, plan

BOUND = 1.15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", default="0-1")
    parser.add_argument("--eps", default="0.1,0.2")
    args = parser.parse_args()
    os.environ.setdefault("HELPERS_PROGRESS", "0")
    root = project_root(Path(__file__).parent)
    points = plan(
        root, ["00_primer"], [args.profile], parse_seeds(args.seeds), {"eps": parse_values("eps", [args.eps])}
    )
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        t0 = time.perf_counter()
        summary = run_sweep(points, root=root, sweep_dir=Path(tmp) / "bench", workers=args.workers)
        wall = time.perf_counter() - t0
    own = [p["wall_time_s"] for p in summary["points"]]
    if summary["counts"]["done"] != len(points):
        print(f"only {summary['counts']['done']} of {len(points)} points finished: no ratio")
        return 1
    ideal = sum(own) / args.workers
    ratio = wall / ideal
    for p in summary["points"]:
        print(
            f"{p['id']}: {p['wall_time_s']:.1f} s in its task (the chapter's own clock: {p['run_wall_time_s']:.1f} s)"
        )
    print(f"sweep wall time {wall:.1f} s; sum of the points' run times / {args.workers} = {ideal:.1f} s")
    print(f"ratio {ratio:.3f} (bound {BOUND}); load average now {os.getloadavg()[0]:.2f}")
    return 0 if ratio <= BOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
