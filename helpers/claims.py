"""Claims as data: each document's findings, the effect we measure for each, its 95% interval and a verdict.

One YAML file per chapter, ``notebooks/claims/<chapter>.yaml``, read by the chapter (through
:meth:`helpers.results.Run.claim`), by the tests and by the scorecard. Each entry::

    - key: rse_gain                       # the name the chapter records it under
      kind: claim                         # "claim": the document's finding; "check": one the book adds
      statement: RSE raises robust accuracy over the undefended network
      source: Table 2                     # where the document says it
      document: "'RSE improves robust accuracy by 1.35%': 41.63% vs 40.28%"   # its words and numbers
      effect: robust accuracy of BigNet-RSE minus BigNet, suite with EOT    # what we subtract from what
      unit: points                        # the effect's unit
      document_value: 1.35                # the document's effect in that unit, when it gives one (else null)
      direction: greater                  # greater | less | equivalent (the document's direction)
      no_effect: 0                        # the value meaning "no effect" (1 for a ratio; a threshold the document
                                          # names, e.g. 10 for "below 10%")
      margin: 0                           # fixed before any run: how far beyond no_effect the interval must lie
      expected:                           # per profile: the verdict we expect and, unless reproduced, why
        small: {verdict: inconclusive, reason: "..."}
      history: []                         # runs that flipped a verdict (written by ``record``)

A verdict compares the 95% interval with ``no_effect`` (below: n) and the margin (Errington et al. 2021
report the same two criteria for the Reproducibility Project: Cancer Biology):

* **reproduced**: the interval lies beyond ``n + margin`` in the document's direction (for ``equivalent``:
  inside ``n ± margin``);
* **contradicted**: it lies entirely on the other side of n (for ``equivalent``: entirely outside
  ``n ± margin``);
* **inconclusive at this scale** otherwise.

Beside it, ``document_inside`` says whether the document's own effect lies inside our interval.

Intervals are percentile bootstraps (Efron & Tibshirani 1993), seeded, so the same numbers give the same
interval: :func:`paired` over test images when two models are scored on the same images (per-sample
correctness, optionally per noise draw), :func:`mean` over seeds or draws, :func:`difference` between two
independent sets of runs, :func:`bootstrap` for any other statistic.
"""

from __future__ import annotations

import datetime as _dt
import math
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

VERDICTS = ("reproduced", "inconclusive", "contradicted")
DIRECTIONS = ("greater", "less", "equivalent")
KINDS = ("claim", "check")
LEVEL = 0.95
N_BOOT = 2000


@dataclass(frozen=True)
class Effect:
    """A measured effect: the point estimate, its 95% interval, the unit and how the interval was computed."""

    estimate: float
    low: float
    high: float
    unit: str
    method: str
    n: int

    def text(self, digits: int = 1) -> str:
        """``+5.1 points (95% CI +1.2 to +9.0)``; a ratio (unit ``x``) unsigned: ``0.86 x (95% CI 0.70 to 1.03)``."""
        f = f"{{:.{digits}f}}" if self.unit == "x" else f"{{:+.{digits}f}}"
        return f"{f.format(self.estimate)} {self.unit} (95% CI {f.format(self.low)} to {f.format(self.high)})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _array(x: Any) -> np.ndarray:
    """Per-sample values as a float array: numpy, torch tensors, lists, or a ``Scores`` (its ``hits``)."""
    if hasattr(x, "hits"):
        x = x.hits
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2) or a.shape[-1] < 2:
        raise ValueError(f"samples must have shape (N,) or (draws, N) with N >= 2, got {a.shape}")
    return a


