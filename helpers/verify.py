"""Re-attack every model the book reports, independently of the chapter that graded it.

    python -m helpers.verify                      # every results/*.json, all listed images, AutoAttack budget
    python -m helpers.verify --max-images 100 --steps 50 --targets 3

For each entry of a results JSON's ``models`` list (see :meth:`helpers.results.Run.model`) this loads the saved
checkpoint with :func:`helpers.core.models.load` (no chapter code), takes the listed test images from
:mod:`helpers.core.data`, and runs APGD-CE and APGD-T (torchattacks, Croce & Hein 2020) at the listed radius with a
seed of its own; randomized models are attacked with EOT and scored over noise draws. It compares the per-image
minimum with the book's recorded per-image robustness on the same images. The book passes when the independent
accuracy is at most ``--tolerance`` (default 1.5 points) below the book's number: a larger gap means the book
overstated a model's robustness. Exit status 1 when any model fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from helpers.core import data, models
from helpers.core.evaluate import scores
from helpers.core.io import results_dir
from helpers.core.params import check_int, check_nonnegative
from helpers.core.suite import Suite, apgd


def verify_entry(
    entry: dict[str, Any], *, max_images: int | None = None, steps: int = 100, targets: int = 9, seed: int = 1
) -> dict[str, Any]:
    """Independent APGD-CE + APGD-T on one recorded model; returns the book's and our accuracy on the images."""
    model = models.load(data.cache_dir() / entry["checkpoint"])
    indices = entry["test_indices"][: max_images or None]
    test = data.load(entry["dataset"], "test").subset(torch.tensor(indices, dtype=torch.long))
    loader = data.Loader(test, 100)
    recorded = Suite(**entry["suite"])
    suite = replace(recorded, apgd_steps=steps, targets=targets, seed=seed)
    ce = scores(model, loader, lambda m, x, y: apgd(m, x, y, suite), draws=suite.draws, desc="verify: APGD-CE")
    tgt = scores(model, loader, lambda m, x, y: apgd(m, x, y, suite, targeted=True), draws=suite.draws,
                 desc="verify: APGD-T")  # fmt: skip
    ours = ce.minimum(tgt, attack="APGD-CE + APGD-T").acc
    book = float(torch.tensor(entry["robust_correct"][: len(indices)]).mean())
    return {"name": entry["name"], "images": len(indices), "book": book, "independent": ours, "gap": book - ours}


def verify(directory: str | Path | None = None, *, tolerance: float = 0.015, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`verify_entry` for every model of every results JSON in ``directory``; adds ``passed``."""
    check_nonnegative("tolerance", tolerance)
    rows = []
    for path in sorted(Path(directory or results_dir()).glob("*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8")).get("models", []):
            row = {"chapter": path.stem, **verify_entry(entry, **kwargs)}
            row["passed"] = row["gap"] <= tolerance
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.verify", description=__doc__.split("\n")[0])
    parser.add_argument("directory", nargs="?", default=None, help="folder of results/*.json (default: results/)")
    parser.add_argument("--max-images", type=int, default=None, help="first N listed images of each model")
    parser.add_argument("--steps", type=int, default=100, help="APGD iterations (AutoAttack: 100)")
    parser.add_argument("--targets", type=int, default=9, help="APGD-T target classes (AutoAttack: 9)")
    parser.add_argument("--tolerance", type=float, default=0.015, help="allowed overstatement, a fraction")
    args = parser.parse_args(argv)
    if args.max_images is not None:
        check_int("max_images", args.max_images, low=1)
    check_int("steps", args.steps, low=1)
    check_int("targets", args.targets, low=1)
    rows = verify(args.directory, tolerance=args.tolerance, max_images=args.max_images, steps=args.steps,
                  targets=args.targets)  # fmt: skip
    for r in rows:
        mark = "ok  " if r["passed"] else "FAIL"
        print(f"{mark} {r['chapter']:<20} {r['name']:<40} {r['images']:>5} images  book {r['book']:.1%}  "
              f"independent {r['independent']:.1%}  gap {100 * r['gap']:+.1f} pts")  # fmt: skip
    if not rows:
        print("no models listed in any results JSON: run a chapter first")
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
