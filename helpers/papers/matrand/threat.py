"""The chapter's threat models and training schemes (BIPARO 2021, after Araujo et al. 2020 and Madry et al. 2018).

- :class:`Threat` fixes the three attacks of the document: l-inf PGD, l2 PGD and l-inf FGSM, with their radii
  in [0, 1] pixel units and their PGD steps; :func:`attacks_for` turns it into named ``(model, x, y) -> x_adv``
  callables (``None`` = natural images), with EOT for randomized models.
- :func:`make_adversary` gives the training schemes: natural, Madry-style training on one attack, MAT-Rand and
  MAT-Max (Araujo et al. 2020) and the document's final ``recipe`` (Sec. 3.3).
- :func:`step_schedule` is the document's learning-rate schedule: divided by 10 at fixed fractions of training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from helpers.core import attacks as A
from helpers.core import training
from helpers.core.params import check_choice, check_fraction, check_int, check_nonnegative, check_positive

ATTACK_NAMES = ("natural", "pgd_linf", "pgd_l2", "fgsm")
TRAININGS = ("natural", "pgd_linf", "pgd_l2", "fgsm", "mat_rand", "mat_max", "recipe")
NORMS = ("linf", "l2")
LABELS = {"natural": "natural", "pgd_linf": "l-inf PGD", "pgd_l2": "l2 PGD", "fgsm": "l-inf FGSM"}  # short names
EVAL_STEP = 2.5  # evaluation PGD: step 2.5 eps / steps (Madry et al. 2018), so the steps can cross the ball


@dataclass(frozen=True)
class Threat:
    """Radii (in [0, 1] pixel units), PGD steps and step sizes of the chapter's attacks."""

    eps_linf: float = 0.03
    alpha_linf: float = 0.0075
    eps_l2: float = 0.5
    alpha_l2: float = 0.125
    steps: int = 10
    random_start: bool = True

    def __post_init__(self) -> None:
        check_nonnegative("eps_linf", self.eps_linf)
        check_nonnegative("eps_l2", self.eps_l2)
        check_positive("alpha_linf", self.alpha_linf)
        check_positive("alpha_l2", self.alpha_l2)
        check_int("steps", self.steps, low=1)

    @classmethod
    def evaluation(cls, eps_linf: float, eps_l2: float, steps: int) -> Threat:
        """The evaluation attacks: ``steps``-step PGD from a random start, step ``2.5 eps / steps`` at each radius."""
        return cls(eps_linf, EVAL_STEP * eps_linf / steps, eps_l2, EVAL_STEP * eps_l2 / steps, steps)

    def with_eps(self, eps_linf: float) -> Threat:
        """The same l-inf attack at another radius, its step scaled in proportion (alpha/eps kept)."""
        ratio = self.alpha_linf / self.eps_linf if self.eps_linf > 0 else 0.25
        return replace(self, eps_linf=eps_linf, alpha_linf=max(ratio * eps_linf, 1e-6))

    def config(self) -> dict[str, Any]:
        """The threat as a JSON-able dict (part of every training configuration's hash)."""
        return asdict(self)


def attacks_for(
    threat: Threat,
    *,
    eot_samples: int = 1,
    generator: torch.Generator | None = None,
    clip: A.Clip = (0.0, 1.0),
) -> dict[str, A.AttackFn | None]:
    """``{"natural": None, "pgd_linf", "pgd_l2", "fgsm"}`` for ``threat``: each ``(model, x, y) -> x_adv``, with
    ``x`` (B, C, H, W) in ``clip`` ([0, 1]) and the result clipped to it.

    ``eot_samples`` > 1 averages every gradient over that many forward passes (EOT, Athalye et al. 2018), for
    randomized models, FGSM included; ``generator`` draws the PGD random starts (shared by the two PGD attacks).
    """
    check_int("eot_samples", eot_samples, low=1)
    t = threat

    def pgd(norm: str, eps: float, alpha: float) -> A.AttackFn:
        return lambda m, x, y: A.pgd(
            m, x, y, eps, alpha, t.steps, norm=norm, random_start=t.random_start, eot_samples=eot_samples,
            generator=generator, clip=clip,
        )  # fmt: skip

    return {
        "natural": None,
        "pgd_linf": pgd("linf", t.eps_linf, t.alpha_linf),
        "pgd_l2": pgd("l2", t.eps_l2, t.alpha_l2),
        "fgsm": lambda m, x, y: A.fgsm(m, x, y, t.eps_linf, eot_samples=eot_samples, clip=clip),
    }


def make_adversary(
    kind: str, threat: Threat, *, natural_fraction: float = 0.05, seed: int = 0
) -> training.Adversary | None:
    """The training scheme ``kind`` (one of :data:`TRAININGS`) for ``threat``; ``None`` for natural training.

    ``pgd_linf``, ``pgd_l2``, ``fgsm``: every batch replaced by that attack's examples (Madry et al. 2018).
    ``mat_rand``: per batch, l-inf or l2 PGD with probability 1/2 each. ``mat_max``: per sample, the one of
    the two with the higher loss. ``recipe``: per batch, natural images with probability ``natural_fraction``,
    otherwise l-inf or l2 PGD with equal probability. ``seed`` seeds the per-batch draws.
    """
    check_choice("training", kind, TRAININGS)
    check_fraction("natural_fraction", natural_fraction)
    atk = attacks_for(threat)
    if kind == "natural":
        return None
    if kind in ("pgd_linf", "pgd_l2", "fgsm"):
        return training.Adversary(atk[kind])
    both = {"pgd_linf": atk["pgd_linf"], "pgd_l2": atk["pgd_l2"]}
    if kind == "mat_rand":
        return training.MixedAdversary(both, mode="random", seed=seed)
    if kind == "mat_max":
        return training.MixedAdversary(both, mode="max", seed=seed)
    half = (1.0 - natural_fraction) / 2
    return training.MixedAdversary(
        {**both, "natural": None}, weights=[half, half, natural_fraction], mode="random", seed=seed
    )


def step_schedule(optimizer: torch.optim.Optimizer, epochs: int, milestones: list[float], gamma: float = 0.1) -> Any:
    """Divide the learning rate by ``1/gamma`` after each fraction ``milestones`` of ``epochs`` (e.g. 0.6, 0.8)."""
    check_int("epochs", epochs, low=1)
    steps = sorted({min(epochs - 1, max(1, round(f * epochs))) for f in milestones}) if epochs > 1 else []
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, steps, gamma=gamma)
