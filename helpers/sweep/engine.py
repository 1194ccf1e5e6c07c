"""Run a sweep's points as Ray tasks: skip the points already done, retry a failure once, survive Ctrl-C.

Ray does the scheduling (one task per core, or per GPU where the cluster has GPUs); this module only submits one
task per point, waits for them in completion order, and writes each point's record the moment it finishes, so
that an interrupted sweep keeps every completed point and a rerun starts only the others.

Layout of a sweep ``<out>/<name>/``: one folder per point (``<chapter>/<profile>/seed<k>_<param>-<value>/``) with
the executed notebook, ``results/<chapter>.json``, ``results/figures/<chapter>/``, ``log.txt`` and ``point.json``
(configuration, its hash, status, times, error); and ``summary.json`` for the whole sweep (``helpers.sweep.summary``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.core.io import write_json
from helpers.sweep.grid import Point, config_hash
from helpers.sweep.summary import summarize

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ATTEMPT_MARK = "=== attempt "


def check_address(address: str | None) -> None:
    """An existing cluster's ``host:port`` must answer before anything is submitted (``auto``: Ray finds it)."""
    if not address or address == "auto":
        return
    m = re.fullmatch(r"(?:ray://)?\[?([A-Za-z0-9.:_-]+?)\]?:(\d{1,5})", address)
    if not m or not 0 < int(m[2]) < 65536:
        raise ValueError(f"--address must be host:port of a Ray head, e.g. 10.0.0.5:6379, or auto (got {address!r})")
    try:
        socket.create_connection((m[1], int(m[2])), timeout=3).close()
    except OSError as err:
        raise ValueError(
            f"--address {address!r} is unreachable ({err.strerror or err}); start the head with `ray start --head` "
            "and pass the address it prints"
        ) from None


def _describe_failure(err: BaseException, failed_nb: Path) -> str:
    """The notebook's own exception (``ValueError: eps must be ...``) when it raised one, else ``err``."""
    if failed_nb.exists():
        import nbformat

        for cell in nbformat.read(failed_nb, as_version=4).cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return f"{out['ename']}: {out['evalue']}"
    return str(err)


def run_point(root: str, point: Point, point_dir: str, threads: int, timeout: float) -> dict[str, Any]:
    """Execute one point through the pipeline (the body of a Ray task); raise ``RuntimeError`` if it fails.

    The notebook runs in papermill's own process (``helpers.pipeline.execute``), so a crashing kernel cannot take
    the Ray worker down; its results, figures and page go to ``point_dir``, its output to ``log.txt``.
    """
    from helpers import pipeline

    t0 = time.perf_counter()
    folder = Path(point_dir)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    attempt = 1 + (log.read_text(encoding="utf-8").count(ATTEMPT_MARK) if log.exists() else 0)
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"{ATTEMPT_MARK}{attempt} on {socket.gethostname()} at {stamp}, {threads} thread(s)\n")
    # Each task gets its share of the cores and no more: torch would otherwise start one thread per core in
    # every task, and several tasks on a small machine would then fight over the same cores (oversubscription
    # makes every point slower than running them one after the other).
    env = {var: str(threads) for var in THREAD_VARS}
    env.update(HELPERS_RESULTS=str(folder / "results"), HELPERS_PROGRESS="0", MPLBACKEND="Agg")
    nb = folder / f"{point.chapter}.ipynb"
    try:
        pipeline.execute(
            point.chapter,
            point.profile,
            overrides=point.overrides(),
            timeout=timeout,
            root=Path(root),
            out=nb,
            env=env,
            log=log,
        )
    except Exception as err:
        raise RuntimeError(_describe_failure(err, nb.with_suffix(".failed.ipynb"))) from None
    results = json.loads((folder / "results" / f"{point.chapter}.json").read_text(encoding="utf-8"))
    return {"seconds": time.perf_counter() - t0, "attempts": attempt, "host": socket.gethostname(), "results": results}


