"""Aggregate a sweep: per point, per claim across seeds, and each swept parameter as a curve with its band.

Claims are read from each point's ``results/<chapter>.json``. A claim always has ``holds``; claims that also carry
a numeric ``effect`` (with an ``interval`` and a ``verdict``: reproduced, contradicted or inconclusive) are
aggregated on those too, so the summary works with either form. Across the seeds of one configuration (chapter,
profile and swept values) a claim gets:

- the share of seeds where it holds, and where it is reproduced (the verdict when there is one, else ``holds``),
  with a 95% Wilson interval: with a handful of seeds the share alone says little;
- the mean of its effect with a 95% Student-t interval over seeds (a single seed keeps its own interval).

The glued numbers of the chapters (accuracies and the like) are aggregated the same way, since a swept parameter
usually moves them more visibly than it flips a claim.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; past 30 the normal's 1.96 is close enough
# for a band drawn on a figure (2.04 at 30, 2.00 at 60).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)
_T975 += (2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
REPRODUCED = "reproduced"


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mean_interval(values: list[float], own: list[Any] | None = None) -> dict[str, Any]:
    """Mean of per-seed values with a 95% t-interval; one seed keeps its own ``interval`` if it has one."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "lo": None, "hi": None, "sd": None}
    mean = sum(values) / n
    if n == 1:
        iv = own[0] if own and isinstance(own[0], (list, tuple)) and len(own[0]) == 2 else (mean, mean)
        return {"n": 1, "mean": mean, "lo": iv[0], "hi": iv[1], "sd": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (_T975[n - 2] if n - 1 <= len(_T975) else 1.96) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd}


def share_interval(flags: list[bool]) -> dict[str, Any]:
    """Share of true flags with its 95% Wilson interval (sound at 0 and 1 and for few seeds)."""
    n = len(flags)
    if n == 0:
        return {"n": 0, "mean": None, "lo": None, "hi": None}
    k, z = sum(map(bool, flags)), 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"n": n, "mean": p, "lo": max(0.0, centre - half), "hi": min(1.0, centre + half)}


def _claims_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("key", "claim", "holds", "effect", "interval", "verdict")
    return [{k: c[k] for k in keep if k in c} for c in results.get("claims", [])]


def _point_view(sweep_dir: Path, rec: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "chapter", "profile", "seed", "params", "config_hash", "status", "skipped", "attempts")
    view = {k: rec.get(k) for k in keys}
    view.update({k: rec.get(k) for k in ("wall_time_s", "run_wall_time_s", "error", "log", "notebook", "results")})
    view["claims"], view["numbers"] = [], {}
    res_file = sweep_dir / rec["results"]
    if rec.get("status") == "done" and res_file.exists():
        res = json.loads(res_file.read_text(encoding="utf-8"))
        view["claims"] = _claims_of(res)
        view["numbers"] = {k: v for k, v in res.get("numbers", {}).items() if _real(v) and not k.startswith("run_")}
    return view


