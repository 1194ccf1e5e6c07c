"""The grid of a sweep: parse and check it, then list its points, before Ray or any notebook is touched.

A sweep is chapters x profiles x seeds x the values of each swept parameter. Every name and value is checked here
against what exists (the chapter sources, the profiles, the parameters cell of each chapter and the types of its
defaults), so that a typo fails at once with a ``ValueError`` naming it and the valid choices, instead of as
many failed notebook runs. Ranges stay the notebook's business: its validation cell owns them.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from helpers.core.params import PROFILES
from helpers.pipeline import parameters_for

SEED_PARAMETER = "seed"


def chapters_available(root: Path) -> list[str]:
    """Chapter sources ``notebooks/NN_name.py`` (the pages that gather results cannot be swept)."""
    return sorted(p.stem for p in (root / "notebooks").glob("*.py") if p.stem[:2].isdigit())


def notebook_parameters(source: Path) -> dict[str, Any]:
    """The defaults of the cell tagged ``parameters`` of a jupytext py:percent notebook, by name.

    Read with ``ast`` (no execution): the cell holds flat constants by the project's rules.
    """
    lines = source.read_text(encoding="utf-8").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("# %%") and '"parameters"' in ln), None)
    if start is None:
        raise ValueError(f"{source.name} has no cell tagged parameters")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    out: dict[str, Any] = {}
    for node in ast.parse("\n".join(lines[start + 1 : end])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                out[node.targets[0].id] = None  # not a literal: any value is accepted
    return out


def parse_seeds(text: str) -> list[int]:
    """``"0-4"``, ``"0,2,5"`` or ``"0-1,7"`` as a sorted list of distinct non-negative seeds."""
    seeds: set[int] = set()
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError(f"--seeds must list seeds like 0-4 or 0,2,5 (got {text!r})")
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"--seeds must be non-negative integers or ranges like 0-4 (got {part!r} in {text!r})")
        lo, hi = int(m[1]), int(m[2]) if m[2] is not None else int(m[1])
        if hi < lo:
            raise ValueError(f"--seeds range {part!r} is empty: its end must be >= its start {lo}")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def parse_values(name: str, raw: list[str]) -> list[Any]:
    """The values of ``-p NAME V1,V2 ...``: each argument is a comma-separated YAML flow list.

    ``0.01,0.03`` gives two floats; ``[0,0.1],[0,0.2]`` two lists; ``fgsm pgd`` two strings.
    """
    values: list[Any] = []
    for text in raw:
        if re.search(r"^\s*,|,\s*(,|$)", text):
            raise ValueError(f"-p {name}: empty value in {text!r}; give values like 0.01,0.03")
        try:
            parsed = yaml.safe_load(f"[{text}]")
        except yaml.YAMLError as err:
            raise ValueError(f"-p {name}: cannot read the values {text!r} ({err.problem})") from None
        if not parsed or any(v is None for v in parsed):
            raise ValueError(f"-p {name}: empty value in {text!r}; give values like 0.01,0.03")
        values.extend(parsed)
    if not values:
        raise ValueError(f"-p {name} has no values; give at least one, like -p {name} 0.01,0.03")
    return values


def _check_type(chapter: str, name: str, value: Any, default: Any) -> None:
    """``value`` has the kind of the notebook's default (a number where a number is expected, ...)."""
    if default is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, kind = number, "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, (list, tuple)):
        ok, kind = isinstance(value, list), "a list"
    else:
        return
    if not ok:
        raise ValueError(f"{name} of {chapter} must be {kind}, like its default {default!r} (got {value!r})")


def _slug(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "_"


@dataclass(frozen=True)
class Point:
    """One run of the grid: a chapter at a profile with a seed and the swept parameters' values."""

    chapter: str
    profile: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """A readable, file-safe name, unique within a sweep: ``00_primer/small/seed1_eps-0.03``."""
        tail = "".join(f"_{k}-{_slug(v)}" for k, v in self.params.items())
        return f"{self.chapter}/{self.profile}/seed{self.seed}{tail}"

    def overrides(self) -> list[tuple[str, str]]:
        """The pipeline's ``-p`` pairs: the swept values, then the seed (JSON is YAML, so types survive)."""
        return [(k, json.dumps(v)) for k, v in self.params.items()] + [(SEED_PARAMETER, str(self.seed))]

    def config(self, root: Path) -> dict[str, Any]:
        """What decides the run's outcome: chapter, profile, seed and every parameter the notebook receives.

        The profile's file is read, so editing ``params/<profile>/<chapter>.yaml`` makes the point run again.
        """
        return {
            "chapter": self.chapter,
            "profile": self.profile,
            "seed": self.seed,
            "swept": dict(self.params),
            "parameters": parameters_for(root, self.chapter, self.profile, self.overrides()),
        }


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of a point's configuration (keys sorted), for skipping points already done."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(
    root: Path, chapters: list[str], profiles: list[str], seeds: list[int], grid: dict[str, list[Any]]
) -> list[Point]:
    """Check the grid against the project and return its points (chapter, profile, values, then seed)."""
    if not chapters:
        raise ValueError(f"chapters: name at least one of {', '.join(chapters_available(root))}")
    if not profiles:
        raise ValueError(f"profile: name at least one of {', '.join(PROFILES)}")
    if not seeds:
        raise ValueError("--seeds must list at least one seed, like 0-4")
    available = chapters_available(root)
    for chapter in chapters:
        if chapter not in available:
            raise ValueError(f"chapter must be one of {', '.join(available)} (got {chapter!r})")
    for profile in profiles:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)} (got {profile!r})")
    if SEED_PARAMETER in grid:
        raise ValueError("-p seed: sweep seeds with --seeds (e.g. --seeds 0-4), not with -p")
    for chapter in chapters:
        defaults = notebook_parameters(root / "notebooks" / f"{chapter}.py")
        for name in (SEED_PARAMETER, *grid):
            if name not in defaults:
                valid = ", ".join(k for k in defaults if k != "profile")
                raise ValueError(f"parameter {name!r} is not in the parameters cell of {chapter}; valid: {valid}")
        for name, values in grid.items():
            if not values:
                raise ValueError(f"-p {name} has no values; give at least one, like -p {name} 0.01,0.03")
            for value in values:
                _check_type(chapter, name, value, defaults[name])
    names = list(grid)
    # Seeds vary fastest: the points that start together then train different models, and the later points of
    # a seed find its checkpoints in HELPERS_CACHE instead of training the same model side by side.
    points = [
        Point(chapter, profile, seed, dict(zip(names, combo, strict=True)))
        for chapter, profile in itertools.product(chapters, profiles)
        for combo in itertools.product(*(grid[n] for n in names))
        for seed in seeds
    ]
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError("the grid repeats a point: each -p value must be given once")
    return points
