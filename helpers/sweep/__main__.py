"""``python -m helpers.sweep``: the command line of sweeps (``make sweep`` calls it).

    python -m helpers.sweep 00_primer --profile small --seeds 0-1 -p eps 0.01,0.03 --workers 2
    python -m helpers.sweep 00_primer 04_regnet --profile small,medium --seeds 0-4
    python -m helpers.sweep 00_primer --profile full --seeds 0-4 --address 10.0.0.5:6379   # a Ray cluster

Every point is a run of the pipeline into ``<out>/<name>/<chapter>/<profile>/seed<k>_<param>-<value>/``; the
sweep's ``summary.json`` lies in ``<out>/<name>/`` (default ``results/sweeps/``), where the book's "Sweeps" page
reads it. Rerunning the same command skips the points already done and runs the others (failed ones included).
Bad input (an unknown chapter, profile or parameter, a malformed grid, an unreachable address) stops the command
before Ray starts, with a message naming the value. Exit status: 0 when every point is done, 1 when some failed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from helpers.sweep.grid import Point, parse_seeds, parse_values, plan


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m helpers.sweep``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("chapters", nargs="+", help="chapters to sweep, e.g. 00_primer")
    parser.add_argument(
        "--profile", default=os.environ.get("PROFILE", "small"), help="profile(s), e.g. small or small,medium"
    )
    parser.add_argument("--seeds", default="0", help="seeds: 0-4, 0,2,5 or 0-1,7 (default 0)")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs="*",
        action="append",
        default=[],
        metavar="NAME VALUES",
        help="a swept parameter and its values: -p eps 0.01,0.03 (repeat -p for a product grid)",
    )
    parser.add_argument("--name", help="the sweep's folder name (default: chapters-profiles-parameters)")
    parser.add_argument("--out", type=Path, help="where sweeps go (default: results/sweeps)")
    parser.add_argument("--workers", type=int, help="points at once on a local Ray (default: one per core)")
    parser.add_argument("--cpus-per-task", type=int, help="cores and threads per point (default: cores / workers)")
    parser.add_argument("--address", help="join an existing Ray cluster (host:port from `ray start --head`, or auto)")
    parser.add_argument("--retries", type=int, default=1, help="retries of a failed point (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=float(os.environ.get("CHAPTER_TIMEOUT", 1800)), help="seconds per point"
    )
    return parser


def prepare(args: argparse.Namespace, root: Path) -> tuple[list[Point], Path]:
    """Check every argument and list the grid's points (raises ``ValueError`` naming the bad value)."""
    grid: dict[str, list[Any]] = {}
    for entry in args.parameter:
        if not entry:
            raise ValueError("-p needs a parameter name and its values, like -p eps 0.01,0.03")
        name, *raw = entry
        if name in grid:
            raise ValueError(f"-p {name} is given twice; list all its values once, like -p {name} 0.01,0.03")
        grid[name] = parse_values(name, raw)
    profiles = [p.strip() for p in args.profile.split(",") if p.strip()]
    points = plan(root, list(args.chapters), profiles, parse_seeds(args.seeds), grid)
    for opt in ("workers", "cpus_per_task"):
        value = getattr(args, opt)
        if value is not None and value < 1:
            raise ValueError(f"--{opt.replace('_', '-')} must be an integer >= 1 (got {value})")
    if args.workers is not None and args.address:
        raise ValueError("--workers applies to a local Ray only; a cluster's size is its own (drop --workers)")
    if args.retries < 0:
        raise ValueError(f"--retries must be an integer >= 0 (got {args.retries})")
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds (got {args.timeout:g})")
    name = args.name or "-".join(["+".join(args.chapters), "+".join(profiles), *grid])
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise ValueError(f"--name must use letters, digits and . _ + - only (got {name!r})")
    from helpers.core.io import results_dir

    return points, (args.out or results_dir() / "sweeps") / name


def main(argv: list[str] | None = None) -> int:
    """Run the sweep the arguments describe; print where its summary is and every failed point."""
    from helpers.core.io import project_root
    from helpers.sweep.engine import check_address, run_sweep

    args = build_parser().parse_args(argv)
    root = project_root(Path(__file__).parent)
    try:
        points, sweep_dir = prepare(args, root)
        check_address(args.address)
    except ValueError as err:
        print(f"python -m helpers.sweep: error: {err}", file=sys.stderr)
        return 2

    def report(rec: dict[str, Any]) -> None:
        if rec["status"] == "failed":
            where = sweep_dir / rec["log"]
            print(f"[sweep] {rec['id']} failed after {rec['attempts']} attempt(s): {rec['error']} (log: {where})")

    print(f"[sweep] {len(points)} point(s) -> {sweep_dir}", flush=True)
    t0 = time.perf_counter()
    try:
        summary = run_sweep(
            points,
            root=root,
            sweep_dir=sweep_dir,
            workers=args.workers,
            cpus_per_task=args.cpus_per_task,
            address=args.address,
            timeout=args.timeout,
            retries=args.retries,
            on_point=report,
        )
    except KeyboardInterrupt:
        print(f"[sweep] interrupted; completed points are kept in {sweep_dir}: rerun the same command to continue")
        return 130
    c = summary["counts"]
    print(
        f"[sweep] done {c['done']} ({c['skipped']} skipped: done before), failed {c['failed']}, "
        f"in {time.perf_counter() - t0:.0f} s; "
        f"summary: {sweep_dir / 'summary.json'}"
    )
    return 1 if c["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