def _done_groups(points: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The finished points grouped by configuration (chapter, profile, parameters): one group per seed set."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        if p["status"] == "done":
            key = json.dumps([p["chapter"], p["profile"], p["params"]], sort_keys=True)
            groups.setdefault(key, []).append(p)
    return list(groups.values())


def aggregate_claims(points: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration and claim: seeds, shares holding / reproduced, effect mean and interval."""
    rows = []
    for members in _done_groups(points):
        first = members[0]
        order = list(dict.fromkeys(c["key"] for m in members for c in m["claims"]))
        for key in order:
            per_seed = [(m["seed"], c) for m in members for c in m["claims"] if c["key"] == key]
            with_effect = [(s, c) for s, c in per_seed if _real(c.get("effect"))]
            verdicts = [c.get("verdict") for _, c in per_seed if c.get("verdict")]
            rows.append(
                {
                    "chapter": first["chapter"],
                    "profile": first["profile"],
                    "params": first["params"],
                    "key": key,
                    "claim": per_seed[0][1].get("claim", key),
                    "seeds": sorted(s for s, _ in per_seed),
                    "holds": share_interval([bool(c.get("holds")) for _, c in per_seed]),
                    "reproduced": share_interval(
                        [c["verdict"] == REPRODUCED if c.get("verdict") else bool(c.get("holds")) for _, c in per_seed]
                    ),
                    "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
                    "effect": mean_interval(
                        [float(c["effect"]) for _, c in with_effect], [c.get("interval") for _, c in with_effect]
                    )
                    if with_effect
                    else None,
                }
            )
    return rows


def aggregate_numbers(points: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration and glued number: its mean over seeds with a 95% t-interval."""
    rows = []
    for members in _done_groups(points):
        first = members[0]
        for name in dict.fromkeys(k for m in members for k in m["numbers"]):
            vals = [float(m["numbers"][name]) for m in members if name in m["numbers"]]
            rows.append(
                {"chapter": first["chapter"], "profile": first["profile"], "params": first["params"], "key": name}
                | {"stat": mean_interval(vals)}
            )
    return rows


def curves(claims: list[dict[str, Any]], numbers: list[dict[str, Any]], swept: list[str]) -> list[dict[str, Any]]:
    """Each numeric swept parameter as a curve, per claim (its effect, else the share holding) and per number.

    The other swept parameters are held fixed along a curve (one curve per combination of them).
    """
    out = []
    for name in swept:
        lines: dict[str, dict[str, Any]] = {}
        rows = [("claim", r) for r in claims] + [("number", r) for r in numbers]
        for kind, r in rows:
            x = r["params"].get(name)
            if not _real(x):
                continue
            fixed = {k: v for k, v in r["params"].items() if k != name}
            if kind == "claim":
                y, stat = ("effect", r["effect"]) if r["effect"] else ("share holding", r["holds"])
            else:
                y, stat = "value", r["stat"]
            ident = json.dumps([r["chapter"], r["profile"], kind, r["key"], y, fixed], sort_keys=True)
            line = lines.setdefault(
                ident,
                {"chapter": r["chapter"], "profile": r["profile"], "parameter": name, "fixed": fixed}
                | {"kind": kind, "key": r["key"], "label": r.get("claim", r["key"]), "y": y, "points": []},
            )
            line["points"].append({"value": x, **{k: stat[k] for k in ("n", "mean", "lo", "hi")}})
        for line in lines.values():
            line["points"].sort(key=lambda pt: pt["value"])
            if len(line["points"]) >= 2:
                out.append(line)
    return out


def summarize(sweep_dir: Path, records: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The sweep's ``summary.json``: its grid, Ray settings, every point, and the aggregates over seeds."""
    points = [_point_view(sweep_dir, r) for r in records]
    swept = list(dict.fromkeys(k for p in points for k in p["params"]))
    claims, numbers = aggregate_claims(points), aggregate_numbers(points)
    counts = {s: sum(p["status"] == s for p in points) for s in ("done", "failed", "interrupted", "pending")}
    return {
        "name": sweep_dir.name,
        **meta,
        "chapters": sorted({p["chapter"] for p in points}),
        "profiles": sorted({p["profile"] for p in points}),
        "seeds": sorted({p["seed"] for p in points}),
        "grid": {k: list({json.dumps(p["params"][k]): p["params"][k] for p in points}.values()) for k in swept},
        "counts": counts | {"skipped": sum(bool(p["skipped"]) for p in points)},
        "points": points,
        "claims": claims,
        "numbers": numbers,
        "curves": curves(claims, numbers, swept),
    }


def load_summaries(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """Every ``<sweeps>/<name>/summary.json`` (default ``results/sweeps``), newest first."""
    from helpers.core.io import results_dir

    folder = Path(directory) if directory else results_dir() / "sweeps"
    found = [json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*/summary.json"))]
    return sorted(found, key=lambda s: str(s.get("started", "")), reverse=True)


def _fmt_share(s: dict[str, Any]) -> str:
    k = round(s["mean"] * s["n"])
    return f"{k}/{s['n']} ({s['lo']:.0%}–{s['hi']:.0%})"


def claims_frame(summary: dict[str, Any]) -> Any:
    """The sweep's claims across seeds as a table for the book: shares with their intervals, effect and band."""
    import pandas as pd

    rows = []
    for r in summary.get("claims", []):
        e = r["effect"]
        rows.append(
            {
                "chapter": r["chapter"],
                "profile": r["profile"],
                "setting": ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "profile's",
                "claim": r["claim"],
                "seeds": len(r["seeds"]),
                "holds (95% CI)": _fmt_share(r["holds"]),
                "reproduced (95% CI)": _fmt_share(r["reproduced"]),
                "effect: mean [95% CI]": f"{e['mean']:.3g} [{e['lo']:.3g}, {e['hi']:.3g}]"
                if e
                else "no effect recorded",
            }
        )
    return pd.DataFrame(rows)
