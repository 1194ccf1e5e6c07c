"""The strong evaluation suite: how the book grades a model's robustness, and the reviewer's sanity checks.

Why a suite. A single attack with a small step budget overstates robustness: a PGD whose ``steps * alpha`` is
below the radius cannot even reach the ball's surface, and a fixed step size stalls where an adaptive one goes
on (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"). A robust accuracy that stands for a model's robustness is therefore the per-sample
minimum over three attacks at the same radius (an image counts only if every attack leaves it correct):

- the book's own PGD (:func:`helpers.core.attacks.pgd`) from a random start, with ``steps * alpha = 2.5 eps`` so it
  can reach and move along the ball's surface (Madry et al. 2018);
- APGD-CE: auto-PGD on the cross-entropy, step size adapted per sample (Croce & Hein 2020);
- APGD-T: targeted auto-PGD on the difference-of-logits-ratio loss against the ``targets`` most likely wrong
  classes, run on the images the first two leave standing (as AutoAttack does).

APGD comes from torchattacks (Kim 2020), a maintained library whose APGD/APGD-T follow the reference
implementation of AutoAttack step for step and which works on any ``nn.Module`` taking inputs in [0, 1], as
every model of this book does; the book's tests check it against our PGD (never weaker at equal budget). It
reseeds the global RNG, so every call here runs inside ``torch.random.fork_rng``: the caller's random stream
(noise draws, data order) is the same with or without the suite.

Randomized models (noise injection, PNI, RSE) are attacked with EOT (``eot_samples`` gradient draws per step,
Athalye et al. 2018) and every accuracy is the mean over ``draws >= 10`` fresh noise draws.

:func:`sanity_checks` runs the checks of Carlini et al. (2019), "On evaluating adversarial robustness": accuracy
falls to about 0 at a large radius; more PGD steps never raise accuracy; a black-box attack (Square, Andriushchenko
et al. 2020) breaks no image that the white-box suite leaves standing. A failing check is reported, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
import torch
from torch import nn

from helpers.core import attacks as A
from helpers.core.data import Loader
from helpers.core.evaluate import MIN_DRAWS, Scores, bind, scores
from helpers.core.params import check_choice, check_int, check_nonnegative
from helpers.core.progress import bar

BUDGETS = ("full", "reduced")


@dataclass(frozen=True)
class Suite:
    """The suite's settings: radius ``eps`` in pixel units, ``norm`` ("linf" or "l2"), the members' budgets.

    ``full`` is AutoAttack's budget (APGD 100 steps, APGD-T on all 9 wrong classes) with a 50-step PGD;
    ``reduced`` serves the small profiles (25 steps, the 3 most likely wrong classes); a test keeps it within
    1 point of the full suite on an adversarially trained model. ``eot_samples`` > 1 and ``draws`` >= 10 are
    for randomized models.
    """

    eps: float
    norm: str = "linf"
    pgd_steps: int = 50
    apgd_steps: int = 100
    targets: int = 9
    eot_samples: int = 1
    draws: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_nonnegative("eps", self.eps)
        check_choice("norm", self.norm, A.NORMS)
        check_int("pgd_steps", self.pgd_steps, low=1)
        check_int("apgd_steps", self.apgd_steps, low=1)
        check_int("targets", self.targets, low=1, high=99)
        check_int("eot_samples", self.eot_samples, low=1)
        check_int("draws", self.draws, low=1)
        if self.eot_samples > 1 and self.draws < MIN_DRAWS:
            raise ValueError(f"draws must be >= {MIN_DRAWS} for a randomized model (eot_samples > 1; got {self.draws})")

    @classmethod
    def make(cls, eps: float, *, budget: str = "full", norm: str = "linf", randomized: bool = False,
             eot_samples: int = 10, draws: int = MIN_DRAWS, seed: int = 0) -> Suite:  # fmt: skip
        """The ``budget`` ("full" or "reduced") suite at ``eps``; ``randomized`` adds EOT and noise draws."""
        check_choice("budget", budget, BUDGETS)
        steps = {"full": (50, 100, 9), "reduced": (20, 25, 3)}[budget]
        extra = {"eot_samples": eot_samples, "draws": draws} if randomized else {}
        return cls(eps, norm, *steps, seed=seed, **extra)

    @property
    def randomized(self) -> bool:
        return self.eot_samples > 1 or self.draws > 1

    @property
    def name(self) -> str:
        """What produced the robust accuracy, for tables: ``min(PGD-50, APGD-CE-100, APGD-T-100x9)``."""
        eot = f", EOT-{self.eot_samples}, {self.draws} draws" if self.randomized else ""
        norm = "l2" if self.norm == "l2" else "l∞"
        return (
            f"min(PGD-{self.pgd_steps}, APGD-CE-{self.apgd_steps}, APGD-T-{self.apgd_steps}x{self.targets}) "
            f"{norm} ε={self.eps:g}{eot}"
        )


@dataclass
class Grade:
    """The suite's result on one model: clean scores, each member's scores and their per-sample minimum."""

    suite: Suite
    clean: Scores
    members: dict[str, Scores]
    robust: Scores

    @property
    def robust_accuracy(self) -> float:
        return self.robust.acc

    def summary(self) -> dict[str, Any]:
        return {
            "attack": self.suite.name,
            "suite": asdict(self.suite),
            "clean_accuracy": self.clean.acc,
            "robust_accuracy": self.robust.acc,
            "robust_spread": self.robust.spread,
            "members": {k: v.acc for k, v in self.members.items()},
        }


def _fork(x: torch.Tensor) -> Any:
    """A context that restores the global RNG(s) afterwards (torchattacks reseeds them)."""
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, suite: Suite, *, targeted: bool = False) -> torch.Tensor:
    """APGD-CE (or APGD-T with DLR loss on ``suite.targets`` classes) from torchattacks, as a pure function.

    ``x``: (B, C, H, W) in [0, 1]; returns a detached tensor within ``suite.eps`` of ``x`` in [0, 1]. Runs
    with the caller's model mode (use :func:`helpers.core.attacks.eval_mode`) and leaves the global RNG unchanged.
    """
    import torchattacks

    if suite.eps == 0 or len(x) == 0:
        return x.detach().clone()
    norm = "Linf" if suite.norm == "linf" else "L2"
    common = {"norm": norm, "eps": suite.eps, "steps": suite.apgd_steps, "n_restarts": 1, "seed": suite.seed}
    with _fork(x):
        if targeted:
            with torch.no_grad():
                n_classes = model(x[:1]).shape[1]
            atk = torchattacks.APGDT(model, eot_iter=suite.eot_samples, n_classes=n_classes, **common)
            atk.n_target_classes = min(suite.targets, n_classes - 1)
        else:
            atk = torchattacks.APGD(model, loss="ce", eot_iter=suite.eot_samples, **common)
        return atk(x.detach(), y).detach()


def _pgd(suite: Suite, generator: torch.Generator) -> A.AttackFn:
    return A.make_attack(
        "pgd" if suite.norm == "linf" else "pgd_l2",
        suite.eps,
        alpha=2.5 * suite.eps / suite.pgd_steps,
        steps=suite.pgd_steps,
        random_start=True,
        eot_samples=suite.eot_samples,
        generator=generator,
    )


def grade(
    model: nn.Module, loader: Loader, suite: Suite, *, attack_model: nn.Module | None = None, desc: str = "suite"
) -> Grade:
    """Grade ``model``'s robustness on ``loader`` with ``suite``: the per-sample minimum over its attacks.

    PGD and APGD-CE run on every image; APGD-T on the images that both leave correct on at least one draw.
    ``attack_model`` (default ``model``) is what the attacks differentiate, ``model`` what predicts (an RSE
    ensemble). Returns a :class:`Grade` with clean, member and robust :class:`Scores` in loader order.
    """
    target = model if attack_model is None else attack_model
    gen = torch.Generator().manual_seed(suite.seed)
    pgd = _pgd(suite, gen)
    clean = scores(model, loader, draws=suite.draws, name="clean", desc=f"{desc}: clean")
    hits: dict[str, list[torch.Tensor]] = {"pgd": [], "apgd-ce": [], "apgd-t": []}
    with A.eval_mode(model), A.eval_mode(target):
        for x, y, *extra in bar(loader, desc=desc, leave=False, total=len(loader)):
            net, atk_net = bind(model, extra), bind(target, extra)
            batch = {
                "pgd": _hits(net, pgd(atk_net, x, y), y, suite.draws),
                "apgd-ce": _hits(net, apgd(atk_net, x, y, suite), y, suite.draws),
            }
            standing = torch.minimum(batch["pgd"].mean(0), batch["apgd-ce"].mean(0)) > 0
            # APGD-T only where an image still stands; the others keep their worse member's hits (already 0 for
            # a deterministic model), so this column is the cascade PGD -> APGD-CE -> APGD-T, as in AutoAttack.
            t_hits = torch.where(batch["pgd"].mean(0) <= batch["apgd-ce"].mean(0), batch["pgd"], batch["apgd-ce"])
            if standing.any():
                idx = standing.nonzero().squeeze(1).to(x.device)
                xt = apgd(atk_net if not extra else bind(target, [e[idx] for e in extra]), x[idx], y[idx], suite,
                          targeted=True)  # fmt: skip
                t_net = net if not extra else bind(model, [e[idx] for e in extra])
                t_hits[:, standing] = _hits(t_net, xt, y[idx], suite.draws)
            batch["apgd-t"] = t_hits
            for k, v in batch.items():
                hits[k].append(v)
    members = {k: Scores(torch.cat(v, 1), k) for k, v in hits.items()}
    robust = members["pgd"].minimum(members["apgd-ce"], members["apgd-t"], attack=suite.name)
    return Grade(suite, clean, members, robust)


@torch.no_grad()
def _hits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, draws: int) -> torch.Tensor:
    """(draws, B) float 0/1: whether each of ``draws`` forward passes classifies each input correctly."""
    return torch.stack([(model(x).float().argmax(1) == y).cpu() for _ in range(draws)]).float()


def steps_curve(
    model: nn.Module,
    loader: Loader,
    suite: Suite,
    steps: tuple[int, ...] = (1, 2, 5, 10, 20, 50),
    *,
    attack_model: nn.Module | None = None,
) -> dict[str, dict[int, float]]:
    """Accuracy against the number of attack iterations, for PGD (``alpha = 2.5 eps / steps``) and APGD-CE.

    The figure that shows why the suite exists: a few fixed-size PGD steps stop well above where APGD ends.
    """
    target = model if attack_model is None else attack_model
    out: dict[str, dict[int, float]] = {"PGD": {}, "APGD-CE": {}}
    for k in steps:
        s = replace(suite, pgd_steps=k, apgd_steps=k)
        out["PGD"][k] = scores(model, loader, _pgd(s, torch.Generator().manual_seed(s.seed)), draws=s.draws,
                               attack_model=target, desc=f"PGD-{k}").acc  # fmt: skip
        out["APGD-CE"][k] = scores(model, loader, lambda m, x, y, s=s: apgd(m, x, y, s), draws=s.draws,
                                   attack_model=target, desc=f"APGD-{k}").acc  # fmt: skip
    return out


def sanity_checks(
    model: nn.Module,
    loader: Loader,
    grade_: Grade,
    *,
    attack_model: nn.Module | None = None,
    large_eps: float | None = None,
    steps: tuple[int, ...] | None = None,
    square_queries: int = 300,
    tolerance: float = 0.01,
) -> dict[str, dict[str, Any]]:
    """The checks of Carlini et al. (2019) on one graded model; each entry has ``passed`` and its numbers.

    - ``large_eps``: PGD (the suite's steps) at a radius large enough to change any image's class (default
      ``max(0.3, 8 eps)`` l-inf, ``max(6, 8 eps)`` l2) leaves at most ``tolerance`` accuracy.
    - ``more_steps``: PGD at ``steps`` (default 5, 10 and 4x the suite's steps): accuracy never rises by more
      than ``tolerance`` as the steps grow.
    - ``black_box``: Square (``square_queries`` queries, on the images the suite leaves standing, first draw's
      prediction) breaks at most ``tolerance`` of all images that the white-box suite could not.
    """
    suite, target = grade_.suite, model if attack_model is None else attack_model
    n = len(grade_.robust.correct)
    if large_eps is None:
        large_eps = max(0.3, 8 * suite.eps) if suite.norm == "linf" else max(6.0, 8 * suite.eps)
    big = check_nonnegative("large_eps", large_eps)
    big_s = replace(suite, eps=big)
    big_acc = scores(model, loader, _pgd(big_s, torch.Generator().manual_seed(suite.seed)), draws=suite.draws,
                     attack_model=target, desc="sanity: large eps").acc  # fmt: skip
    curve = {}
    for k in sorted(set(steps or (5, 10, 4 * suite.pgd_steps))):
        s = replace(suite, pgd_steps=k)
        curve[k] = scores(model, loader, _pgd(s, torch.Generator().manual_seed(s.seed)), draws=suite.draws,
                          attack_model=target, desc=f"sanity: PGD-{k}").acc  # fmt: skip
    accs = [curve[k] for k in sorted(curve)]
    rise = max([b - a for a, b in zip(accs, accs[1:], strict=False)] + [0.0])
    broken = _square_breaks(model, target, loader, grade_, square_queries)
    return {
        "large_eps": {"eps": big, "accuracy": big_acc, "passed": big_acc <= tolerance},
        "more_steps": {"accuracy_by_steps": curve, "largest_rise": rise, "passed": rise <= tolerance},
        "black_box": {
            "attack": f"Square, {square_queries} queries",
            "survivors": int((grade_.robust.correct > 0).sum()),
            "broken_by_black_box": broken,
            "passed": broken <= tolerance * n,
        },
    }


def _square_breaks(model: nn.Module, target: nn.Module, loader: Loader, grade_: Grade, queries: int) -> int:
    """How many images the suite leaves standing (on every draw) does Square misclassify."""
    import torchattacks

    suite, standing, offset, broken = grade_.suite, grade_.robust.correct >= 1, 0, 0
    norm = "Linf" if suite.norm == "linf" else "L2"
    with A.eval_mode(model), A.eval_mode(target):
        for x, y, *extra in bar(loader, desc="sanity: Square", leave=False, total=len(loader)):
            idx = standing[offset : offset + len(y)].nonzero().squeeze(1).to(x.device)
            offset += len(y)
            if len(idx) == 0:
                continue
            sub = [e[idx] for e in extra]
            with _fork(x):
                atk = torchattacks.Square(bind(target, sub), norm=norm, eps=suite.eps, n_queries=queries,
                                          seed=suite.seed)  # fmt: skip
                xs = atk(x[idx], y[idx])
            broken += int((_hits(bind(model, sub), xs, y[idx], 1)[0] == 0).sum())
    return broken


def sanity_table(checks: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """The :func:`sanity_checks` of several models as one table for a chapter: one row per (model, check), the
    numbers measured and whether the check passed (a failing check is shown like any other)."""
    rows = []
    for model, c in checks.items():
        big, steps, bb = c["large_eps"], c["more_steps"], c["black_box"]
        curve = ", ".join(f"PGD-{k} {100 * v:.1f}%" for k, v in steps["accuracy_by_steps"].items())
        rows += [
            (model, "accuracy ≈ 0 at a large radius", f"PGD at ε={big['eps']:g}: {100 * big['accuracy']:.1f}%",
             big["passed"]),
            (model, "more steps never raise accuracy", f"{curve} (largest rise {100 * steps['largest_rise']:.1f} pts)",
             steps["passed"]),
            (model, "a black box breaks no survivor",
             f"{bb['attack']}: {bb['broken_by_black_box']} of {bb['survivors']} survivors broken", bb["passed"]),
        ]  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "check", "numbers", "passed"]).set_index(["model", "check"])
