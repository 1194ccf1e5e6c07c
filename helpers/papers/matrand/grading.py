"""Grading the chapter's networks: the document's attacks as it ran them, and the strong suite.

:class:`Grader` scores every model of the chapter once: under the document's attacks as it ran them (its
tables; BIPARO 2021 does not give its PGD iteration counts) and with the strong suite (:mod:`helpers.core.suite`,
what the robustness is) on a stratified part of the test images, with the gap between the two on the same
images. Randomized models (noise at prediction, NoiseNet20) get EOT attacks (Athalye et al. 2018) and every
accuracy, clean included, as the mean over ``draws >= 10`` noise draws. :meth:`Grader.side_by_side` puts a
table next to the document's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn

from helpers.core.data import Loader, TensorData, stratified_indices
from helpers.core.evaluate import MIN_DRAWS, Scores, scores
from helpers.core.models.noise import is_randomized
from helpers.core.params import check_choice, check_int
from helpers.core.suite import Grade, Suite, grade, sanity_checks
from helpers.papers.matrand.threat import ATTACK_NAMES, NORMS, Threat, attacks_for


class Grader:
    """Every accuracy the chapter reports, each computed once per model (kept while the model lives).

    ``threat``: the evaluation attacks as the document ran them (:func:`attacks_for`), run on all of
    ``test_data``; the suite (``budget``, at ``threat``'s l-inf and l2 radii) runs on ``n_suite`` of those
    images, a seeded stratified subset (``suite_data``). A model with an enabled noise source
    (:func:`~helpers.core.models.noise.is_randomized`) is scored as the mean over ``draws`` noise draws, and the suite
    attacks it with ``eot_samples`` gradient draws per step (Athalye et al. 2018). Every score is seeded with
    ``seed`` in a forked RNG: the same attack starts and noise draws for every model, in any order, and the
    caller's random stream is untouched.
    """

    def __init__(self, threat: Threat, test_data: TensorData, n_suite: int, *, budget: str, eot_samples: int,
                 batch_size: int = 500, device: torch.device | str = "cpu", draws: int = MIN_DRAWS,
                 seed: int = 0) -> None:  # fmt: skip
        self.threat, self.budget, self.seed = threat, budget, seed
        self.eot_samples = check_int("eot_samples", eot_samples, low=2)
        self.draws = check_int("draws", draws, low=MIN_DRAWS)
        n_suite = check_int("n_suite", n_suite, low=1, high=len(test_data))
        self.suite_positions = stratified_indices(test_data.y, n_suite, seed)  # positions in test_data
        self.suite_data = test_data.subset(self.suite_positions)
        self.n_test = len(test_data)
        self.loader = Loader(test_data, batch_size, device=device)
        self.suite_loader = Loader(self.suite_data, batch_size, device=device)
        self.device = torch.device(device)
        self._memo: dict[tuple, tuple[nn.Module, Any]] = {}
        for norm in NORMS:  # validate the budget now, not at the first grade
            self.suite(norm, randomized=False)

    def suite(self, norm: str, *, randomized: bool) -> Suite:
        eps = self.threat.eps_linf if norm == "linf" else self.threat.eps_l2
        return Suite.make(eps, budget=self.budget, norm=norm, randomized=randomized, eot_samples=self.eot_samples,
                          draws=self.draws, seed=self.seed)  # fmt: skip

    def labels(self, *, randomized: bool = False) -> dict[str, str]:
        """Row labels naming each attack: the document's with its steps and step size, the suite's in full."""
        t = self.threat
        det = {n: self.suite(n, randomized=False).name for n in NORMS}
        rnd = f"; randomized networks: EOT-{self.eot_samples}" if randomized else ""
        every = f" (randomized networks: every row a mean over {self.draws} noise draws ± spread)"
        return {
            "natural": "natural" + (every if randomized else ""),
            "pgd_linf": f"l-inf PGD-{t.steps}, step {t.alpha_linf:.3g}",
            "pgd_l2": f"l2 PGD-{t.steps}, step {t.alpha_l2:.3g}",
            "fgsm": f"l-inf FGSM, step {t.eps_linf:g}",
            "suite_linf": f"suite: {det['linf']}{rnd}",
            "suite_l2": f"suite: {det['l2']}{rnd}",
            "gap_linf": f"gap: l-inf PGD-{t.steps} − suite (same {len(self.suite_data)} images)",
            "gap_l2": f"gap: l2 PGD-{t.steps} − suite (same {len(self.suite_data)} images)",
        }

    def _cached(self, key: tuple, model: nn.Module, compute: Callable[[], Any]) -> Any:
        key = (id(model), *key)
        if key not in self._memo:  # the model is kept in the memo, so its id cannot be reused meanwhile
            devices = [self.device.index or 0] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                self._memo[key] = (model, compute())
        return self._memo[key][1]

    def document(self, model: nn.Module, attack: str, *, eot: bool = False) -> Scores:
        """Per-image scores on ``test_data`` under one of the document's attacks (:data:`ATTACK_NAMES`), EOT on
        request (only randomized models differ); ``draws`` passes for a randomized model, else one."""
        check_choice("attack", attack, ATTACK_NAMES)
        rnd = is_randomized(model)
        eot_n = self.eot_samples if eot and rnd else 1

        def compute() -> Scores:
            gen = torch.Generator().manual_seed(self.seed)
            atk = attacks_for(self.threat, eot_samples=eot_n, generator=gen)[attack]
            return scores(model, self.loader, atk, draws=self.draws if rnd else 1, name=attack,
                          desc=f"{attack} eot={eot_n}")  # fmt: skip

        return self._cached(("document", attack, eot_n), model, compute)

    def grade(self, model: nn.Module, norm: str = "linf") -> Grade:
        """The suite's grade of ``model`` at the ``norm`` radius on ``suite_data`` (EOT for randomized models)."""
        check_choice("norm", norm, NORMS)
        s = self.suite(norm, randomized=is_randomized(model))
        return self._cached(("suite", norm), model, lambda: grade(model, self.suite_loader, s, desc=f"suite {norm}"))

    def gap(self, model: nn.Module, norm: str = "linf", *, eot: bool = False) -> float:
        """The document's PGD accuracy minus the suite's, on the suite's images (paired): how much the weaker
        attack overstates the robustness."""
        doc = self.document(model, f"pgd_{norm}", eot=eot).correct[self.suite_positions]
        return float(doc.mean()) - self.grade(model, norm).robust_accuracy

    def table(
        self,
        nets: Mapping[str, nn.Module],
        *,
        eot: Mapping[str, bool] | None = None,
        attacks: tuple[str, ...] = ATTACK_NAMES,
        norms: tuple[str, ...] = NORMS,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(accuracy, spread)``: one column per model, one row per attack (labels from :meth:`labels`): the
        document's attacks, then the suite at each of ``norms`` and its gap to the document's PGD. ``eot[name]``
        asks for the document's attacks with EOT. Accuracies are fractions; the spread is the standard
        deviation between noise draws (0 for a deterministic model; not defined for a gap)."""
        eot = eot or {}
        labels = self.labels(randomized=any(is_randomized(m) for m in nets.values()))
        acc: dict[str, dict[str, float]] = {}
        spread: dict[str, dict[str, float]] = {}
        for name, m in nets.items():
            acc[name], spread[name] = {}, {}
            for a in attacks:
                s = self.document(m, a, eot=eot.get(name, False))
                acc[name][labels[a]], spread[name][labels[a]] = s.acc, s.spread
            for n in norms:
                g = self.grade(m, n)
                acc[name][labels[f"suite_{n}"]], spread[name][labels[f"suite_{n}"]] = g.robust.acc, g.robust.spread
                if f"pgd_{n}" in attacks:
                    acc[name][labels[f"gap_{n}"]] = self.gap(m, n, eot=eot.get(name, False))
                    spread[name][labels[f"gap_{n}"]] = float("nan")
        return pd.DataFrame(acc), pd.DataFrame(spread)

    def side_by_side(self, acc: pd.DataFrame, spread: pd.DataFrame, doc: Mapping[str, list[float]]) -> pd.DataFrame:
        """Our table (from :meth:`table`: accuracies in %, ± the spread between noise draws) next to the
        document's, ``doc = {column: [natural, l-inf PGD, l2 PGD, l-inf FGSM]}`` in % (the document has numbers
        for the natural images and its own three attacks only; NaN where it has none)."""
        labels = self.labels(randomized=True)
        if labels["natural"] not in acc.index:  # a table of deterministic networks only
            labels = self.labels()
        doc = {c: doc.get(c, [float("nan")] * len(ATTACK_NAMES)) for c in acc.columns}  # ours in our order
        theirs = pd.DataFrame(doc, index=[labels[a] for a in ATTACK_NAMES]).reindex(acc.index)
        return pd.concat({"ours": with_spread(acc, spread), "document": theirs.astype(object).fillna("")}, axis=1)

    def sanity(self, model: nn.Module, norm: str = "linf", *, steps: tuple[int, ...], square_queries: int) -> dict:
        """Carlini et al. (2019)'s checks on the suite's grade (:func:`helpers.core.suite.sanity_checks`)."""
        g = self.grade(model, norm)
        return self._cached(("sanity", norm, steps, square_queries), model,
                            lambda: sanity_checks(model, self.suite_loader, g, steps=steps,
                                                  square_queries=square_queries))  # fmt: skip

    def record(self, run: Any, nets: Mapping[str, nn.Module], *, steps: tuple[int, ...], square_queries: int,
               dataset: str = "cifar10") -> tuple[pd.DataFrame, dict[str, dict]]:  # fmt: skip
        """Record each model in ``run`` (:meth:`helpers.results.Run.model`: checkpoint, test images, the l-inf
        suite's grade and its sanity checks, the l2 grade where the chapter computed one, the document's PGD on
        the same images). Returns ``(summary, checks)``: one row per model (the document's l-inf PGD, the suite,
        the gap; means over the noise draws for randomized models) and ``{name: sanity checks}``."""
        rows, checks = [], {}
        for name, m in nets.items():
            g = self.grade(m, "linf")
            checks[name] = self.sanity(m, "linf", steps=tuple(steps), square_queries=square_queries)
            doc = self.document(m, "pgd_linf")
            doc_acc = float(doc.correct[self.suite_positions].mean())
            extra: dict[str, Any] = {"document_attack": self.labels()["pgd_linf"], "document_accuracy": doc_acc}
            if (id(m), "suite", "l2") in self._memo:
                g2 = self.grade(m, "l2")
                extra["l2"] = {**g2.summary(), "robust_correct": [round(float(c), 4) for c in g2.robust.correct]}
            run.model(name, m, g, dataset=dataset, test_data=self.suite_data, sanity=checks[name], **extra)
            rows.append({
                "model": name, "randomized": g.suite.randomized, "clean": g.clean.acc,
                f"document's {self.labels()['pgd_linf']}": doc_acc, "suite (l-inf)": g.robust_accuracy,
                "gap (pts)": 100 * (doc_acc - g.robust_accuracy),
                "checks passed": sum(bool(c["passed"]) for c in checks[name].values()),
            })  # fmt: skip
        return pd.DataFrame(rows).set_index("model"), checks


def with_spread(acc: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    """Accuracies in % as text, ``"45.2 ± 1.3"`` where the noise draws disagree (a randomized model)."""
    cell = lambda a, s: "" if pd.isna(a) else (f"{100 * a:.1f} ± {100 * s:.1f}" if s > 0 else f"{100 * a:.1f}")  # noqa: E731
    return pd.DataFrame({c: [cell(a, s) for a, s in zip(acc[c], spread[c], strict=True)] for c in acc.columns},
                        index=acc.index)  # fmt: skip