def _connect(address: str | None, workers: int, cpus_per_task: int | None) -> tuple[bool, dict[str, Any]]:
    """Start a local Ray, or join ``address``; return (whether we started it, the task resources to ask for)."""
    import ray

    started = not ray.is_initialized()
    if started and address:
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as err:
            raise ValueError(f"--address {address!r}: no Ray cluster answers ({err})") from None
    elif started:
        # One CPU slot per worker times the threads each task may use; no dashboard: it costs seconds at start.
        per_task = cpus_per_task or max(1, (os.cpu_count() or 1) // workers)
        ray.init(num_cpus=workers * per_task, include_dashboard=False, log_to_driver=False)
    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0))
    if gpus:
        per_task = cpus_per_task or max(1, int(total.get("CPU", 1)) // gpus)
        return started, {"num_cpus": per_task, "num_gpus": 1, "slots": gpus}
    per_task = cpus_per_task or (max(1, (os.cpu_count() or 1) // workers) if not address else 1)
    return started, {"num_cpus": per_task, "num_gpus": 0, "slots": max(1, int(total.get("CPU", 1)) // per_task)}


def _done_before(folder: Path, point: Point, digest: str) -> dict[str, Any] | None:
    """The record of a point finished earlier with the same configuration, if its results are still there."""
    rec_file = folder / "point.json"
    if not rec_file.exists():
        return None
    rec = json.loads(rec_file.read_text(encoding="utf-8"))
    results = folder / "results" / f"{point.chapter}.json"
    if rec.get("status") != "done" or rec.get("config_hash") != digest or not results.exists():
        return None
    return rec


def run_sweep(
    points: list[Point],
    *,
    root: Path,
    sweep_dir: Path,
    workers: int | None = None,
    cpus_per_task: int | None = None,
    address: str | None = None,
    timeout: float = 1800,
    retries: int = 1,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every point not already done as a Ray task; write point records and ``summary.json``; return it.

    ``workers`` (local Ray only) is how many points run at once, default one per core; ``cpus_per_task`` the
    cores (and threads) each point gets. A point that fails is retried ``retries`` times by Ray, then recorded as
    failed; the others go on. ``on_point`` is called with each finished point's record (the CLI prints failures).
    """
    from helpers.core.progress import counter

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be an integer >= 1 (got {workers})")
    if cpus_per_task is not None and cpus_per_task < 1:
        raise ValueError(f"cpus_per_task must be an integer >= 1 (got {cpus_per_task})")
    if retries < 0:
        raise ValueError(f"retries must be an integer >= 0 (got {retries})")
    check_address(address)
    t0 = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    configs = {p.id: p.config(root) for p in points}
    records: dict[str, dict[str, Any]] = {}
    todo: list[Point] = []
    for p in points:
        digest = config_hash(configs[p.id])
        prev = _done_before(sweep_dir / p.id, p, digest)
        if prev is not None:
            records[p.id] = {**prev, "skipped": True}
        else:
            records[p.id] = _record(p, configs[p.id], digest, "pending")
            todo.append(p)
    meta = {"address": address or "local", "workers": workers, "started": _now()}

    def save() -> None:
        meta["wall_time_s"] = round(time.perf_counter() - t0, 2)
        write_json(sweep_dir / "summary.json", summarize(sweep_dir, list(records.values()), meta))

    bar = counter(len(points), initial=len(points) - len(todo), desc=f"sweep {sweep_dir.name}", unit="point")
    if not todo:
        # Nothing to run: the summary keeps the date and wall time of the invocation that did the work.
        before = sweep_dir / "summary.json"
        kept = json.loads(before.read_text(encoding="utf-8")) if before.exists() else {}
        meta.update({k: kept[k] for k in ("started", "slots", "resources", "wall_time_s") if k in kept})
        meta.setdefault("wall_time_s", round(time.perf_counter() - t0, 2))
        write_json(sweep_dir / "summary.json", summarize(sweep_dir, list(records.values()), meta))
        bar.close()
        return json.loads((sweep_dir / "summary.json").read_text(encoding="utf-8"))
    import ray

    started, res = _connect(address, workers, cpus_per_task)
    meta.update(resources={k: res[k] for k in ("num_cpus", "num_gpus")}, slots=res["slots"])
    task = ray.remote(run_point).options(
        num_cpus=res["num_cpus"], num_gpus=res["num_gpus"], max_retries=retries, retry_exceptions=True
    )
    pending: dict[Any, Point] = {}
    try:
        for p in todo:
            folder = sweep_dir / p.id
            for stale in ("log.txt", f"{p.chapter}.ipynb", f"{p.chapter}.failed.ipynb", "point.json"):
                (folder / stale).unlink(missing_ok=True)  # a fresh start counts its attempts from one
            shutil.rmtree(folder / "results", ignore_errors=True)
            pending[task.remote(str(root), p, str(folder), res["num_cpus"], timeout)] = p
        failed = 0
        while pending:
            bar.set_postfix(running=min(len(pending), res["slots"]), failed=failed)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                p = pending.pop(ref)
                rec = records[p.id]
                try:
                    out = ray.get(ref)
                    rec.update(status="done", wall_time_s=round(out["seconds"], 2), attempts=out["attempts"])
                    rec.update(run_wall_time_s=out["results"].get("wall_time_s"), host=out["host"])
                    if not (sweep_dir / rec["results"]).exists():  # a cluster node without the driver's disk
                        write_json(sweep_dir / rec["results"], out["results"])
                except Exception as err:  # the task's own error after its retries, or a lost worker
                    cause = getattr(err, "cause", None) or err
                    log = sweep_dir / rec["log"]  # on a cluster without a shared disk the log stays on its node
                    tries = log.read_text(encoding="utf-8").count(ATTEMPT_MARK) if log.exists() else retries + 1
                    rec.update(status="failed", error=str(cause).strip()[:2000], attempts=tries)
                    failed += 1
                rec["finished"] = _now()
                write_json(sweep_dir / p.id / "point.json", rec)
                bar.update(1)
                save()
                if on_point:
                    on_point(rec)
    except KeyboardInterrupt:
        # Cancelling raises KeyboardInterrupt inside each running task, where the pipeline kills papermill and
        # its kernel; completed points already have their records, the others stay pending and run next time.
        for ref in pending:
            ray.cancel(ref)
        ray.wait(list(pending), num_returns=len(pending), timeout=10)
        for p in pending.values():
            records[p.id]["status"] = "interrupted"
        save()
        raise
    finally:
        bar.close()
        if started:
            ray.shutdown()
    save()
    return json.loads((sweep_dir / "summary.json").read_text(encoding="utf-8"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _record(point: Point, config: dict[str, Any], digest: str, status: str) -> dict[str, Any]:
    """A point's record (``point.json``); paths are relative to the sweep's folder so it can be moved."""
    return {
        "id": point.id,
        "chapter": point.chapter,
        "profile": point.profile,
        "seed": point.seed,
        "params": dict(point.params),
        "config_hash": digest,
        "config": config,
        "status": status,
        "skipped": False,
        "attempts": 0,
        "wall_time_s": None,
        "run_wall_time_s": None,
        "error": None,
        "log": f"{point.id}/log.txt",
        "notebook": f"{point.id}/{point.chapter}.ipynb",
        "results": f"{point.id}/results/{point.chapter}.json",
    }
