"""A chapter's run record: banner, glued numbers, claims, models, and ``results/NN_name.json``; timings.

A *claim* is one of the document's findings, written in ``notebooks/claims/<chapter>.yaml`` (see
:mod:`helpers.claims`): the chapter measures its effect with an interval and :meth:`Run.claim` computes the
verdict. A *check* is one the book adds (:meth:`Run.check`), shown apart and never counted as a reproduction.
The JSON holds the profile, device, seeds, wall time, package versions, parameters, the claims and checks,
the models and the glued numbers; tests assert the verdicts of the small run, and the scorecard page
(:mod:`helpers.scorecard`) gathers every chapter's.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpers.core.device import run_metadata
from helpers.core.io import results_dir, write_json


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _plain(value: Any) -> Any:
    """Numbers and containers as JSON-able Python objects (tensors and numpy scalars included)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Run:
    """The record of one chapter run. Create it right after validating the parameters::

    run = Run("00_primer", "Primer", profile=profile, seed=seed, device=dev, params=params)
    run.banner()                    # glues profile/device/seed for the opening line
    run.glue("clean_acc", 0.98, "{:.1%}")
    run.claim("pgd_le_fgsm", claims.paired(pgd_hits, fgsm_hits), ours="...")   # text from the claims file
    run.check("loss_finite", bool(finite), ours="...")                        # a check the book adds
    run.verdicts()                  # the chapter's forest plot
    run.finish()                    # glues the wall time, writes results/00_primer.json, shows claims
    """

    def __init__(
        self,
        chapter: str,
        title: str,
        *,
        profile: str,
        seed: int | list[int],
        device: Any,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.chapter, self.title, self.profile = chapter, title, profile
        self.seeds = list(seed) if isinstance(seed, (list, tuple)) else [int(seed)]
        self.device = str(device)
        self.params = _plain(dict(params or {}))
        self.claims: list[dict[str, Any]] = []
        self._specs: dict[str, dict[str, Any]] | None = None
        self.models: list[dict[str, Any]] = []
        self.numbers: dict[str, Any] = {}
        self.started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._t0 = time.perf_counter()
        self.metadata = run_metadata(device)

    def glue(self, name: str, value: Any, fmt: str | None = None) -> None:
        """Record a number for the JSON and glue it for the prose (``{glue:text}`name```).

        ``fmt`` (e.g. ``"{:.1%}"``) glues the formatted string instead, so the prose needs no format spec.
        Outside a notebook kernel only the record is kept.
        """
        self.numbers[name] = _plain(value)
        if _in_notebook():
            from myst_nb import glue

            glue(name, fmt.format(value) if fmt else value, display=False)

    def banner(self) -> str:
        """Glue ``run_profile``, ``run_device``, ``run_seed`` (the wall time is glued by :meth:`finish`)."""
        self.glue("run_profile", self.profile)
        name = self.metadata.get("device_name")
        self.glue("run_device", f"{self.device} ({name})" if name and name != self.device else self.device)
        self.glue("run_seed", ", ".join(map(str, self.seeds)))
        return f"profile {self.profile} · device {self.device} · seed {self.seeds}"

    def claim(self, key: str, effect: Any, *, ours: str, **fmt: Any) -> str:
        """Record one of the document's claims: our ``effect`` (a :class:`helpers.claims.Effect`) against it.

        The statement, the document's words and numbers, the direction and the margin come from
        ``notebooks/claims/<chapter>.yaml``; the verdict (reproduced, inconclusive, contradicted) is computed
        from the effect's 95% interval. ``ours`` gives the numbers behind the effect in words; ``fmt`` fills
        placeholders of the statement (e.g. ``{eps}``). Glues ``claim_<key>`` ("reproduced: +5.1 points (95%
        CI ...)") and ``verdict_<key>`` for the prose, and returns the verdict.
        """
        from helpers import claims

        entry = claims.record(self._spec(key, "claim"), effect, profile=self.profile, ours=ours, **fmt)
        self.claims.append(entry)
        self.glue(f"claim_{key}", claims.summary_text(entry))
        self.glue(f"verdict_{key}", entry["verdict"])
        return entry["verdict"]

    def check(self, key: str, passed: bool, *, ours: str) -> bool:
        """Record a check the book adds (a sanity check, not a reproduction); its text is in the claims file."""
        from helpers import claims

        entry = claims.check_record(self._spec(key, "check"), bool(passed), profile=self.profile, ours=ours)
        self.claims.append(entry)
        self.glue(f"verdict_{key}", entry["verdict"])
        return bool(passed)

    def _spec(self, key: str, kind: str) -> dict[str, Any]:
        specs = self._all_specs()
        if key not in specs or specs[key]["kind"] != kind:
            raise ValueError(
                f"{kind} {key!r} is not in notebooks/claims/{self.chapter}.yaml (as kind: {kind}); add it there "
                f"with the document's statement before recording it"
            )
        if any(c["key"] == key for c in self.claims):
            raise ValueError(f"claim key {key!r} is already recorded in {self.chapter}")
        return specs[key]

    def _all_specs(self) -> dict[str, dict[str, Any]]:
        from helpers import claims

        if self._specs is None:
            self._specs = claims.load(self.chapter)
        return self._specs

    def verdicts(self) -> Any:
        """The chapter's closing figure: a forest plot of its claims (saved and shown); returns None."""
        from helpers.core import plots
        from helpers.scorecard import forest

        plots.show(forest(self.claims, f"{self.title}: our effects and their 95% intervals"), "verdicts", self.chapter)

    def model(
        self,
        name: str,
        model: Any,
        grade: Any,
        *,
        dataset: str,
        test_data: Any,
        sanity: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record a model whose robustness the chapter reports, so a reader can load and attack it again.

        Saves ``model`` (built by a registered builder) under ``<HELPERS_CACHE>/models/`` and appends to the
        JSON's ``models`` list: name, checkpoint (relative to the cache), dataset, test_indices (the test
        images ``grade`` was measured on, as indices into the dataset's test split), norm, eps, randomized,
        robust_accuracy (the suite's, a fraction), robust_correct (per test image: the fraction of noise draws
        on which the suite left it correct), clean_accuracy, attack (what produced it), the members'
        accuracies, the sanity checks (:func:`helpers.core.suite.sanity_checks`) and any ``extra`` fields.
        """
        from helpers.core.data import cache_dir
        from helpers.core.models import save
        from helpers.core.training import config_hash

        if any(m["name"] == name for m in self.models):
            raise ValueError(f"model name {name!r} is already recorded in {self.chapter}")
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        rel = Path("models") / self.chapter / f"{self.profile}-{slug}-{config_hash(self.params)}.pt"
        save(model, cache_dir() / rel)
        summary = grade.summary()
        entry = {
            "name": name,
            "checkpoint": rel.as_posix(),
            "dataset": dataset,
            "test_indices": test_data.indices,
            "norm": grade.suite.norm,
            "eps": grade.suite.eps,
            "randomized": grade.suite.randomized,
            "robust_accuracy": summary["robust_accuracy"],
            "robust_correct": [round(float(c), 4) for c in grade.robust.correct],
            "clean_accuracy": summary["clean_accuracy"],
            "attack": summary["attack"],
            "suite": summary["suite"],
            "members": summary["members"],
            "sanity_checks": _plain(dict(sanity)) if sanity is not None else None,
            **_plain(extra),
        }
        self.models.append(entry)
        return entry

    @property
    def wall_time_s(self) -> float:
        return time.perf_counter() - self._t0

    def to_dict(self) -> dict[str, Any]:
        return {
            "chapter": self.chapter,
            "title": self.title,
            "profile": self.profile,
            "device": self.device,
            "seeds": self.seeds,
            "started": self.started,
            "wall_time_s": round(self.wall_time_s, 2),
            "params": self.params,
            "metadata": self.metadata,
            "claims": self.claims,
            "missing_claims": [k for k in self._all_specs() if k not in {c["key"] for c in self.claims}],
            "models": self.models,
            "numbers": self.numbers,
        }

    def finish(self, directory: str | os.PathLike[str] | None = None) -> Any:
        """Glue the wall time, write ``results/<chapter>.json`` atomically, and return the claims table."""
        wall = self.wall_time_s
        self.glue("run_wall_time", f"{wall / 60:.1f} min" if wall >= 60 else f"{wall:.0f} s")
        self.numbers["run_wall_time_s"] = round(wall, 2)
        path = Path(directory) if directory else results_dir()
        write_json(path / f"{self.chapter}.json", self.to_dict())
        from helpers.scorecard import claims_table

        return claims_table(self.claims)


def load_results(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every ``results/*.json`` written by a chapter run, sorted by chapter."""
    path = Path(directory) if directory else results_dir()
    out = []
    for f in sorted(path.glob("*.json")):
        with open(f, encoding="utf-8") as fh:
            data = json.load(fh)
        if "claims" in data and "chapter" in data:
            out.append(data)
    return out