def bootstrap(
    statistic: Callable[..., float],
    *samples: Any,
    unit: str,
    method: str,
    paired: bool = True,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Effect:
    """Percentile bootstrap of ``statistic(*samples)``.

    Each sample has shape ``(N,)`` or ``(draws, N)``; the last axis holds the units resampled (test images,
    seeds). ``paired=True`` resamples one index for all samples (they must share N: the same images); with
    ``paired=False`` each is resampled on its own (independent runs). A 2-D sample also has its rows (noise
    draws) resampled, so the interval covers draw-to-draw noise too.
    """
    arrays = [_array(s) for s in samples]
    if paired and len({a.shape[-1] for a in arrays}) > 1:
        raise ValueError(f"paired samples must share their last axis, got {[a.shape for a in arrays]}")
    rng = np.random.default_rng(seed)
    estimate = float(statistic(*arrays))
    stats = np.empty(n_boot)
    for b in range(n_boot):
        shared = rng.integers(0, arrays[0].shape[-1], arrays[0].shape[-1]) if paired else None
        resampled = []
        for a in arrays:
            idx = shared if paired else rng.integers(0, a.shape[-1], a.shape[-1])
            r = a[..., idx]
            if r.ndim == 2:
                r = r[rng.integers(0, r.shape[0], r.shape[0])]
            resampled.append(r)
        stats[b] = statistic(*resampled)
    low, high = np.quantile(stats, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Effect(
        estimate, float(low), float(high), unit, f"{method}, {n_boot} bootstrap resamples", arrays[0].shape[-1]
    )


def paired(a: Any, b: Any, *, unit: str = "points", scale: float = 100.0, what: str = "test images") -> Effect:
    """Difference of mean correctness, ``a - b``, of two models scored on the same images (in points).

    ``a``, ``b``: per-image correctness (N,) in {0, 1} or fractions, or per-draw hits (draws, N), or a
    ``Scores``. The interval is a paired bootstrap over the images (and over draws for 2-D hits).
    """
    return bootstrap(
        lambda x, y: scale * (x.mean() - y.mean()), a, b, unit=unit, method=f"paired bootstrap over {_n(a)} {what}"
    )


def mean(values: Any, *, unit: str, scale: float = 1.0, what: str = "seeds") -> Effect:
    """Mean of per-seed (or per-draw, per-image) values with its bootstrap interval."""
    return bootstrap(lambda x: scale * x.mean(), values, unit=unit, method=f"bootstrap over {_n(values)} {what}")


def difference(a: Any, b: Any, *, unit: str, scale: float = 1.0, what: str = "seeds") -> Effect:
    """``mean(a) - mean(b)`` for independent runs (e.g. seeds of two trainings), each resampled on its own."""
    return bootstrap(
        lambda x, y: scale * (x.mean() - y.mean()),
        a,
        b,
        unit=unit,
        paired=False,
        method=f"bootstrap over {_n(a)} and {_n(b)} {what}",
    )


def ratio(a: Any, b: Any, *, what: str = "test images") -> Effect:
    """``mean(a) / mean(b)`` of paired per-sample values (e.g. errors of two models on the same images)."""

    def stat(x: np.ndarray, y: np.ndarray) -> float:
        d = y.mean()
        return float(x.mean() / d) if d > 0 else float("inf")

    return bootstrap(stat, a, b, unit="x", method=f"paired bootstrap over {_n(a)} {what}")


def _n(x: Any) -> int:
    return int(_array(x).shape[-1])


def verdict(effect: Effect, direction: str, margin: float, null: float = 0.0) -> str:
    """Three-way verdict of an interval against the document's direction, a margin and ``null`` (no effect)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    lo, hi = effect.low, effect.high
    if direction == "greater":
        return "reproduced" if lo > null + margin else "contradicted" if hi < null else "inconclusive"
    if direction == "less":
        return "reproduced" if hi < null - margin else "contradicted" if lo > null else "inconclusive"
    if null - margin < lo and hi < null + margin:
        return "reproduced"
    return "contradicted" if lo > null + margin or hi < null - margin else "inconclusive"


# ---------------------------------------------------------------------------------------------------- the files

_REQUIRED = ("key", "kind", "statement", "source", "document", "expected")
_CLAIM_REQUIRED = ("effect", "unit", "direction", "margin")


def claims_dir(root: str | Path | None = None) -> Path:
    from helpers.core.io import project_root

    return project_root(root) / "notebooks" / "claims"


def _check_spec(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    missing = [f for f in _REQUIRED if f not in spec]
    if spec.get("kind") == "claim":
        missing += [f for f in _CLAIM_REQUIRED if f not in spec]
    if missing:
        raise ValueError(f"{where}: claim {spec.get('key')!r} lacks the field(s) {missing}")
    if spec["kind"] not in KINDS:
        raise ValueError(f"{where}: kind of {spec['key']!r} must be one of {KINDS}, got {spec['kind']!r}")
    if None in spec:
        raise ValueError(f"{where}: {spec.get('key')!r} has a key YAML reads as null; the field is no_effect")
    out = {"no_effect": 0.0, "document_value": None, "history": [], **spec}
    if out["kind"] == "claim":
        if out["direction"] not in DIRECTIONS:
            raise ValueError(f"{where}: direction of {spec['key']!r} must be one of {DIRECTIONS}")
        if float(out["margin"]) < 0:
            raise ValueError(f"{where}: margin of {spec['key']!r} must be >= 0")
    allowed = VERDICTS if out["kind"] == "claim" else ("passes", "fails")
    for profile, exp in (out["expected"] or {}).items():
        if not isinstance(exp, Mapping) or exp.get("verdict") not in allowed:
            raise ValueError(f"{where}: expected[{profile!r}] of {spec['key']!r} needs a verdict in {allowed}")
        if exp["verdict"] not in ("reproduced", "passes") and not exp.get("reason"):
            raise ValueError(f"{where}: expected[{profile!r}] of {spec['key']!r} is {exp['verdict']}: give a reason")
    return out


def load(chapter: str, root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The chapter's claims file as ``{key: spec}`` (validated), in file order; ``{}`` if it has none."""
    import yaml

    path = claims_dir(root) / f"{chapter}.yaml"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    specs = [_check_spec(s, str(path)) for s in data.get("claims", [])]
    keys = [s["key"] for s in specs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: duplicate claim keys")
    return {s["key"]: s for s in specs}


def record(spec: Mapping[str, Any], effect: Effect, *, profile: str, ours: str, **fmt: Any) -> dict[str, Any]:
    """The results-JSON entry of one claim: the spec's text, our effect and interval, the verdict, the expected."""
    v = verdict(effect, spec["direction"], float(spec["margin"]), float(spec["no_effect"]))
    doc = spec.get("document_value")
    expected = (spec.get("expected") or {}).get(profile) or {}
    return {
        "key": spec["key"],
        "kind": "claim",
        "claim": spec["statement"].format(**fmt) if fmt else spec["statement"],
        "paper": f"{spec['source']}: {spec['document']}",
        "ours": ours,
        "effect_description": spec["effect"],
        "effect": effect.estimate,
        "interval": [effect.low, effect.high],
        "unit": effect.unit,
        "method": effect.method,
        "direction": spec["direction"],
        "no_effect": float(spec["no_effect"]),
        "margin": float(spec["margin"]),
        "document_value": doc,
        "document_inside": None if doc is None else bool(effect.low <= float(doc) <= effect.high),
        "verdict": v,
        "expected": expected.get("verdict"),
        "reason": expected.get("reason"),
        "holds": v == "reproduced",
    }


def check_record(spec: Mapping[str, Any], passed: bool, *, profile: str, ours: str) -> dict[str, Any]:
    """The results-JSON entry of one book-added check (not counted as a reproduction)."""
    expected = (spec.get("expected") or {}).get(profile) or {}
    return {
        "key": spec["key"],
        "kind": "check",
        "claim": spec["statement"],
        "paper": f"{spec['source']}: {spec['document']}",
        "ours": ours,
        "verdict": "passes" if passed else "fails",
        "expected": expected.get("verdict"),
        "reason": expected.get("reason"),
        "holds": bool(passed),
    }


def summary_text(entry: Mapping[str, Any]) -> str:
    """``reproduced: +5.1 points (95% CI +1.2 to +9.0)`` for the prose."""
    if entry["kind"] == "check":
        return entry["verdict"]
    lo, hi = entry["interval"]
    eff = Effect(entry["effect"], lo, hi, entry["unit"], entry["method"], 0)
    # enough digits that a bound near zero does not print as zero (a +0.05 lower bound is not "+0.0")
    small = [abs(v) for v in (lo, hi, entry["effect"]) if v != 0]
    digits = 2 if entry["unit"] in ("x", "") or max(abs(lo), abs(hi)) < 1 else 1
    if small and min(small) < 0.1:
        digits = min(max(digits, math.ceil(-math.log10(min(small))) + (1 if entry["unit"] == "x" else 0)), 5)
    return f"{entry['verdict']}: {eff.text(digits)}"


# ------------------------------------------------------------------------- comparing and recording larger profiles


def _revision(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def compare(results: list[Mapping[str, Any]], root: str | Path | None = None) -> list[str]:
    """Differences between measured verdicts (chapters' results JSON) and the verdicts their files expect."""
    lines = []
    for res in results:
        specs = load(res["chapter"], root)
        measured = {c["key"]: c for c in res.get("claims", [])}
        for key, spec in specs.items():
            if key not in measured:
                lines.append(f"{res['chapter']} {key}: in the claims file but not recorded by the {res['profile']} run")
                continue
            c = measured[key]
            exp = (spec["expected"] or {}).get(res["profile"], {}).get("verdict")
            if exp != c["verdict"]:
                lines.append(f"{res['chapter']} {key} at {res['profile']}: expected {exp}, measured {summary_text(c)}")
        lines += [f"{res['chapter']} {k}: recorded but not in the claims file" for k in measured if k not in specs]
    return lines


def record_profile(results: list[Mapping[str, Any]], root: str | Path | None = None) -> list[str]:
    """Write the measured verdicts of runs at one profile into the claims files (revision, date, interval).

    A verdict that changes keeps the old one in the claim's ``history``. Returns the flips.
    """
    import yaml

    from helpers.core.io import write_text

    base = claims_dir(root)
    rev, today = _revision(base.parent.parent), _dt.date.today().isoformat()
    flips = []
    for res in results:
        path = base / f"{res['chapter']}.yaml"
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))  # the file's comments
        data = yaml.safe_load(text)
        measured = {c["key"]: c for c in res.get("claims", [])}
        for spec in data["claims"]:
            c = measured.get(spec["key"])
            if c is None:
                continue
            profile = res["profile"]
            old = dict((spec.get("expected") or {}).get(profile) or {})
            new = {"verdict": c["verdict"], "measured": {"revision": rev, "date": today}}
            if c["kind"] == "claim":
                new["measured"].update(effect=round(c["effect"], 4), interval=[round(x, 4) for x in c["interval"]])
            if c["verdict"] not in ("reproduced", "passes"):
                new["reason"] = old.get("reason") or "TODO: explain why it does not reproduce at this profile"
            if old.get("verdict") and old["verdict"] != c["verdict"]:
                spec.setdefault("history", []).append({"profile": profile, "old": old, "new": new})
                flips.append(f"{res['chapter']} {spec['key']} at {profile}: {old['verdict']} -> {c['verdict']}")
            spec.setdefault("expected", {})[profile] = new
        write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))
    return flips


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.claims compare|record [--results DIR]``: measured verdicts against the claims files."""
    import argparse

    from helpers.results import load_results

    p = argparse.ArgumentParser(prog="python -m helpers.claims", description=main.__doc__)
    p.add_argument("action", choices=("compare", "record"))
    p.add_argument("--results", default=None, help="folder of results/*.json (default: results/)")
    args = p.parse_args(argv)
    results = load_results(args.results)
    if not results:
        raise SystemExit("no results/*.json: run the chapters first (python -m helpers.pipeline run --all ...)")
    if args.action == "record":
        for line in record_profile(results):
            print("flipped:", line)
    diffs = compare(results)
    for line in diffs:
        print(line)
    print(f"{len(diffs)} difference(s) from the claims files")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
