"""Document 3 (mixed l-inf/l2 adversarial training, capacity, robust overfitting, noise): its building blocks.

- :class:`Threat` fixes the attacks of the chapter: l-inf PGD, l2 PGD and l-inf FGSM with their radii and
  steps; :func:`attacks_for` turns it into named ``(model, x, y) -> x_adv`` callables (``None`` = natural
  images), with EOT for randomized models.
- :func:`make_adversary` gives the training schemes: natural, Madry-style training on one attack
  (``pgd_linf``, ``pgd_l2``, ``fgsm``), MAT-Rand and MAT-Max (Araujo et al. 2020: per batch a random choice
  between l-inf and l2 PGD, or per sample the more damaging of the two), and the document's final
  ``recipe``: MAT-Rand batches with a ``natural_fraction`` of natural batches drawn at random (Sec. 3.3).
- :func:`fit_selected` trains with a held-out validation split, keeps the epoch of best robust validation
  accuracy (early stopping as Rice et al. 2020 recommend, but selected on validation data, not on the test
  set), and can record a test-set curve per epoch for the figures; that curve never enters the selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers import attacks as A
from helpers import training
from helpers.data import Loader
from helpers.params import check_choice, check_fraction, check_int, check_nonnegative, check_positive

ATTACK_NAMES = ("natural", "pgd_linf", "pgd_l2", "fgsm")
TRAININGS = ("natural", "pgd_linf", "pgd_l2", "fgsm", "mat_rand", "mat_max", "recipe")


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

    def with_eps(self, eps_linf: float) -> Threat:
        """The same l-inf attack at another radius, its step scaled in proportion (alpha/eps kept)."""
        ratio = self.alpha_linf / self.eps_linf if self.eps_linf > 0 else 0.25
        return replace(self, eps_linf=eps_linf, alpha_linf=max(ratio * eps_linf, 1e-6))

    def config(self) -> dict[str, Any]:
        return asdict(self)


def attacks_for(
    threat: Threat, *, eot_samples: int = 1, generator: torch.Generator | None = None
) -> dict[str, A.AttackFn | None]:
    """``{"natural": None, "pgd_linf", "pgd_l2", "fgsm"}`` for ``threat``; ``eot_samples`` > 1 averages every
    gradient over that many forward passes (Athalye et al. 2018), for randomized models (FGSM included)."""
    check_int("eot_samples", eot_samples, low=1)
    t = threat

    def pgd(norm: str, eps: float, alpha: float) -> A.AttackFn:
        return lambda m, x, y: A.pgd(
            m, x, y, eps, alpha, t.steps, norm=norm, random_start=t.random_start, eot_samples=eot_samples,
            generator=generator,
        )  # fmt: skip

    def fgsm(m: A.Model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if eot_samples == 1:
            return A.fgsm(m, x, y, t.eps_linf)
        g = A.input_gradient(m, x, y, eot_samples=eot_samples)
        return (x.detach() + t.eps_linf * g.sign()).clamp(0, 1)

    return {
        "natural": None,
        "pgd_linf": pgd("linf", t.eps_linf, t.alpha_linf),
        "pgd_l2": pgd("l2", t.eps_l2, t.alpha_l2),
        "fgsm": fgsm,
    }


def make_adversary(
    kind: str, threat: Threat, *, natural_fraction: float = 0.05, seed: int = 0
) -> training.Adversary | None:
    """The training scheme ``kind`` (one of :data:`TRAININGS`) for ``threat``; ``None`` for natural training.

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


def fit_selected(
    model: nn.Module,
    train: Loader,
    val: Loader,
    *,
    val_attack: A.AttackFn,
    checkpoint: str | Path,
    test_curve: Callable[[nn.Module], float] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    **fit_kwargs: Any,
) -> tuple[training.History, dict[str, Any]]:
    """:func:`~helpers.training.fit` with robust validation every epoch and early stopping on it.

    Every epoch records ``val_robust_acc`` (``val_attack`` on ``val``); the model is returned at the epoch
    where it was highest, and the second value is ``{"epoch", "metric"}`` of that epoch.
    ``test_curve(model) -> float``, if given, is recorded per epoch as ``test_robust_acc`` *after* the
    selection for that epoch has been made, so the test set never influences which epoch is kept.
    """

    def record(epoch: int, row: dict[str, float]) -> None:
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        if test_curve is not None:
            row["test_robust_acc"] = float(test_curve(model))

    history = training.fit(
        model,
        train,
        val=val,
        val_attack=val_attack,
        select="val_robust_acc",
        checkpoint=checkpoint,
        on_epoch_end=record,
        **fit_kwargs,
    )
    return history, training.load_best(model, checkpoint)
